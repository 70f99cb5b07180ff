package kpos_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"

	jose "github.com/go-jose/go-jose/v4"
)

var b64 = base64.RawURLEncoding

func randomCEK(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, kpos.CEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// sealRaw is A256CBC-HS512 (RFC 7518 §5.2.2.1, §5.2.5) written out
// independently of go-jose, under any protected header text, so tests can
// make correctly authenticated JWEs that Decrypt must still refuse.
func sealRaw(t testing.TB, cek []byte, header string, plaintext []byte) string {
	t.Helper()
	macKey, encKey := cek[:32], cek[32:]
	iv := make([]byte, 16)
	if _, err := rand.Read(iv); err != nil {
		t.Fatal(err)
	}
	pad := 16 - len(plaintext)%16
	padded := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(encKey)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	aad := b64.EncodeToString([]byte(header))
	m := hmac.New(sha512.New, macKey)
	m.Write([]byte(aad))
	m.Write(iv)
	m.Write(ct)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(aad))*8))
	tag := m.Sum(nil)[:32]
	return aad + ".." + b64.EncodeToString(iv) + "." + b64.EncodeToString(ct) + "." + b64.EncodeToString(tag)
}

const stdHeader = `{"alg":"dir","enc":"A256CBC-HS512"}`

func TestEncryptDecryptRoundTrip(t *testing.T) {
	cek := randomCEK(t)
	epk := genKey(t, elliptic.P256())
	for _, h := range []kpos.Header{{}, {Kid: "123"}, {EPK: &epk.PublicKey, EPKKid: "k", Kid: "123"}} {
		for _, n := range []int{0, 1, 15, 16, 17, 1000} {
			pt := bytes.Repeat([]byte{'a'}, n)
			jwe, err := kpos.Encrypt(cek, pt, h)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kpos.Decrypt(cek, jwe)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("len %d: %q, %v", n, got, err)
			}
			if parts := strings.Split(jwe, "."); len(parts) != 5 || parts[1] != "" {
				t.Fatalf("not a 5-part dir JWE: %s", jwe)
			}
		}
	}
	// The same plaintext twice gives two ciphertexts: the IV is random.
	a, _ := kpos.Encrypt(cek, []byte("x"), kpos.Header{})
	b, _ := kpos.Encrypt(cek, []byte("x"), kpos.Header{})
	if a == b {
		t.Fatal("two encryptions are identical")
	}
}

// TestDecryptIndependent checks that our hand-written A256CBC-HS512 and
// the library agree, in both directions.
func TestDecryptIndependent(t *testing.T) {
	cek := randomCEK(t)
	pt := []byte(`{"resultCode":"00000"}`)
	got, err := kpos.Decrypt(cek, sealRaw(t, cek, stdHeader, pt))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("hand-sealed JWE: %q, %v", got, err)
	}
	jwe, err := kpos.Encrypt(cek, pt, kpos.Header{Kid: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := openRaw(t, cek, jwe); !bytes.Equal(got, pt) {
		t.Fatalf("hand-opened JWE: %q", got)
	}
}

// openRaw is sealRaw's inverse, checking the tag first.
func openRaw(t *testing.T, cek []byte, jwe string) []byte {
	t.Helper()
	p := strings.Split(jwe, ".")
	iv, _ := b64.DecodeString(p[2])
	ct, _ := b64.DecodeString(p[3])
	tag, _ := b64.DecodeString(p[4])
	m := hmac.New(sha512.New, cek[:32])
	m.Write([]byte(p[0]))
	m.Write(iv)
	m.Write(ct)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p[0]))*8))
	if !hmac.Equal(m.Sum(nil)[:32], tag) {
		t.Fatal("tag does not match")
	}
	block, _ := aes.NewCipher(cek[32:])
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
	return out[:len(out)-int(out[len(out)-1])]
}

