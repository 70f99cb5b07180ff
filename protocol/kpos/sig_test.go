package kpos_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
)

var sigBody = []byte("001XeyJlcGsiOnsia3R5IjoiRUMifQ..UIzHIjrFX8fPX91SEUzZpA.9hmt.Q3Ys")

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P521(), elliptic.P256(), elliptic.P384()} {
		k := genKey(t, c)
		for range 10 {
			sig, err := kpos.Sign(k, sigBody)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(sig, "+/= ") {
				t.Fatalf("%s: signature not URL-encoded: %s", c.Params().Name, sig)
			}
			if err := kpos.Verify(&k.PublicKey, sigBody, sig); err != nil {
				t.Fatalf("%s: %v", c.Params().Name, err)
			}
			// What Sign wrote is DER in standard base64, URL-encoded.
			unesc, err := url.QueryUnescape(sig)
			if err != nil {
				t.Fatal(err)
			}
			der, err := base64.StdEncoding.DecodeString(unesc)
			if err != nil {
				t.Fatal(err)
			}
			h := sha512.Sum512(sigBody)
			if !ecdsa.VerifyASN1(&k.PublicKey, h[:], der) {
				t.Fatalf("%s: not an ASN.1 signature over SHA-512", c.Params().Name)
			}
		}
	}
}

// signWithPlusAndSlash signs until the base64 form holds both '+' and
// '/', the characters a wrong decoder mangles, and does not end in '+'
// (a '+' made a space there is trimmed away, by net/http too, and lost).
func signWithPlusAndSlash(t *testing.T, k *ecdsa.PrivateKey, body []byte) (der []byte, std string) {
	t.Helper()
	for range 1000 {
		h := sha512.Sum512(body)
		d, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		s := base64.StdEncoding.EncodeToString(d)
		if strings.Contains(s, "+") && strings.Contains(s, "/") && !strings.HasSuffix(strings.TrimRight(s, "="), "+") {
			return d, s
		}
	}
	t.Fatal("no signature with both '+' and '/' in 1000 tries")
	return nil, ""
}

func TestVerifyEncodings(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P521(), elliptic.P256()} {
		k := genKey(t, c)
		der, std := signWithPlusAndSlash(t, k, sigBody)
		n := (c.Params().BitSize + 7) / 8
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 2*n)
		rs.R.FillBytes(raw[:n])
		rs.S.FillBytes(raw[n:])

		forms := map[string]string{
			"URL-encoded (QueryEscape)": url.QueryEscape(std),
			"lower-case escapes":        lowerEscapes(url.QueryEscape(std)),
			"raw standard base64":       std,
			"raw, no padding":           strings.TrimRight(std, "="),
			"base64url":                 base64.URLEncoding.EncodeToString(der),
			"base64url, no padding":     base64.RawURLEncoding.EncodeToString(der),
			"'+' became a space":        strings.ReplaceAll(std, "+", " "),
			"surrounding space":         " " + url.QueryEscape(std) + " ",
			"raw r||s":                  url.QueryEscape(base64.StdEncoding.EncodeToString(raw)),
			"raw r||s, un-encoded":      base64.StdEncoding.EncodeToString(raw),
		}
		for name, v := range forms {
			if err := kpos.Verify(&k.PublicKey, sigBody, v); err != nil {
				t.Errorf("%s %s (%s): %v", c.Params().Name, name, v, err)
			}
		}
	}
}

func lowerEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteString(strings.ToLower(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestVerifyRefuses(t *testing.T) {
	k := genKey(t, elliptic.P521())
	other := genKey(t, elliptic.P521())
	p256 := genKey(t, elliptic.P256())
	sig, err := kpos.Sign(k, sigBody)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), sigBody...)
	tampered[len(tampered)-1] ^= 1
	der, _ := signWithPlusAndSlash(t, k, sigBody)
	otherSig, err := kpos.Sign(k, tampered)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), der...)
	flipped[len(flipped)-1] ^= 1

	cases := []struct {
		name string
		pub  *ecdsa.PublicKey
		body []byte
		sig  string
	}{
		{"tampered body", &k.PublicKey, tampered, sig},
		{"extra byte in body", &k.PublicKey, append(append([]byte(nil), sigBody...), '\n'), sig},
		{"body without MTI", &k.PublicKey, sigBody[4:], sig},
		{"wrong key", &other.PublicKey, sigBody, sig},
		{"key on another curve", &p256.PublicKey, sigBody, sig},
		{"no key", nil, sigBody, sig},
		{"empty", &k.PublicKey, sigBody, ""},
		{"spaces", &k.PublicKey, sigBody, "   "},
		{"garbage", &k.PublicKey, sigBody, "not a signature!"},
		{"bad percent-encoding", &k.PublicKey, sigBody, "%zz" + sig},
		{"truncated", &k.PublicKey, sigBody, sig[:len(sig)/2]},
		{"flipped signature byte", &k.PublicKey, sigBody, url.QueryEscape(base64.StdEncoding.EncodeToString(flipped))},
		{"signature of another body", &k.PublicKey, sigBody, otherSig},
		{"huge", &k.PublicKey, sigBody, strings.Repeat("A", 10000)},
		{"zero r||s", &k.PublicKey, sigBody, base64.StdEncoding.EncodeToString(make([]byte, 132))},
	}
	for _, c := range cases {
		err := kpos.Verify(c.pub, c.body, c.sig)
		if err == nil {
			t.Errorf("%s: verified", c.name)
			continue
		}
		if !errors.Is(err, kpos.ErrSignature) || !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error %q is not a kpos ErrSignature", c.name, err)
		}
	}
	if _, err := kpos.Sign(nil, sigBody); err == nil {
		t.Error("Sign without a key")
	}
}
