package payment

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// BenchmarkKPOSNotification is one 0025 through the receiver: P-521
// signature verified over the body, JWE decrypted, fields validated, the
// outcome journaled (fsync) and a signed 0026 written. Each notification
// is about a different journaled payment.
func BenchmarkKPOSNotification(b *testing.B) {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	gen := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	cek := make([]byte, kpos.CEKSize)
	rand.Read(cek)
	kioskSign, finexusSign := gen(elliptic.P521()), gen(elliptic.P521())
	kioskKeys := &kpos.Keys{CEK: cek, Ours: kioskSign, Theirs: &finexusSign.PublicKey}
	hostKeys := &kpos.Keys{CEK: cek, Ours: finexusSign, Theirs: &kioskSign.PublicKey}

	prov := NewKPOS(KPOSConfig{MID: "1"}, nil, j, nil)
	svc := NewService(Config{}, j, nopVender{}, nil, prov)
	prov.Bind(svc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Run(ctx)
	recv := kpos.NewReceiver(kpos.ReceiverConfig{Keys: kioskKeys}, func(ctx context.Context, n kpos.Notification, p []byte) (string, error) {
		return prov.Notified(ctx, n, p, kpos.DefaultCodes)
	})

	type note struct{ body, sig string }
	notes := make([]note, b.N)
	for i := range notes {
		tx := Txn{Provider: "kpos", Mode: "card", Amount: 1250}
		if err := j.Create(&tx, time.Now()); err != nil {
			b.Fatal(err)
		}
		n := kpos.Notification{MsgVer: "1.0", BillerType: "AM", CallerDeviceType: "17", CallerDeviceVer: "1",
			SequenceNo: fmt.Sprint(i + 1), MRN: tx.ID, ResultCode: "00000", AuthIDResp: "484684", PaymentScheme: "VS",
			MaskedPAN: "443322XXX1234", HTR: "HTR1", PaymentMethod: "01"}
		plain, _ := json.Marshal(n)
		body, sig, err := hostKeys.Seal(kpos.MTINotification, plain)
		if err != nil {
			b.Fatal(err)
		}
		notes[i] = note{string(body), sig}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/kpos/notification", strings.NewReader(notes[i].body))
		req.Header.Set("Signature", notes[i].sig)
		w := httptest.NewRecorder()
		recv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d", w.Code)
		}
	}
}
