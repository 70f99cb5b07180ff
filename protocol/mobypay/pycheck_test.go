package mobypay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The tests in this file check the canonicaliser and the codec against
// MobyPay's reference signer, CPython's json + hmac, in both directions,
// through the helper testdata/pycheck.py. They skip without python3 unless
// CI is set. PYCHECK_SEED and PYCHECK_N override the seed and the number of
// random payloads each way.

const pycheckScript = "testdata/pycheck.py"

// pycheckSecret is what the Go-to-Python direction signs with; it is not
// ASCII, to check that both sides take the secret's UTF-8 bytes.
const pycheckSecret = "kiosk-\u00e9-\U0001F511-secret"

func pycheckPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 is required in CI for the Python cross-check: %v", err)
		}
		t.Skipf("python3 not found, skipping the Python cross-check: %v", err)
	}
	return py
}

func pycheckParams(t *testing.T) (seed uint64, n int) {
	t.Helper()
	seed, n = 20250910, 2000
	if testing.Short() {
		n = 200
	}
	if s := os.Getenv("PYCHECK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 63) // Python takes any int; stay in int64
		if err != nil {
			t.Fatalf("PYCHECK_SEED: %v", err)
		}
		seed = v
	}
	if s := os.Getenv("PYCHECK_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("PYCHECK_N=%q: want a positive integer", s)
		}
		n = v
	}
	t.Logf("seed %d, n %d (set PYCHECK_SEED, PYCHECK_N to change)", seed, n)
	return seed, n
}

