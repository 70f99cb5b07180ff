package kpos_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// Seed corpora: testdata/fuzz/FuzzParseBody and testdata/fuzz/FuzzOpen,
// made from the docs' sample body and from messages sealed with the fixed
// keys of kpostest (FuzzPeers, so their signatures stay valid).

func FuzzParseBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := kpos.ParseBody(in)
		if err != nil {
			if !errors.Is(err, kpos.ErrBody) {
				t.Fatalf("error outside ErrBody: %v", err)
			}
			if b != (kpos.Body{}) {
				t.Fatalf("non-zero Body %+v with error %v", b, err)
			}
			return
		}
		if len(in) > kpos.MaxBody || b.MTI+b.JWE != string(in) || !kpos.ValidMTI(b.MTI) {
			t.Fatalf("accepted %q as %q + %q", in, b.MTI, b.JWE)
		}
		parts := strings.Split(b.JWE, ".")
		if len(parts) != 5 || parts[1] != "" {
			t.Fatalf("accepted JWE with parts %q", parts)
		}
		for i, p := range parts {
			if i == 1 {
				continue
			}
			d, err := b64.Strict().DecodeString(p)
			if err != nil || len(d) == 0 || b64.EncodeToString(d) != p {
				t.Fatalf("accepted part %d %q: %v", i, p, err)
			}
		}
		// Whatever the form lets through, the header reader and the
		// decrypter must refuse it cleanly, never panic.
		_, _ = kpos.ReadHeader(b.JWE)
		if _, err := kpos.Decrypt(make([]byte, kpos.CEKSize), b.JWE); err != nil && !errors.Is(err, kpos.ErrDecrypt) {
			t.Fatalf("Decrypt error outside ErrDecrypt: %v", err)
		}
	})
}

// FuzzOpen feeds bodies and Signature headers to the kiosk's Open. With
// resign set the harness signs the body itself with the peer's key, so the
// fuzzer gets past the signature into the body and JWE checks.
func FuzzOpen(f *testing.F) {
	kiosk, finexus := kpostest.FuzzPeers()
	// Small seeds: Go's minimiser is quadratic in the input's length, and
	// with a kilobyte body and a signature per run it stalls the fuzzer
	// for the rest of a short run.
	finexus.Header = kpos.Header{Kid: "123"}
	body, sig, err := finexus.Seal("0025", []byte(`{"mrn":"1"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, sig, false)
	f.Fuzz(func(t *testing.T, body []byte, sig string, resign bool) {
		if resign {
			s, err := kpos.Sign(finexus.Ours, body)
			if err != nil {
				t.Fatal(err)
			}
			sig = s
		}
		mti, pt, err := kiosk.Open(body, sig)
		if err != nil {
			n := 0
			for _, class := range []error{kpos.ErrSignature, kpos.ErrBody, kpos.ErrDecrypt} {
				if errors.Is(err, class) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error in %d classes: %v", n, err)
			}
			if resign && len(body) <= kpos.MaxBody && errors.Is(err, kpos.ErrSignature) {
				t.Fatalf("our own signature refused: %v", err)
			}
			if mti != "" || pt != nil {
				t.Fatalf("returned %q %q with error %v", mti, pt, err)
			}
			return
		}
		// Accepted: the signature must verify over these exact bytes, and
		// the parts must be what the body says.
		if err := kpos.Verify(kiosk.Theirs, body, sig); err != nil {
			t.Fatalf("Open accepted a body whose signature does not verify: %v", err)
		}
		b, err := kpos.ParseBody(body)
		if err != nil || b.MTI != mti {
			t.Fatalf("Open accepted what ParseBody refuses: %v", err)
		}
		again, err := kpos.Decrypt(kiosk.CEK, b.JWE)
		if err != nil || !bytes.Equal(again, pt) {
			t.Fatalf("Decrypt disagrees with Open: %v", err)
		}
	})
}
