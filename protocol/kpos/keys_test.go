package kpos_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// Pinned once from the fixed keys in kpostest and cross-checked
// outside Go: `openssl pkeyutl -derive` for Z, then sha256sum over
// counter||Z||otherInfo for each of the two rounds.
const (
	pinnedZ       = "f690f6af3f85da5781f063342d6179c622cedcdff2b5d3b9573d1084bd3beac1"
	pinnedCEKRaw  = "4d16e356d68be2a95893c385ddd8df134d81aa2bb9437e82788395ab0c0f871e422c7671cbf51aa54137a108f5d4b6544be7b627c0c10584489fc5a355031e63"
	pinnedCEKJOSE = "17e8c5f20c21ac72a467cf16c0de9652324191be36aac5f7b5944a2ec58dfb38238e5bd6fa82e31c51fcab44f1423dd84b8c5baa5af061ce1933009529005d0f"
)

// The two "other info" layouts spelled out byte by byte rather than built
// the way keys.go builds them.
var handOtherInfo = map[kpos.OtherInfo][]byte{
	kpos.OtherInfoRaw: {'1', '.', '0'},
	kpos.OtherInfoJOSE: []byte("\x00\x00\x00\x0d" + "A256CBC-HS512" + // AlgorithmID
		"\x00\x00\x00\x00" + // PartyUInfo: empty
		"\x00\x00\x00\x03" + "1.0" + // PartyVInfo
		"\x00\x00\x02\x00"), // SuppPubInfo: 512 bits
}

// handKDF is the Concat KDF written out: two SHA-256 rounds with the
// counter 1 then 2.
func handKDF(z, other []byte) []byte {
	h1 := sha256.Sum256(append(append([]byte{0, 0, 0, 1}, z...), other...))
	h2 := sha256.Sum256(append(append([]byte{0, 0, 0, 2}, z...), other...))
	return append(h1[:], h2[:]...)
}

