package mobypay

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The Go-to-Python direction of the cross-check (see pycheck_test.go).

// pyCase is one text sent to Python, with what Go made of it.
type pyCase struct {
	name     string
	input    []byte // JSON text as we spelled it
	envelope []byte // Go's sealed envelope, nil if Go refused the text
	goErr    error
}

// TestGoToPython spells random payloads in many equivalent ways, seals
// them, and has Python parse the same text, canonicalise and sign it: the
// envelope Go wrote must be byte for byte the one Python would write.
func TestGoToPython(t *testing.T) {
	t.Parallel()
	py := pycheckPython(t)
	seed, n := pycheckParams(t)
	secret := []byte(pycheckSecret)
	c := NewCodec(secret)
	rc := NewCodec(secret)
	var cases []pyCase

	// fail reports a problem; a systematic bug would otherwise report
	// thousands.
	fails := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if fails++; fails >= 10 {
			t.Fatalf("stopping after %d failures", fails)
		}
	}

	seal := func(name string, input []byte, wantOK bool) {
		env, err := c.Seal(nil, input)
		pc := pyCase{name: name, input: input, goErr: err}
		if err == nil {
			pc.envelope = env
			canon, cerr := Canonical(input)
			switch {
			case cerr != nil:
				fail("%s: Seal accepted what Canonical refused: %v", name, cerr)
			case !bytes.HasPrefix(env, append([]byte(`{"payload":`), canon...)):
				fail("%s: Seal's payload differs from Canonical's:\n%s\n%s", name, env, canon)
			}
			if oerr := rc.Open(bytes.TrimSuffix(env, []byte("\n"))); oerr != nil || !bytes.Equal(rc.Canonical(), canon) {
				fail("%s: our own envelope does not reopen: %v\ninput:    %q\nenvelope: %s", name, oerr, input, env)
			}
		} else if wantOK {
			fail("%s: Go refused the text: %v\ninput: %q", name, err, input)
		}
		cases = append(cases, pc)
	}

	g := &jsonGen{r: rand.New(rand.NewPCG(seed, seed^0x6d6f62797061792e))}
	for i := range n {
		seal(fmt.Sprintf("random %d", i), g.document(), true)
	}

	// Python's int conversion limit is 4300 digits, sign not counted: both
	// sides must accept and refuse the same integers.
	for _, digits := range []int{4299, 4300, 4301, 4302} {
		for _, sign := range []string{"", "-"} {
			text := `{"n":` + sign + "9" + strings.Repeat("0", digits-1) + `}`
			seal(fmt.Sprintf("integer of %s%d digits", sign, digits), []byte(text), digits <= maxIntDigits)
		}
	}

	// Beyond JSON, Python reads NaN, Infinity and -Infinity and no other
	// spelling of them, and a literal beyond the double range as ±inf.
	for _, text := range []string{`{"a":NaN}`, `{"a":Infinity}`, `{"a":-Infinity}`, `{"a":[NaN,-Infinity]}`,
		`{"a":1e400}`, `{"a":-1E+309}`, `{"a":1e999999999999999999999}`, `{"a":0e999999999999999999999}`,
		`{"a":1.7976931348623158e308}`, `{"a":1.7976931348623159e308}`, `{"NaN":"Infinity"}`} {
		seal(text, []byte(text), true)
	}
	for _, text := range []string{`{"a":-NaN}`, `{"a":nan}`, `{"a":NAN}`, `{"a":inf}`, `{"a":Inf}`, `{"a":-Inf}`,
		`{"a":+Infinity}`, `{"a":- Infinity}`, `{"a":infinity}`, `{"a":NaN1}`, `{"a":Infinity0}`, `{"a":-Infinityx}`,
		`{"a":NaNNaN}`, `{"a":1NaN}`} {
		seal(text, []byte(text), false)
	}

	// The kiosk's own messages are written without a parse; Python must
	// read them as the canonical form of themselves.
	r := rand.New(rand.NewPCG(seed+1, seed^0x6b696f736b))
	modes := []string{ModeCard, ModeBNPL, ModeDuitNowQR, ModeIPP}
	for i := range max(n/4, 20) {
		h := Header{
			TxnID:     "TXN" + strconv.FormatInt(1757482354771+r.Int64N(1e10), 10),
			KioskID:   fmt.Sprintf("KIOSK%03d", r.IntN(1000)),
			Nonce:     base64.StdEncoding.EncodeToString(binaryNonce(r)),
			Timestamp: 1757482354771 + r.Int64N(1e10),
		}
		if r.IntN(4) == 0 {
			h.KioskID = string(g.randRunes(10))
			h.TxnID = string(g.randRunes(10))
		}
		var sen int64
		switch r.IntN(3) {
		case 0:
			sen = 1 + r.Int64N(100_000)
		case 1:
			sen = MaxAmountSen - r.Int64N(100_000)
		default:
			sen = 1 + r.Int64N(MaxAmountSen)
		}
		mode := modes[r.IntN(len(modes))]
		var env []byte
		switch i % 3 {
		case 0:
			var err error
			if env, err = c.AppendTransactionRequest(nil, h, sen, mode); err != nil {
				t.Fatal(err)
			}
		case 1:
			env = c.AppendPlanSelection(nil, h, string(g.randRunes(12)))
		default:
			env = c.AppendCancel(nil, h)
		}
		if err := rc.Open(bytes.TrimSuffix(env, []byte("\n"))); err != nil {
			t.Fatalf("kiosk message %d does not reopen: %v\n%s", i, err, env)
		}
		if i%3 == 0 {
			var m Message
			if err := rc.Decode(&m); err != nil {
				t.Fatalf("kiosk message %d: %v", i, err)
			}
			if got, ok := m.AmountSen(); !ok || got != sen {
				fail("kiosk message %d: amount %v reads back as %d sen, want %d", i, m.Amount, got, sen)
			}
		}
		cases = append(cases, pyCase{
			name:     fmt.Sprintf("kiosk message %d", i),
			input:    bytes.Clone(rc.Canonical()),
			envelope: env,
		})
	}

	var stdin bytes.Buffer
	for _, pc := range cases {
		stdin.WriteString(base64.StdEncoding.EncodeToString(pc.input))
		stdin.WriteByte(' ')
		if pc.envelope == nil {
			stdin.WriteByte('-')
		} else {
			stdin.Write(bytes.TrimSuffix(pc.envelope, []byte("\n")))
		}
		stdin.WriteByte('\n')
	}
	out := runPython(t, py, stdin.Bytes(), "verify", hex.EncodeToString(secret))

	type verdict struct {
		OK        bool   `json:"ok"`
		Why       string `json:"why"`
		Python    string `json:"python"`
		Go        string `json:"go"`
		PythonSig string `json:"python_sig"`
	}
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(lines) != len(cases) {
		t.Fatalf("helper answered %d lines for %d cases", len(lines), len(cases))
	}
	for i, line := range lines {
		var v verdict
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("helper line %d: %v: %s", i, err, line)
		}
		if v.OK {
			continue
		}
		pc := cases[i]
		fail("%s: %s\ninput:            %q\ngo error:         %v\npython canonical: %s\ngo canonical:     %s\npython signature: %s\ngo envelope:      %s",
			pc.name, v.Why, pc.input, pc.goErr, v.Python, v.Go, v.PythonSig, bytes.TrimSpace(pc.envelope))
	}
}

func binaryNonce(r *rand.Rand) []byte {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