func TestEncryptHeaderShape(t *testing.T) {
	cek := randomCEK(t)
	kE := kpostest.MustPrivateKey(kpostest.KioskECDHPEM)
	jwe, err := kpos.Encrypt(cek, []byte("{}"), kpos.Header{EPK: &kE.PublicKey, EPKKid: kpostest.KioskEPKKid, Kid: "123"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b64.DecodeString(strings.Split(jwe, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	// The coordinates of kpostest.KioskECDHPEM, read off its DER with openssl.
	want := map[string]any{
		"epk": map[string]any{
			"kty": "EC", "crv": "P-256", "kid": kpostest.KioskEPKKid,
			"x": "GqN2KkQy3dFQNnqiWpAF8uE6n92fS29k3KIASjaDOH0",
			"y": "6872cJ8RrQqA6BzzEx_NMPvy5y-oyacJlLXHcMG9eTk",
		},
		"kid": "123", "enc": "A256CBC-HS512", "alg": "dir",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("header\n%s\nwant the shape of\n%v", raw, want)
	}
	// Inside epk, the sample's member order.
	if !bytes.Contains(raw, []byte(`{"kty":"EC","crv":"P-256","kid":"`+kpostest.KioskEPKKid+`","x":"`)) {
		t.Errorf("epk members out of the samples' order: %s", raw)
	}

	h, err := kpos.ReadHeader(jwe)
	if err != nil {
		t.Fatal(err)
	}
	if h.Alg != "dir" || h.Enc != "A256CBC-HS512" || h.Kid != "123" || h.EPK == nil || h.EPK.Kid != kpostest.KioskEPKKid {
		t.Fatalf("ReadHeader: %+v", h)
	}
	if !h.EPK.Matches(&kE.PublicKey) || h.EPK.Matches(&kpostest.MustPrivateKey(kpostest.FinexusECDHPEM).PublicKey) {
		t.Fatal("JWK.Matches is wrong")
	}

	// Without EPK or kids, those members are absent rather than empty.
	jwe, _ = kpos.Encrypt(cek, []byte("{}"), kpos.Header{})
	raw, _ = b64.DecodeString(strings.Split(jwe, ".")[0])
	got = nil
	_ = json.Unmarshal(raw, &got)
	if !reflect.DeepEqual(got, map[string]any{"enc": "A256CBC-HS512", "alg": "dir"}) {
		t.Fatalf("bare header: %s", raw)
	}
	jwe, _ = kpos.Encrypt(cek, []byte("{}"), kpos.Header{EPK: &kE.PublicKey})
	raw, _ = b64.DecodeString(strings.Split(jwe, ".")[0])
	if bytes.Contains(raw, []byte(`"kid"`)) {
		t.Fatalf("empty kids were written: %s", raw)
	}
}

func TestEncryptRefuses(t *testing.T) {
	if _, err := kpos.Encrypt(make([]byte, 32), nil, kpos.Header{}); err == nil {
		t.Error("32-byte key accepted")
	}
	if _, err := kpos.Encrypt(randomCEK(t), nil, kpos.Header{EPK: &genKey(t, elliptic.P256()).PublicKey}); err != nil {
		t.Error(err)
	}
}

func TestDecryptRefuses(t *testing.T) {
	cek := randomCEK(t)
	pt := []byte(`{"mrn":"1"}`)
	good, err := kpos.Encrypt(cek, pt, kpos.Header{Kid: "123"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	join := func(p ...string) string { return strings.Join(p, ".") }
	flip := func(s string, i int) string {
		b, _ := b64.DecodeString(s)
		b[i%len(b)] ^= 1
		return b64.EncodeToString(b)
	}
	// A real JWE under other algorithms, made by the library, with keys
	// taken from the CEK so that only the algorithm choice is wrong.
	other := func(alg jose.KeyAlgorithm, enc jose.ContentEncryption, key []byte) string {
		e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.Encrypt(pt)
		if err != nil {
			t.Fatal(err)
		}
		s, err := o.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	deflated := func() string {
		e, err := jose.NewEncrypter(jose.A256CBC_HS512, jose.Recipient{Algorithm: jose.DIRECT, Key: cek},
			&jose.EncrypterOptions{Compression: jose.DEFLATE})
		if err != nil {
			t.Fatal(err)
		}
		o, _ := e.Encrypt(pt)
		s, _ := o.CompactSerialize()
		return s
	}()

	cases := map[string]string{
		"enc A128CBC-HS256":          other(jose.DIRECT, jose.A128CBC_HS256, cek[:32]),
		"enc A256GCM":                other(jose.DIRECT, jose.A256GCM, cek[:32]),
		"alg A256KW":                 other(jose.A256KW, jose.A256CBC_HS512, cek[:32]),
		"zip DEF":                    deflated,
		"alg none (authenticated)":   sealRaw(t, cek, `{"alg":"none","enc":"A256CBC-HS512"}`, pt),
		"alg missing":                sealRaw(t, cek, `{"enc":"A256CBC-HS512"}`, pt),
		"enc missing":                sealRaw(t, cek, `{"alg":"dir"}`, pt),
		"alg not a string":           sealRaw(t, cek, `{"alg":1,"enc":"A256CBC-HS512"}`, pt),
		"alg in other case":          sealRaw(t, cek, `{"alg":"DIR","enc":"A256CBC-HS512"}`, pt),
		"duplicate alg":              sealRaw(t, cek, `{"alg":"A256KW","alg":"dir","enc":"A256CBC-HS512"}`, pt),
		"only a case-folded ALG":     sealRaw(t, cek, `{"ALG":"dir","enc":"A256CBC-HS512"}`, pt),
		"kid not a string (go-jose)": sealRaw(t, cek, `{"alg":"dir","enc":"A256CBC-HS512","kid":123}`, pt),
		"crit":                       sealRaw(t, cek, `{"alg":"dir","enc":"A256CBC-HS512","crit":["exp"],"exp":1}`, pt),
		"header not JSON":            sealRaw(t, cek, `{"alg":"dir",`, pt),
		"header an array":            sealRaw(t, cek, `["dir"]`, pt),
		"header with trailing data":  sealRaw(t, cek, stdHeader+`x`, pt),
		"tampered header":            join(b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256CBC-HS512","kid":"124"}`)), "", parts[2], parts[3], parts[4]),
		"tampered IV":                join(parts[0], "", flip(parts[2], 3), parts[3], parts[4]),
		"tampered ciphertext":        join(parts[0], "", parts[2], flip(parts[3], 5), parts[4]),
		"tampered padding":           join(parts[0], "", parts[2], flip(parts[3], len(pt)/16*16+15), parts[4]),
		"tampered tag":               join(parts[0], "", parts[2], parts[3], flip(parts[4], 31)),
		"truncated tag":              join(parts[0], "", parts[2], parts[3], parts[4][:20]),
		"encrypted key present":      join(parts[0], b64.EncodeToString(cek[:16]), parts[2], parts[3], parts[4]),
		"4 parts":                    join(parts[0], "", parts[2], parts[3]),
		"6 parts":                    good + ".",
		"empty":                      "",
		"JWS":                        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
	}
	for name, jwe := range cases {
		got, err := kpos.Decrypt(cek, jwe)
		if err == nil {
			t.Errorf("%s: accepted, plaintext %q", name, got)
			continue
		}
		if !errors.Is(err, kpos.ErrDecrypt) || !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error %q is not a kpos ErrDecrypt", name, err)
		}
	}

	// The right JWE under the wrong key, and a key of the wrong size.
	if _, err := kpos.Decrypt(randomCEK(t), good); !errors.Is(err, kpos.ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := kpos.Decrypt(cek[:32], good); !errors.Is(err, kpos.ErrDecrypt) {
		t.Errorf("short key: %v", err)
	}
	// The control: the untouched JWE opens.
	if _, err := kpos.Decrypt(cek, good); err != nil {
		t.Fatal(err)
	}
}

// TestDecryptIgnoresEPK: epk and kid, whatever they hold, change nothing;
// in particular the key is never derived from epk.
func TestDecryptIgnoresEPK(t *testing.T) {
	cek := randomCEK(t)
	pt := []byte(`{"ok":true}`)
	stranger := genKey(t, elliptic.P256())
	j, _ := kpos.NewJWK(&stranger.PublicKey, "x")
	jj, _ := json.Marshal(j)
	for _, extra := range []string{
		`"epk":` + string(jj) + `,"kid":"123"`,
		`"epk":{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`, // not on the curve
		`"epk":"garbage","kid":"999"`,
		`"epk":{"kty":"OKP","crv":"X25519","x":"` + b64.EncodeToString(make([]byte, 32)) + `"}`,
		`"epk":null`,
		`"x-custom":[1,2,{"a":null}]`,
		`"ALG":"A256KW","ENC":"A128GCM"`, // member names are case-sensitive
	} {
		jwe := sealRaw(t, cek, `{`+extra+`,"enc":"A256CBC-HS512","alg":"dir"}`, pt)
		got, err := kpos.Decrypt(cek, jwe)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("header with %s: %q, %v", extra, got, err)
		}
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	for _, h := range []string{`{"kid":5}`, `{"epk":"x"}`, `{"epk":{"x":1}}`, `[]`, `{"a":1,"a":2}`} {
		if _, err := kpos.ReadHeader(b64.EncodeToString([]byte(h)) + "..a.b.c"); err == nil {
			t.Errorf("ReadHeader accepted %s", h)
		}
	}
	if _, err := kpos.ReadHeader("not*base64"); err == nil {
		t.Error("ReadHeader accepted bad base64")
	}
}
