package kpos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// sampleNotification is the 0025 sample of the docs with its fields where they
// belong (the sample swaps mrn and resultCode).
const sampleNotification = `{"msgVer":"1.0","billerType":"AM","callerDeviceType":"17","callerDeviceVer":"1",` +
	`"sequenceNo":"2022091511262185","mrn":"8e8c6e61-f9e4-40f0-a4a5-9e561579c901","resultCode":"00000",` +
	`"authIdResp":"484684","paymentScheme":"VS","maskedPAN":"443322XXX1234","htr":"","paymentMethod":"01"}`

func TestSealOpen(t *testing.T) {
	kiosk, finexus := kpostest.Peers()
	body, sig, err := finexus.Seal("0025", []byte(sampleNotification))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("0025eyJ")) {
		t.Fatalf("body %.20q", body)
	}
	mti, pt, err := kiosk.Open(body, sig)
	if err != nil || mti != "0025" || string(pt) != sampleNotification {
		t.Fatalf("Open: %q %q %v", mti, pt, err)
	}
	h, err := kpos.ReadHeader(string(body[4:]))
	if err != nil || !h.EPK.Matches(finexus.Header.EPK) || h.Kid != "123" {
		t.Fatalf("header %+v, %v", h, err)
	}

	// The answer, the other way, with SealJSON's three kinds of input.
	for _, v := range []any{
		map[string]string{"resultCode": "00000"},
		json.RawMessage(`{"resultCode":"00000"}`),
		[]byte(`{"resultCode":"00000"}`),
	} {
		body, sig, err := kiosk.SealJSON("0026", v)
		if err != nil {
			t.Fatal(err)
		}
		mti, pt, err := finexus.Open(body, sig)
		if err != nil || mti != "0026" || string(pt) != `{"resultCode":"00000"}` {
			t.Fatalf("%T: %q %q %v", v, mti, pt, err)
		}
	}
	if _, _, err := kiosk.SealJSON("0026", func() {}); err == nil {
		t.Error("SealJSON marshalled a func")
	}
	body, sig, err = kiosk.Seal("001X", []byte(`{"mrn":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if mti, _, err := finexus.Open(body, sig); err != nil || mti != "001X" {
		t.Fatalf("001X: %q %v", mti, err)
	}
}

func TestOpenErrorClasses(t *testing.T) {
	kiosk, finexus := kpostest.Peers()
	body, sig, err := finexus.Seal("0025", []byte(sampleNotification))
	if err != nil {
		t.Fatal(err)
	}
	// signed re-signs a changed body with Finexus's key, so that the
	// failure is the body's, not the signature's.
	signed := func(b []byte) ([]byte, string) {
		s, err := kpos.Sign(finexus.Ours, b)
		if err != nil {
			t.Fatal(err)
		}
		return b, s
	}
	wrongCEK := *finexus
	wrongCEK.CEK = randomCEK(t)
	otherKey, otherSig, _ := wrongCEK.Seal("0025", []byte(sampleNotification))
	ownMessage, ownSig, _ := kiosk.Seal("0026", []byte("{}"))
	otherAlg, otherAlgSig := signed([]byte("0025" + sealRaw(t, kiosk.CEK, `{"alg":"A256KW","enc":"A256CBC-HS512"}`, []byte("{}"))))
	tampered := bytes.Clone(body)
	tampered[len(tampered)-3] ^= 1

	cases := []struct {
		name string
		body []byte
		sig  string
		want error
	}{
		{"tampered body", tampered, sig, kpos.ErrSignature},
		{"our own signature reflected back", ownMessage, ownSig, kpos.ErrSignature},
		{"no signature", body, "", kpos.ErrSignature},
		{"signature of another message", body, otherSig, kpos.ErrSignature},
		{"trailing newline", append(bytes.Clone(body), '\n'), sig, kpos.ErrSignature},
		{"signed, trailing newline", nil, "", kpos.ErrBody},
		{"signed, bad MTI", nil, "", kpos.ErrBody},
		{"signed, 4 parts", nil, "", kpos.ErrBody},
		{"signed, empty", nil, "", kpos.ErrBody},
		{"oversize", bytes.Repeat([]byte("A"), kpos.MaxBody+1), sig, kpos.ErrBody},
		{"signed, other content key", otherKey, otherSig, kpos.ErrDecrypt},
		{"signed, other alg", otherAlg, otherAlgSig, kpos.ErrDecrypt},
	}
	cases[5].body, cases[5].sig = signed(append(bytes.Clone(body), '\n'))
	cases[6].body, cases[6].sig = signed(append([]byte("0X25"), body[4:]...))
	cases[7].body, cases[7].sig = signed(body[:bytes.LastIndexByte(body, '.')])
	cases[8].body, cases[8].sig = signed([]byte{})
	for _, c := range cases {
		mti, pt, err := kiosk.Open(c.body, c.sig)
		if err == nil {
			t.Errorf("%s: opened as %q %q", c.name, mti, pt)
			continue
		}
		for _, class := range []error{kpos.ErrSignature, kpos.ErrBody, kpos.ErrDecrypt} {
			if errors.Is(err, class) != (class == c.want) {
				t.Errorf("%s: %v; errors.Is(%v) = %v", c.name, err, class, !(class == c.want))
			}
		}
		if mti != "" || pt != nil {
			t.Errorf("%s: returned %q %q with the error", c.name, mti, pt)
		}
		if strings.Contains(err.Error(), "resultCode") || strings.Contains(err.Error(), "A256KW") && c.want != kpos.ErrDecrypt {
			t.Errorf("%s: error leaks content: %v", c.name, err)
		}
	}
}

func TestKeysMisconfigured(t *testing.T) {
	kiosk, finexus := kpostest.Peers()
	body, sig, _ := finexus.Seal("0025", []byte("{}"))

	noTheirs := *kiosk
	noTheirs.Theirs = nil
	if _, _, err := noTheirs.Open(body, sig); err == nil || errors.Is(err, kpos.ErrSignature) {
		t.Errorf("no verification key: %v", err)
	}
	shortCEK := *kiosk
	shortCEK.CEK = kiosk.CEK[:32]
	if _, _, err := shortCEK.Open(body, sig); err == nil || errors.Is(err, kpos.ErrDecrypt) {
		t.Errorf("short content key: %v", err)
	}
	if _, _, err := shortCEK.Seal("0026", []byte("{}")); err == nil {
		t.Error("sealed with a short content key")
	}
	noOurs := *kiosk
	noOurs.Ours = nil
	if _, _, err := noOurs.Seal("0026", []byte("{}")); err == nil {
		t.Error("sealed without a signing key")
	}
	for _, mti := range []string{"", "26", "00260", "00x6", "0026 "} {
		if _, _, err := kiosk.Seal(mti, []byte("{}")); err == nil {
			t.Errorf("sealed with MTI %q", mti)
		}
	}
	if _, _, err := kiosk.Seal("0026", bytes.Repeat([]byte("a"), kpos.MaxBody)); err == nil {
		t.Error("sealed an oversize body")
	}
	// A key in the error would be a leak; check the messages we make.
	_, _, err := shortCEK.Seal("0026", []byte("{}"))
	if strings.Contains(err.Error(), string(kiosk.CEK[:4])) {
		t.Errorf("error shows key bytes: %v", err)
	}
}