// runPython runs the helper in the given mode with a deadline and returns
// its stdout; stderr goes into the failure message.
func runPython(t *testing.T, py string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// -I: ignore PYTHON* variables and the user's site-packages.
	cmd := exec.CommandContext(ctx, py, append([]string{"-I", pycheckScript}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", py, strings.Join(args[:1], " "), err, stderr.Bytes())
	}
	return out
}

// TestPythonToGo opens envelopes written and signed by Python the way a
// MobyPay peer does and compares our canonical payload with Python's.
func TestPythonToGo(t *testing.T) {
	t.Parallel()
	py := pycheckPython(t)
	seed, n := pycheckParams(t)
	out := runPython(t, py, nil, "gen", strconv.FormatUint(seed, 10), strconv.Itoa(n),
		hex.EncodeToString([]byte(DevSecret)))

	c := NewCodec([]byte(DevSecret))
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	count, fails := 0, 0
	ended := false
	for sc.Scan() {
		wire := bytes.Clone(sc.Bytes())
		if end, ok := bytes.CutPrefix(wire, []byte("end ")); ok {
			if string(end) != strconv.Itoa(n) {
				t.Fatalf("helper ended with %q, want %d", wire, n)
			}
			ended = true
			break
		}
		if !sc.Scan() {
			t.Fatalf("record %d: envelope without canonical line", count)
		}
		want := sc.Bytes()
		count++
		err := c.Open(wire)
		if err == nil && bytes.Equal(c.Canonical(), want) {
			checkDecode(t, c) // whatever a peer signs decodes
			continue
		}
		fails++
		t.Errorf("record %d: Open: %v\nwire:            %s\npython canonical: %s\ngo canonical:     %s\ngo signature:     %s",
			count, err, wire, want, c.Canonical(), c.ExpectedSignature())
		if fails >= 10 {
			t.Fatalf("stopping after %d failures", fails)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !ended || count != n {
		t.Fatalf("read %d records (end marker seen: %v), want %d", count, ended, n)
	}
}

// TestPythonSignedOdd: the correctly signed but odd successes of issue 9
// (defect 2), signed by Python with json.dumps' defaults. Every one opens
// and decodes, keeps the signed text of txn_id and amount, and says in Odd
// what is wrong; none is a clean success, and all look like one, so the
// payment layer flags rather than drops them.
func TestPythonSignedOdd(t *testing.T) {
	t.Parallel()
	py := pycheckPython(t)
	out := runPython(t, py, nil, "odd", hex.EncodeToString([]byte(DevSecret)))
	const txn = "TXN1757482355464"
	type want struct {
		odd        []string
		txnID      string
		amountText string
		sen        int64 // when the amount converts
		nonce      string
		check      func(t *testing.T, m *Message)
	}
	const nonce = "joHQ83Mp9dWbFsREUHDRCg=="
	cases := map[string]want{
		"clean":                 {nil, txn, "2.0", 200, nonce, nil},
		"amount-string":         {[]string{`amount is a string "1.00"`}, txn, `"1.00"`, 0, nonce, nil},
		"amount-nan":            {[]string{"amount is NaN"}, txn, "NaN", 0, nonce, nil},
		"amount-infinity":       {[]string{"amount is Infinity"}, txn, "Infinity", 0, nonce, nil},
		"amount-minus-infinity": {[]string{"amount is -Infinity"}, txn, "-Infinity", 0, nonce, nil},
		// Clean as far as decoding goes: that a result's amount differs
		// from the request's is the payment layer's to judge.
		"amount-negative":  {nil, txn, "-1.0", -100, nonce, nil},
		"plans-object":     {[]string{"plans is not an array"}, txn, "2.0", 200, nonce, nil},
		"plans-of-strings": {[]string{"plan 0 is not an object"}, txn, "2.0", 200, nonce, nil},
		"transaction-id-object": {[]string{"transaction_id is an object"}, txn, "2.0", 200, nonce, func(t *testing.T, m *Message) {
			if m.TransactionID != "" {
				t.Errorf("TransactionID %q", m.TransactionID)
			}
		}},
		"txn-id-number": {nil, "1757482355464", "2.0", 200, nonce, nil},
		"nonce-empty":   {[]string{"no nonce"}, txn, "2.0", 200, "", nil},
		"nonce-missing": {[]string{"no nonce"}, txn, "2.0", 200, "", nil},
		"status-upper": {[]string{`status "SUCCESS" differs from "success" in case`}, txn, "2.0", 200, nonce, func(t *testing.T, m *Message) {
			if m.Status != "SUCCESS" {
				t.Errorf("Status %q", m.Status)
			}
		}},
	}
	c := NewCodec([]byte(DevSecret))
	seen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		name, wire, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		w, known := cases[name]
		if !ok || !known {
			t.Fatalf("helper line %q: unknown case", line)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			if err := c.Open([]byte(wire)); err != nil {
				t.Fatalf("Open: %v\n%s", err, wire)
			}
			checkDecode(t, c)
			var m Message
			if err := c.Decode(&m); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !slices.Equal(m.Odd, w.odd) {
				t.Errorf("Odd %q, want %q", m.Odd, w.odd)
			}
			if m.TxnID != w.txnID || m.AmountText != w.amountText || m.Nonce != w.nonce {
				t.Errorf("TxnID %q, AmountText %q, Nonce %q; want %q, %q, %q", m.TxnID, m.AmountText, m.Nonce, w.txnID, w.amountText, w.nonce)
			}
			sen, ok := m.AmountSen()
			if ok != (w.sen != 0) || sen != w.sen {
				t.Errorf("AmountSen() = %d, %v; want %d", sen, ok, w.sen)
			}
			if !m.LooksLikeSuccess() {
				t.Error("does not look like a success")
			}
			if clean := m.IsSuccess() && m.Clean(); clean != (w.odd == nil) {
				t.Errorf("clean success %v, want %v", clean, w.odd == nil)
			}
			if m.Type != TypeTransactionResult || m.PosID != "POS001" || m.Timestamp != "1757482370549" {
				t.Errorf("decoded %+v", m)
			}
			if w.check != nil {
				w.check(t, &m)
			}
		})
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("the helper wrote no case %s", name)
		}
	}
}

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

// jsonGen writes random JSON text, spelling every token in one of the many
// ways the grammar allows for the same value.
type jsonGen struct {
	r *rand.Rand
	b []byte
}

func (g *jsonGen) document() []byte {
	g.b = nil
	g.ws()
	if g.r.IntN(100) == 0 {
		g.deep()
	} else {
		g.object(1)
	}
	g.ws()
	return g.b
}

// deep nests as far as an envelope allows: its payload sits one level down.
func (g *jsonGen) deep() {
	levels := 1 + g.r.IntN(MaxDepth-1)
	closers := make([]byte, 0, levels)
	g.b = append(g.b, '{')
	g.key(&keySet{})
	closers = append(closers, '}')
	for range levels - 1 {
		g.ws()
		if g.r.IntN(2) == 0 {
			g.b = append(g.b, '[')
			closers = append(closers, ']')
		} else {
			g.b = append(g.b, '{')
			g.key(&keySet{})
			closers = append(closers, '}')
		}
	}
	g.ws()
	g.scalar()
	for i := len(closers) - 1; i >= 0; i-- {
		g.ws()
		g.b = append(g.b, closers[i])
	}
}

