package kpos_test

import (
	"bytes"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// seedBody is the "Before decryption" sample of the 0025 notification
// page, copied from shared/spec/kpos-payment-notification.txt.
func seedBody(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/seed-0025-notification.txt")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

func TestParseBodySeedSample(t *testing.T) {
	body := seedBody(t)
	b, err := kpos.ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if b.MTI != "0025" || b.MTI+b.JWE != string(body) {
		t.Fatalf("MTI %q, JWE %.20q…", b.MTI, b.JWE)
	}
	parts := strings.Split(b.JWE, ".")
	raw, err := b64.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"epk": map[string]any{
			"kty": "EC", "crv": "P-256", "kid": "e86d4cfb-1d73-42d6-90ee-de5be67025e9",
			"x": "4RlHx03_veMDVhaZN_uMZigf3WWOXioxnvg-kExr31k",
			"y": "g2SUj6BgTwXjLVaiSFuhlkRZIk2wZZSZ1bDXmCI6RUw",
		},
		"kid": "123", "enc": "A256CBC-HS512", "alg": "dir",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sample header %s", raw)
	}
	// Byte for byte what the notes quote, in Finexus's member order.
	const quoted = `{"epk":{"kty":"EC","crv":"P-256","kid":"e86d4cfb-1d73-42d6-90ee-de5be67025e9",` +
		`"x":"4RlHx03_veMDVhaZN_uMZigf3WWOXioxnvg-kExr31k","y":"g2SUj6BgTwXjLVaiSFuhlkRZIk2wZZSZ1bDXmCI6RUw"},` +
		`"kid":"123","enc":"A256CBC-HS512","alg":"dir"}`
	if string(raw) != quoted {
		t.Errorf("sample header bytes\n%s\nwant\n%s", raw, quoted)
	}

	h, err := kpos.ReadHeader(b.JWE)
	if err != nil || h.Alg != kpos.AlgDir || h.Enc != kpos.EncA256CBCHS || h.Kid != "123" || h.EPK == nil ||
		h.EPK.Kid != "e86d4cfb-1d73-42d6-90ee-de5be67025e9" {
		t.Fatalf("ReadHeader: %+v, %v", h, err)
	}
	// The sample's epk is a real P-256 point: a public key, not filler.
	x, _ := b64.DecodeString(h.EPK.X)
	y, _ := b64.DecodeString(h.EPK.Y)
	if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
		t.Errorf("sample epk: %v", err)
	}
	// A256CBC-HS512 sizes: 16-byte IV, whole AES blocks, 32-byte tag.
	iv, _ := b64.DecodeString(parts[2])
	ct, _ := b64.DecodeString(parts[3])
	tag, _ := b64.DecodeString(parts[4])
	if len(iv) != 16 || len(ct)%16 != 0 || len(tag) != 32 {
		t.Errorf("IV %d, ciphertext %d, tag %d bytes", len(iv), len(ct), len(tag))
	}
	// Without the keys we can only check that it is refused cleanly.
	if _, err := kpos.Decrypt(randomCEK(t), b.JWE); !errors.Is(err, kpos.ErrDecrypt) {
		t.Errorf("decrypt under a random key: %v", err)
	}
}

