package kpos_test

import (
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
)

func benchKeys(b *testing.B) (kiosk, host *kpos.Keys) {
	cek := make([]byte, kpos.CEKSize)
	rand.Read(cek)
	ks, hs := genKey(b, elliptic.P521()), genKey(b, elliptic.P521())
	return &kpos.Keys{CEK: cek, Ours: ks, Theirs: &hs.PublicKey}, &kpos.Keys{CEK: cek, Ours: hs, Theirs: &ks.PublicKey}
}

// BenchmarkOpenNotification: P-521 signature check over the body, JWE
// decryption and field validation of one 0025.
func BenchmarkOpenNotification(b *testing.B) {
	kiosk, host := benchKeys(b)
	plain := []byte(`{"msgVer":"1.0","billerType":"AM","callerDeviceType":"17","callerDeviceVer":"1","sequenceNo":"202409288868","mrn":"TXN1757492341554","resultCode":"00000","authIdResp":"484684","paymentScheme":"VS","maskedPAN":"443322XXX1234","htr":"","paymentMethod":"01"}`)
	body, sig, err := host.Seal(kpos.MTINotification, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, p, err := kiosk.Open(body, sig)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kpos.ParseNotification(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealReply: encrypting and P-521-signing our 0026 answer.
func BenchmarkSealReply(b *testing.B) {
	kiosk, _ := benchKeys(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := kiosk.Seal(kpos.MTINotificationOK, []byte(`{"resultCode":"00000"}`)); err != nil {
			b.Fatal(err)
		}
	}
}
