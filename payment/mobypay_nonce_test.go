package payment

import (
	"testing"

	"github.com/google/uuid"
)

// TestMobyPayNonce: the nonces drawn into the provider's buffer are what
// uuid.NewString made before: version 4, RFC 4122 variant, all distinct.
func TestMobyPayNonce(t *testing.T) {
	p := NewMobyPay("KIOSK001", []byte("s"), nil)
	seen := map[string]bool{}
	for range 1000 {
		n := p.nonce()
		u, err := uuid.Parse(n)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != n {
			t.Fatalf("nonce %q: %v, version %v, variant %v", n, err, u.Version(), u.Variant())
		}
		if seen[n] {
			t.Fatalf("nonce %q twice", n)
		}
		seen[n] = true
	}
}