func (g *jsonGen) ws() {
	if g.r.IntN(5) < 3 {
		return
	}
	for range 1 + g.r.IntN(3) {
		g.b = append(g.b, " \t\n\r"[g.r.IntN(4)])
	}
}

func (g *jsonGen) value(depth int) {
	if depth < 6 && g.r.IntN(100) < 45-7*depth {
		if g.r.IntN(2) == 0 {
			g.object(depth + 1)
		} else {
			g.array(depth + 1)
		}
		return
	}
	g.scalar()
}

func (g *jsonGen) object(depth int) {
	g.b = append(g.b, '{')
	var taken keySet
	n := g.r.IntN(7)
	if n == 0 {
		g.ws()
	}
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		g.key(&taken)
		g.value(depth)
		g.ws()
	}
	g.b = append(g.b, '}')
}

// keySet holds an object's keys; the slice keeps picks reproducible.
type keySet struct {
	seen map[string]bool
	list []string
}

// key writes `ws "key" ws : ws` for a key not yet in the object.
func (g *jsonGen) key(taken *keySet) {
	if taken.seen == nil {
		taken.seen = map[string]bool{}
	}
	var k []rune
	for {
		switch x := g.r.IntN(10); {
		case x < 3:
			k = []rune(pycheckKeyWords[g.r.IntN(len(pycheckKeyWords))])
		case x < 5 && len(taken.list) > 0:
			// a neighbour of an existing key stresses code-point order
			k = []rune(taken.list[g.r.IntN(len(taken.list))])
			k = append(k, []rune{0, 0x7f, ' ', 'a', 0xe9, 0xffff, 0x1f600, 0x10ffff}[g.r.IntN(8)])
		default:
			k = g.randRunes(8)
		}
		if !taken.seen[string(k)] {
			break
		}
	}
	taken.seen[string(k)] = true
	taken.list = append(taken.list, string(k))
	g.ws()
	g.str(k)
	g.ws()
	g.b = append(g.b, ':')
	g.ws()
}

func (g *jsonGen) array(depth int) {
	g.b = append(g.b, '[')
	n := g.r.IntN(7)
	if n == 0 {
		g.ws()
	}
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		g.ws()
		g.value(depth)
		g.ws()
	}
	g.b = append(g.b, ']')
}

func (g *jsonGen) scalar() {
	switch x := g.r.IntN(100); {
	case x < 30:
		g.str(g.randRunes(12))
	case x < 50:
		g.integer()
	case x < 85:
		g.float()
	case x < 90:
		g.b = append(g.b, "true"...)
	case x < 95:
		g.b = append(g.b, "false"...)
	default:
		g.b = append(g.b, "null"...)
	}
}

var pycheckKeyWords = []string{
	"type", "txn_id", "amount", "status", "nonce", "timestamp", "plans",
	"planId", "frequency", "totalInstallments", "installmentDetails", "a",
	"A", "b", "_", "Z", "z", "aa", "a_b", "aB", "",
}

var (
	runeSpecial    = []rune(`/<>&"\'`)
	runeBMPSpecial = []rune{0x2028, 0x2029, 0xfeff, 0xffff, 0xfffe, 0xfffd, 0x800, 0x7ff,
		0xd7ff, 0xe000, 0x200b, 0x200d, 0xa0, 0x20ac, 0x4e2d, 0x301, 0x100, 0x85}
	runeAstral = []rune{0x1f600, 0x1f4b3, 0x10000, 0x10ffff, 0x1f1f2, 0x1f1fe, 0x1f44d,
		0x20000, 0xe0001}
)

func (g *jsonGen) randRune() rune {
	r := g.r
	switch x := r.IntN(100); {
	case x < 35:
		return rune(0x20 + r.IntN(0x5f))
	case x < 45:
		return runeSpecial[r.IntN(len(runeSpecial))]
	case x < 55:
		if c := rune(r.IntN(0x21)); c < 0x20 {
			return c
		}
		return 0x7f
	case x < 65:
		return rune(0x80 + r.IntN(0x80))
	case x < 72:
		return runeBMPSpecial[r.IntN(len(runeBMPSpecial))]
	case x < 82:
		for {
			if c := rune(0x100 + r.IntN(0x10000-0x100)); !utf16.IsSurrogate(c) {
				return c
			}
		}
	case x < 90:
		return runeAstral[r.IntN(len(runeAstral))]
	default:
		return rune(0x10000 + r.IntN(0x110000-0x10000))
	}
}

