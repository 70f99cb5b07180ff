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
// signed and sent, ack and result verified, three journal commits
// (created; sent, acked and approved+releasing; released), relay
// released. commits/op counts them.
func BenchmarkPaymentRoundTrip(b *testing.B) {
	pay, j := roundTrip(b, b.TempDir(), nil, nil)
	b.ReportAllocs()
	c0 := j.Commits()
	for b.Loop() {
		pay()
	}
	b.ReportMetric(float64(j.Commits()-c0)/float64(b.N), "commits/op")
}

// roundTrip starts a service with a journal in dir and the POS simulator
// approving over loopback TCP, and returns a function that makes one card
// payment and waits until it is vended.
//
// vender and handler, if set, take the place of a vender that does
// nothing and of the provider as the server's handler (handler wraps it).
func roundTrip(tb testing.TB, dir string, vender Vender, handler func(*MobyPay) mobypay.Handler) (pay func(), j *Journal) {
	secret := []byte("bench-secret")
	j, err := OpenJournal(filepath.Join(dir, "journal.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	prov := NewMobyPay("KIOSK001", secret, nil)
	if vender == nil {
		vender = nopVender{}
	}
	var h mobypay.Handler = prov
	if handler != nil {
		h = handler(prov)
	}
	svc := NewService(Config{}, j, vender, nil, prov)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: secret}, h)
	if err != nil {
		tb.Fatal(err)
	}
	prov.Bind(srv, svc)
	ctx, cancel := context.WithCancel(context.Background())
	events, unsub := svc.Subscribe()
	done := make(chan struct{}, 3)
	go func() { svc.Run(ctx); done <- struct{}{} }()
	go func() { srv.Serve(ctx); done <- struct{}{} }()
	sim, err := possim.New(possim.Config{Addr: srv.Addr().String(), Secret: secret, Behaviour: possim.Approve, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { sim.Run(ctx); done <- struct{}{} }()
	tb.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
		unsub()
	})
	waitFor := func(ok func(Event) bool) {
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e, open := <-events:
				if !open {
					tb.Fatal("dropped as a subscriber that fell behind")
				}
				if ok(e) {
					return
				}
			case <-timeout:
				tb.Fatal("timed out")
			}
		}
	}
	waitFor(func(e Event) bool { return e.POS != nil && e.POS.State == "connected" })
	return func() {
		tx, err := svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1250})
		if err != nil {
			tb.Fatal(err)
		}
		waitFor(func(e Event) bool { return e.Txn != nil && e.Txn.ID == tx.ID && e.Txn.Vend == VendReleased })
	}, j
}