func TestDeriveKeyPinned(t *testing.T) {
	kE, fE := kpostest.MustPrivateKey(kpostest.KioskECDHPEM), kpostest.MustPrivateKey(kpostest.FinexusECDHPEM)
	z, err := mustECDH(t, kE).ECDH(mustECDHPub(t, &fE.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(z) != pinnedZ {
		t.Fatalf("Z = %x, want %s", z, pinnedZ)
	}
	for info, want := range map[kpos.OtherInfo]string{kpos.OtherInfoRaw: pinnedCEKRaw, kpos.OtherInfoJOSE: pinnedCEKJOSE} {
		if got := hex.EncodeToString(handKDF(z, handOtherInfo[info])); got != want {
			t.Fatalf("%v: hand KDF = %s, pinned %s", info, got, want)
		}
		for _, pair := range [][2]*ecdsa.PrivateKey{{kE, fE}, {fE, kE}} {
			k, err := kpos.DeriveKey(pair[0], &pair[1].PublicKey, info)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(k); got != want {
				t.Errorf("%v: DeriveKey = %s, want %s", info, got, want)
			}
		}
	}
}

func TestDeriveKeyIndependent(t *testing.T) {
	for i := range 20 {
		a, b := genKey(t, elliptic.P256()), genKey(t, elliptic.P256())
		z, err := mustECDH(t, a).ECDH(mustECDHPub(t, &b.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range []kpos.OtherInfo{kpos.OtherInfoRaw, kpos.OtherInfoJOSE} {
			want := handKDF(z, handOtherInfo[info])
			ab, err := kpos.DeriveKey(a, &b.PublicKey, info)
			if err != nil {
				t.Fatal(err)
			}
			ba, err := kpos.DeriveKey(b, &a.PublicKey, info)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ab, want) || !bytes.Equal(ba, want) {
				t.Fatalf("round %d %v: ours/theirs %x, theirs/ours %x, by hand %x", i, info, ab, ba, want)
			}
			if len(ab) != kpos.CEKSize {
				t.Fatalf("key of %d bytes", len(ab))
			}
		}
		raw, _ := kpos.DeriveKey(a, &b.PublicKey, kpos.OtherInfoRaw)
		jose, _ := kpos.DeriveKey(a, &b.PublicKey, kpos.OtherInfoJOSE)
		if bytes.Equal(raw, jose) {
			t.Fatal("both other-info layouts give the same key")
		}
	}
}

func TestDeriveKeyRefuses(t *testing.T) {
	p256 := genKey(t, elliptic.P256())
	p521 := genKey(t, elliptic.P521())
	p384 := genKey(t, elliptic.P384())
	cases := []struct {
		name   string
		ours   *ecdsa.PrivateKey
		theirs *ecdsa.PublicKey
		info   kpos.OtherInfo
	}{
		{"nil ours", nil, &p256.PublicKey, kpos.OtherInfoRaw},
		{"nil theirs", p256, nil, kpos.OtherInfoRaw},
		{"ours P-521", p521, &p256.PublicKey, kpos.OtherInfoRaw},
		{"theirs P-384", p256, &p384.PublicKey, kpos.OtherInfoRaw},
		{"unknown other info", p256, &p256.PublicKey, kpos.OtherInfo(7)},
	}
	for _, c := range cases {
		if k, err := kpos.DeriveKey(c.ours, c.theirs, c.info); err == nil || k != nil {
			t.Errorf("%s: accepted", c.name)
		} else if !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error %q lacks the kpos prefix", c.name, err)
		}
	}
}

func TestParseOtherInfo(t *testing.T) {
	for in, want := range map[string]kpos.OtherInfo{"": kpos.OtherInfoRaw, "raw": kpos.OtherInfoRaw, " JOSE ": kpos.OtherInfoJOSE, "jwa": kpos.OtherInfoJOSE} {
		if got, err := kpos.ParseOtherInfo(in); err != nil || got != want {
			t.Errorf("ParseOtherInfo(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := kpos.ParseOtherInfo("1.0"); err == nil {
		t.Error("accepted 1.0")
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k := genKey(t, c)
		sec1, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 35}})
		for name, text := range map[string][]byte{
			"SEC1":                pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
			"PKCS#8":              pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
			"openssl ecparam out": append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
		} {
			got, err := kpos.ParsePrivateKeyPEM(text)
			if err != nil {
				t.Fatalf("%s %s: %v", c.Params().Name, name, err)
			}
			if !got.Equal(k) {
				t.Fatalf("%s %s: a different key", c.Params().Name, name)
			}
		}
	}

	k := genKey(t, elliptic.P256())
	pkix, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sec1, _ := x509.MarshalECPrivateKey(k)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string][]byte{
		"empty":           nil,
		"not PEM":         []byte("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49"),
		"public key":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"SEC1 as PKCS#8":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sec1}),
		"X25519 in PKCS8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}),
		"encrypted PEM": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1,
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}}),
		"garbage DER": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}),
	} {
		if _, err := kpos.ParsePrivateKeyPEM(text); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error %q lacks the kpos prefix", name, err)
		}
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k := genKey(t, c)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		got, err := kpos.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil || !got.Equal(&k.PublicKey) {
			t.Fatalf("%s: %v", c.Params().Name, err)
		}
	}
	k := genKey(t, elliptic.P256())
	sec1, _ := x509.MarshalECPrivateKey(k)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	xder, _ := x509.MarshalPKIXPublicKey(x.PublicKey())
	for name, text := range map[string][]byte{
		"empty":       nil,
		"private key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"X25519":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: xder}),
		"garbage":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}),
	} {
		if _, err := kpos.ParsePublicKeyPEM(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseRawKey(t *testing.T) {
	key := make([]byte, kpos.CEKSize)
	for i := range key {
		key[i] = byte(0xfb - i) // high bytes give '+' '/' in base64
	}
	for _, s := range []string{
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		"  " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		got, err := kpos.ParseRawKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ParseRawKey(%q) = %x, %v", s, got, err)
		}
	}
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQ"
	for _, s := range []string{
		"",
		hex.EncodeToString(key[:63]),
		hex.EncodeToString(append(key, 0)),
		base64.StdEncoding.EncodeToString(key[:32]),
		base64.StdEncoding.EncodeToString(append(key, 1)),
		strings.Repeat("g", 128), // 128 characters, not hex: 96 bytes of base64
		"!!" + secret,
		secret,
	} {
		_, err := kpos.ParseRawKey(s)
		if err == nil {
			t.Errorf("ParseRawKey(%q) accepted", s)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) || strings.Contains(err.Error(), secret) {
			t.Errorf("error %q repeats the key", err)
		}
	}
}

func mustECDH(t *testing.T, k *ecdsa.PrivateKey) *ecdh.PrivateKey {
	t.Helper()
	e, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustECDHPub(t *testing.T, k *ecdsa.PublicKey) *ecdh.PublicKey {
	t.Helper()
	e, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// genKey makes a fresh key, for tests that need any key of a curve.
func genKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