func (g *jsonGen) randRunes(maxLen int) []rune {
	if g.r.IntN(10) == 0 {
		maxLen = 40
	}
	rs := make([]rune, g.r.IntN(maxLen+1))
	for i := range rs {
		rs[i] = g.randRune()
	}
	return rs
}

// str writes s as a JSON string. Each string has a preference, raw text
// or escapes, and each character still picks its own spelling.
func (g *jsonGen) str(s []rune) {
	escapeOdds := []int{0, 10, 50, 90, 100}[g.r.IntN(5)]
	g.b = append(g.b, '"')
	for _, c := range s {
		esc := g.r.IntN(100) < escapeOdds
		switch {
		case c == '"' || c == '\\':
			if esc {
				g.u(c)
			} else {
				g.b = append(g.b, '\\', byte(c))
			}
		case c < 0x20:
			short := map[rune]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}[c]
			if short != 0 && g.r.IntN(2) == 0 {
				g.b = append(g.b, '\\', short)
			} else {
				g.u(c)
			}
		case c == '/':
			switch g.r.IntN(3) {
			case 0:
				g.b = append(g.b, '/')
			case 1:
				g.b = append(g.b, '\\', '/')
			default:
				g.u(c)
			}
		case !esc:
			g.b = utf8.AppendRune(g.b, c)
		case c > 0xffff:
			hi, lo := utf16.EncodeRune(c)
			g.u(hi)
			g.u(lo)
		default:
			g.u(c)
		}
	}
	g.b = append(g.b, '"')
}

// u writes \uXXXX with hex digits in lower, upper or mixed case.
func (g *jsonGen) u(c rune) {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	mode := g.r.IntN(3)
	g.b = append(g.b, '\\', 'u')
	for shift := 12; shift >= 0; shift -= 4 {
		d := c >> shift & 0xf
		if mode == 1 || (mode == 2 && g.r.IntN(2) == 0) {
			g.b = append(g.b, upper[d])
		} else {
			g.b = append(g.b, lower[d])
		}
	}
}

func (g *jsonGen) integer() {
	r := g.r
	switch x := r.IntN(100); {
	case x < 10:
		g.b = append(g.b, "0"...)
	case x < 15:
		g.b = append(g.b, "-0"...)
	case x < 50:
		g.b = strconv.AppendInt(g.b, r.Int64N(2001)-1000, 10)
	case x < 65:
		edges := []string{"2147483647", "-2147483648", "9007199254740992", "9007199254740993",
			"9223372036854775807", "-9223372036854775808", "9223372036854775808",
			"18446744073709551616", "-18446744073709551617", "1000000000000000", "10000000000000000"}
		g.b = append(g.b, edges[r.IntN(len(edges))]...)
	case x < 99:
		g.bigInt(1 + r.IntN(100))
	default:
		g.bigInt(1 + r.IntN(maxIntDigits))
	}
}

func (g *jsonGen) bigInt(digits int) {
	if g.r.IntN(5) < 2 {
		g.b = append(g.b, '-')
	}
	g.b = append(g.b, byte('1'+g.r.IntN(9)))
	for range digits - 1 {
		g.b = append(g.b, byte('0'+g.r.IntN(10)))
	}
}

var floatBoundaries = []float64{
	1e-5, 1e-4, 1e-3, 0.1, 1, 1e15, 1e16, 1e17, 1e21, 1e22, 1e23,
	1 << 53, 1 << 63, 1 << 64, 9999999999999998, math.SmallestNonzeroFloat64,
	0x1p-1022, math.MaxFloat64, 0.5, 12.5,
}

