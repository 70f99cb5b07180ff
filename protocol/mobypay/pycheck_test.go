package mobypay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests in pycheck*_test.go check the canonicaliser and the codec against
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