func TestParseBody(t *testing.T) {
	jwe := string(seedBody(t))[4:]
	parts := strings.Split(jwe, ".")
	for _, ok := range []string{"0025" + jwe, "001X" + jwe, "0026" + jwe, "0011" + jwe, "0000" + "e30..AA.AA.AA"} {
		b, err := kpos.ParseBody([]byte(ok))
		if err != nil {
			t.Errorf("%.30q: %v", ok, err)
			continue
		}
		if b.MTI+b.JWE != ok {
			t.Errorf("%.30q split into %q + %.20q", ok, b.MTI, b.JWE)
		}
	}

	join := func(p ...string) string { return strings.Join(p, ".") }
	cases := map[string]string{
		"empty":                    "",
		"MTI only":                 "0025",
		"short":                    "002",
		"letter in MTI":            "00A5" + jwe,
		"lower-case x":             "001x" + jwe,
		"X not last":               "0X25" + jwe,
		"XXXX":                     "XXXX" + jwe,
		"space in MTI":             "002 " + jwe,
		"sign in MTI":              "+025" + jwe,
		"no MTI":                   jwe,
		"5-char MTI":               "00250" + jwe,
		"separator after MTI":      "0025." + jwe,
		"4 parts":                  "0025" + join(parts[0], parts[1], parts[2], parts[3]),
		"6 parts":                  "0025" + jwe + ".AA",
		"3 parts (a JWS)":          "0025" + join(parts[0], parts[3], parts[4]),
		"encrypted key present":    "0025" + join(parts[0], "AAAA", parts[2], parts[3], parts[4]),
		"empty header":             "0025" + join("", "", parts[2], parts[3], parts[4]),
		"empty IV":                 "0025" + join(parts[0], "", "", parts[3], parts[4]),
		"empty ciphertext":         "0025" + join(parts[0], "", parts[2], "", parts[4]),
		"empty tag":                "0025" + jwe[:strings.LastIndexByte(jwe, '.')+1],
		"trailing newline":         "0025" + jwe + "\n",
		"trailing CRLF":            "0025" + jwe + "\r\n",
		"leading space":            " 0025" + jwe,
		"space inside":             "0025" + jwe[:100] + " " + jwe[100:],
		"tab after MTI":            "0025\t" + jwe,
		"line-wrapped":             "0025" + jwe[:64] + "\n" + jwe[64:],
		"padding":                  "0025" + join(parts[0], "", parts[2]+"==", parts[3], parts[4]),
		"standard base64 alphabet": "0025" + join(parts[0], "", parts[2], parts[3]+"+/", parts[4]),
		"impossible length":        "0025" + join(parts[0], "", parts[2]+"AAA", parts[3], parts[4]),
		"non-canonical bits":       "0025" + join(parts[0], "", "UIzHIjrFX8fPX91SEUzZpB", parts[3], parts[4]),
		"NUL":                      "0025" + jwe + "\x00",
		"UTF-8":                    "0025" + jwe + "é",
		"JSON-wrapped":             `{"body":"0025` + jwe + `"}`,
		"oversize":                 "0025" + join(parts[0], "", parts[2], strings.Repeat("A", kpos.MaxBody), parts[4]),
	}
	for name, body := range cases {
		b, err := kpos.ParseBody([]byte(body))
		if err == nil {
			t.Errorf("%s: accepted as %q + %.20q", name, b.MTI, b.JWE)
			continue
		}
		if !errors.Is(err, kpos.ErrBody) || !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error %q is not a kpos ErrBody", name, err)
		}
		if b != (kpos.Body{}) {
			t.Errorf("%s: non-zero Body with an error", name)
		}
	}

	// Exactly MaxBody is fine, one more is not.
	frame := "0025e30..AA." + "." + "AAA"
	atMax := "0025e30..AA." + strings.Repeat("A", kpos.MaxBody-len(frame)) + ".AAA"
	if _, err := kpos.ParseBody([]byte(atMax)); err != nil || len(atMax) != kpos.MaxBody {
		t.Errorf("body of %d bytes: %v", len(atMax), err)
	}
	if _, err := kpos.ParseBody([]byte(atMax + "A")); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("body of %d bytes: %v", len(atMax)+1, err)
	}
}

func TestParseBodyErrorsAreClear(t *testing.T) {
	jwe := string(seedBody(t))[4:]
	for body, want := range map[string]string{
		"0025" + jwe + "\n": "whitespace",
		"00Z5" + jwe:        "MTI",
		"0025" + jwe + ".x": "6 parts",
		"0025AA.AA.AA":      "3 parts",
		"0025" + strings.Replace(jwe, "..", ".AAAA.", 1): "encrypted key",
		"0025" + jwe + "=": "padding",
	} {
		_, err := kpos.ParseBody([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.12q…: error %v, want it to mention %q", body, err, want)
		}
	}
}