// randFloat picks a finite float64 from the kinds that exercise repr.
func (g *jsonGen) randFloat() float64 {
	r := g.r
	neg := func(f float64) float64 {
		if r.IntN(10) < 3 {
			return -f
		}
		return f
	}
	switch x := r.IntN(100); {
	case x < 20:
		for {
			if f := math.Float64frombits(r.Uint64()); !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f
			}
		}
	case x < 28: // subnormal
		return neg(math.Float64frombits(r.Uint64() & (1<<52 - 1)))
	case x < 40:
		specials := []float64{0, math.Copysign(0, -1), pointOne + pointTwo, 1.0 / 3, 2.0 / 3,
			math.Pi, math.E, 9.999999999999999e-05, 123456789012345678, 2, 100, 10, 12.5,
			0.05, 0.3, 1e100, 1.23e-100, 4.35, 0.07, 1.005, 0x1p-1022 - 0x1p-1074}
		return neg(specials[r.IntN(len(specials))])
	case x < 55: // a few ulps either side of a formatting boundary
		f := floatBoundaries[r.IntN(len(floatBoundaries))]
		for range r.IntN(4) {
			f = math.Nextafter(f, math.Inf(1))
		}
		for range r.IntN(4) {
			f = math.Nextafter(f, 0)
		}
		if math.IsInf(f, 0) {
			f = math.MaxFloat64
		}
		return neg(f)
	case x < 70: // money
		return float64(r.Int64N(int64(math.Pow10(1+r.IntN(11))))) / 100
	case x < 85: // short decimals at any scale
		for {
			m := r.Int64N(int64(math.Pow10(1+r.IntN(17)))) + 1
			f, err := strconv.ParseFloat(fmt.Sprintf("%de%d", m, r.IntN(641)-340), 64)
			if err == nil {
				return neg(f)
			}
		}
	case x < 93:
		return math.Ldexp(1, r.IntN(2098)-1074)
	default:
		return float64(r.Int64N(1<<62) - 1<<61)
	}
}

// float writes a number Python reads as a float, in one of many spellings.
func (g *jsonGen) float() {
	r := g.r
	if r.IntN(100) < 4 {
		g.nonFinite()
		return
	}
	switch x := r.IntN(100); {
	case x < 5: // zero
		zeros := []string{"0.0", "-0.0", "0e0", "-0E-0", "0.000e+5", "-0.0e10", "0E+00", "0.0e-400"}
		g.b = append(g.b, zeros[r.IntN(len(zeros))]...)
		return
	case x < 15:
		g.randomDecimal()
		return
	case x < 22:
		g.midpoint(g.randFloat())
		return
	}
	f := g.randFloat()
	if math.Signbit(f) {
		g.b = append(g.b, '-')
		f = -f
	}
	// shortest digits d1d2...dn with value 0.d1d2...dn × 10^decpt
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1
	if f == 0 {
		digits, decpt = "0", 1
	}
	switch r.IntN(7) {
	case 0: // Go's own shortest forms, made floats if they look like ints
		s := strconv.FormatFloat(f, "efgEG"[r.IntN(5)], -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += []string{".0", ".000", "e0", "E+00"}[r.IntN(4)]
		}
		g.b = append(g.b, s...)
	case 1: // fixed notation with trailing zeros
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += "."
		} else if r.IntN(2) == 0 {
			s += strings.Repeat("0", r.IntN(4))
		}
		g.b = append(g.b, s+"0"...)
	case 2: // exact decimal expansion, up to 767 significant digits
		s := strconv.FormatFloat(f, 'e', 800, 64)
		m, ex, _ := strings.Cut(s, "e")
		m = strings.TrimRight(m, "0")
		m = strings.TrimSuffix(m, ".")
		g.b = append(g.b, m...)
		g.exponent(ex)
	default: // the shortest digits with the decimal point moved
		shift := r.IntN(25) - 12
		switch {
		case shift > 0: // leading zeros: 0.000ddd
			g.b = append(g.b, "0."...)
			g.b = append(g.b, strings.Repeat("0", shift)...)
			g.b = append(g.b, digits...)
			g.exponent(strconv.Itoa(decpt + shift))
		case shift < 0 && digits != "0": // an integer mantissa: ddd000e-k
			g.b = append(g.b, digits...)
			g.b = append(g.b, strings.Repeat("0", -shift)...)
			g.exponent(strconv.Itoa(decpt - len(digits) + shift))
		default: // d.ddd, maybe with trailing zeros
			g.b = append(g.b, digits[0])
			if len(digits) > 1 || r.IntN(2) == 0 {
				g.b = append(g.b, '.')
				g.b = append(g.b, digits[1:]...)
				if len(digits) == 1 {
					g.b = append(g.b, '0')
				}
				g.b = append(g.b, strings.Repeat("0", r.IntN(3))...)
			}
			g.exponent(strconv.Itoa(decpt - 1))
		}
	}
}

