package mobypay

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBenchMessages writes the messages BenchmarkSign and BenchmarkVerify
// use, for the Python reference that `make bench` times beside them
// (scripts/bench/pyref.py): the request's canonical payload and the
// result's wire line, byte for byte. It runs only when
// KIOSKD_BENCH_MESSAGES names a directory.
func TestBenchMessages(t *testing.T) {
	dir := os.Getenv("KIOSKD_BENCH_MESSAGES")
	if dir == "" {
		t.Skip("KIOSKD_BENCH_MESSAGES not set (make bench sets it)")
	}
	c := NewCodec([]byte(DevSecret))
	if _, err := c.AppendTransactionRequest(nil, testHeader, 1250, ModeCard); err != nil {
		t.Fatal(err)
	}
	wire, err := c.Seal(nil, []byte(plansPayload))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"sign.json": c.Canonical(), "verify.ndjson": wire, "secret": []byte(DevSecret)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
