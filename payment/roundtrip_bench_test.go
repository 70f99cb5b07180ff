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

// benchWindow is the benchmarks' freshness and replay window, both ways:
// half a second, not the default minute. A replay guard remembers a
// nonce for two windows and holds at most mobypay.DefaultReplayCap of
// them, and a benchmark's thousand payments a second (two signed POS
// messages each) would fill it (a terminal's few a minute never do): the
// kiosk flags every later success for review as unusable, and the
// simulator refuses every later request. With 2 s, payments at 1 ms
// filled it after about 2,000 (4096 nonces in 4 s). Both ends share the
// process's clock, so half a second is still ample for freshness.
const benchWindow = 500 * time.Millisecond

// benchSecret is the HMAC secret of the benchmarks' kiosk and simulator.
var benchSecret = []byte("bench-secret")

// simConfig is the approving POS simulator the benchmarks run against
// the kiosk at addr, retrying at once if it is not up yet.
func benchSimConfig(addr string) possim.Config {
	return possim.Config{Addr: addr, Secret: benchSecret, Behaviour: possim.Approve, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Window: benchWindow}
}

// roundTrip starts a service with a journal in dir and the POS simulator
// approving over loopback TCP, and returns a function that makes one card
// payment and waits until it is vended. vender and handler are kiosk's.
func roundTrip(tb testing.TB, dir string, vender Vender, handler func(*MobyPay) mobypay.Handler) (pay func(), j *Journal) {
	payKey, j := kiosk(tb, dir, vender, handler, func(ctx context.Context, addr string) {
		sim, err := possim.New(benchSimConfig(addr))
		if err != nil {
			tb.Error(err)
			return
		}
		sim.Run(ctx)
	})
	return func() { payKey("") }, j
}

// kiosk starts a service with a journal in dir and a MobyPay server on a
// loopback port, runs pos (the terminal's side) against that port until
// the test ends, and returns a function that makes one card payment with
// idempotency key key ("" for none) and waits until it is vended.
//
// vender and handler, if set, take the place of a vender that does
// nothing and of the provider as the server's handler (handler wraps it).
func kiosk(tb testing.TB, dir string, vender Vender, handler func(*MobyPay) mobypay.Handler, pos func(ctx context.Context, addr string)) (pay func(key string), j *Journal) {
	j, err := OpenJournal(filepath.Join(dir, "journal.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	prov := NewMobyPay("KIOSK001", benchSecret, nil)
	if vender == nil {
		vender = nopVender{}
	}
	var h mobypay.Handler = prov
	if handler != nil {
		h = handler(prov)
	}
	svc := NewService(Config{}, j, vender, nil, prov)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: benchSecret, Window: benchWindow}, h)
	if err != nil {
		tb.Fatal(err)
	}
	prov.Bind(srv, svc)
	ctx, cancel := context.WithCancel(context.Background())
	events, unsub := svc.Subscribe()
	done := make(chan struct{}, 3)
	go func() { svc.Run(ctx); done <- struct{}{} }()
	go func() { srv.Serve(ctx); done <- struct{}{} }()
	go func() { pos(ctx, srv.Addr().String()); done <- struct{}{} }()
	tb.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
		unsub()
	})
	// One timer for every wait, so that the harness adds no allocations
	// of its own to a payment's.
	timeout := time.NewTimer(time.Hour)
	waitFor := func(ok func(Event) bool) {
		timeout.Reset(10 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case e, open := <-events:
				if !open {
					tb.Fatal("dropped as a subscriber that fell behind")
				}
				if ok(e) {
					return
				}
			case <-timeout.C:
				tb.Fatal("timed out")
			}
		}
	}
	waitFor(func(e Event) bool { return e.POS != nil && e.POS.State == "connected" })
	var id string
	vended := func(e Event) bool { return e.Txn != nil && e.Txn.ID == id && e.Txn.Vend == VendReleased }
	return func(key string) {
		tx, err := svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1250, Key: key})
		if err != nil {
			tb.Fatal(err)
		}
		id = tx.ID
		waitFor(vended)
	}, j
}