// nonFinite writes what Python reads as NaN or ±inf, or a literal whose
// exponent is far outside the double range either way.
func (g *jsonGen) nonFinite() {
	r := g.r
	sign := func() {
		if r.IntN(2) == 0 {
			g.b = append(g.b, '-')
		}
	}
	switch r.IntN(6) {
	case 0:
		g.b = append(g.b, "NaN"...)
	case 1:
		g.b = append(g.b, "Infinity"...)
	case 2:
		g.b = append(g.b, "-Infinity"...)
	case 3: // beyond the double range
		sign()
		g.b = append(g.b, byte('1'+r.IntN(9)))
		if r.IntN(2) == 0 {
			g.b = append(g.b, '.')
			for range 1 + r.IntN(20) {
				g.b = append(g.b, byte('0'+r.IntN(10)))
			}
		}
		g.exponent(strconv.Itoa(309 + r.IntN(1000)))
	case 4: // an exponent no float64 or int64 holds, either sign
		sign()
		g.b = append(g.b, "0123456789"[r.IntN(10)])
		g.b = append(g.b, "eE"[r.IntN(2)])
		if r.IntN(2) == 0 {
			g.b = append(g.b, '-')
		}
		g.b = append(g.b, "99999999999999999999999"...)
	default: // about the midpoint of MaxFloat64 and 2^1024: ties round to inf
		sign()
		m := new(big.Int).Lsh(big.NewInt(1), 1024)
		m.Sub(m, new(big.Int).Lsh(big.NewInt(1), 970))
		digits := m.String()
		switch r.IntN(3) {
		case 0:
			digits += ".0000000000000000000001"
		case 1:
			digits = new(big.Int).Sub(m, big.NewInt(1)).String() + ".9999999999999999999"
		}
		g.b = append(g.b, digits...)
		if r.IntN(2) == 0 {
			g.exponent("0")
		}
	}
}

// exponent writes e/E, an optional '+', leading zeros and the exponent.
func (g *jsonGen) exponent(ex string) {
	r := g.r
	g.b = append(g.b, "eE"[r.IntN(2)])
	n, _ := strconv.Atoi(ex)
	if n < 0 {
		g.b = append(g.b, '-')
		n = -n
	} else if r.IntN(2) == 0 {
		g.b = append(g.b, '+')
	}
	g.b = append(g.b, strings.Repeat("0", r.IntN(3))...)
	g.b = strconv.AppendInt(g.b, int64(n), 10)
}

// randomDecimal writes an arbitrary decimal that both sides must round to
// the same nearest float: up to 40 significant digits, exponent kept clear
// of overflow.
func (g *jsonGen) randomDecimal() {
	r := g.r
	if r.IntN(3) == 0 {
		g.b = append(g.b, '-')
	}
	nd := 1 + r.IntN(40)
	ip := 1 + r.IntN(nd)
	g.b = append(g.b, byte('1'+r.IntN(9)))
	for range ip - 1 {
		g.b = append(g.b, byte('0'+r.IntN(10)))
	}
	if frac := nd - ip; frac > 0 || r.IntN(2) == 0 {
		g.b = append(g.b, '.')
		for range max(frac, 1) {
			g.b = append(g.b, byte('0'+r.IntN(10)))
		}
		if r.IntN(2) == 0 {
			return
		}
	}
	g.exponent(strconv.Itoa(r.IntN(600) - 330 - ip))
}

// midpoint writes the exact decimal halfway between f and the next float
// away from zero (ties go to even), sometimes nudged just below or above.
func (g *jsonGen) midpoint(f float64) {
	f = math.Abs(f)
	next := math.Nextafter(f, math.Inf(1))
	if math.IsInf(next, 0) {
		next, f = f, math.Nextafter(f, 0)
	}
	m := new(big.Float).SetPrec(64).SetFloat64(f)
	m.Add(m, new(big.Float).SetFloat64(next))
	m.SetMantExp(m, -1) // exact: 64 bits hold the 54-bit midpoint
	if g.r.IntN(2) == 0 {
		g.b = append(g.b, '-')
	}
	s := m.Text('e', 1100)
	mant, ex, _ := strings.Cut(s, "e")
	mant = strings.TrimRight(mant, "0")
	switch g.r.IntN(4) {
	case 0: // a hair above the midpoint
		if !strings.Contains(mant, ".") {
			mant += "."
		}
		mant += "000000000000000000001"
	case 1: // a hair below: the midpoint's last digit is 5
		if strings.HasSuffix(mant, "5") {
			mant = mant[:len(mant)-1] + "49999999999999999999"
		}
	}
	mant = strings.TrimSuffix(mant, ".")
	g.b = append(g.b, mant...)
	g.exponent(ex)
}
