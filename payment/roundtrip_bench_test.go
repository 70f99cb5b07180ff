package payment

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

type nopVender struct{}

func (nopVender) Vend(context.Context, Txn, func(int) error) error { return nil }

// BenchmarkPaymentRoundTrip is the kiosk-side cost of one card payment
// with the POS simulator answering at once over loopback TCP: request
// signed and sent, ack and result verified, five journal commits (created,
// sent, acked, approved+releasing, released), relay released.
func BenchmarkPaymentRoundTrip(b *testing.B) {
	secret := []byte("bench-secret")
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	prov := NewMobyPay("KIOSK001", secret, nil)
	svc := NewService(Config{}, j, nopVender{}, nil, prov)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: secret}, prov)
	if err != nil {
		b.Fatal(err)
	}
	prov.Bind(srv, svc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, unsub := svc.Subscribe()
	defer unsub()
	go svc.Run(ctx)
	go srv.Serve(ctx)
	sim, err := possim.New(possim.Config{Addr: srv.Addr().String(), Secret: secret, Behaviour: possim.Approve, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	go sim.Run(ctx)
	waitFor := func(ok func(Event) bool) {
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e, open := <-events:
				if !open {
					b.Fatal("dropped as a subscriber that fell behind")
				}
				if ok(e) {
					return
				}
			case <-timeout:
				b.Fatal("timed out")
			}
		}
	}
	waitFor(func(e Event) bool { return e.POS != nil && e.POS.State == "connected" })
	b.ReportAllocs()
	for b.Loop() {
		tx, err := svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1250})
		if err != nil {
			b.Fatal(err)
		}
		waitFor(func(e Event) bool { return e.Txn != nil && e.Txn.ID == tx.ID && e.Txn.Vend == VendReleased })
	}
}
