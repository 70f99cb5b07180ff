package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// maxSamples bounds the latency samples a run keeps, so that a long
// -benchtime cannot grow the slice inside the timed loop; past it the
// slice is a ring of the most recent payments.
const maxSamples = 1 << 16

// BenchmarkPaymentBesideShipper is BenchmarkCommitBesideShipper for a
// whole card payment, as payment's BenchmarkPaymentRoundTrip makes it
// (five commits, the POS round trips over loopback TCP, the relay):
// the commit bench shows the journal is not slowed, this shows the
// payment a customer waits for is not either. Beside the mean it
// reports the median and the 99th percentile of Create to released,
// since a shipper that took the writer lock now and then would show in
// the tail long before the mean.
func BenchmarkPaymentBesideShipper(b *testing.B) {
	var floor float64
	for _, mode := range []string{"none", "absent", "present"} {
		b.Run(mode, func(b *testing.B) {
			j, err := payment.OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, done := shipperBeside(ctx, b, mode, j)
			if mode == "present" {
				// Otherwise the first payments are timed against a
				// connection still being made, not a broker present.
				waitUntil(b, "the shipper to connect", 10*time.Second, func() bool { return s.Stats().Connected })
			}
			rig := startPayments(ctx, b, j)

			lat := make([]time.Duration, 0, maxSamples)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				tx, err := rig.svc.Create(ctx, payment.CreateRequest{Mode: "card", Amount: 1250})
				if err != nil {
					b.Fatal(err)
				}
				rig.waitFor(func(e payment.Event) bool {
					return e.Txn != nil && e.Txn.ID == tx.ID && e.Txn.Vend == payment.VendReleased
				})
				if d := time.Since(t0); len(lat) < cap(lat) {
					lat = append(lat, d)
				} else {
					lat[i%cap(lat)] = d
				}
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			b.StopTimer()
			if mode == "none" {
				floor = per
			} else if floor > 0 {
				b.ReportMetric(per/floor, "x_floor")
			}
			slices.Sort(lat)
			b.ReportMetric(percentile(lat, 50), "p50_us")
			b.ReportMetric(percentile(lat, 99), "p99_us")

			if mode == "present" {
				// A broker that died or refused everything would leave
				// "present" timing the same as "absent", unnoticed.
				last, err := j.LastRecord()
				if err != nil {
					b.Fatal(err)
				}
				waitUntil(b, fmt.Sprintf("the shipper to ship through seq %d", last), 30*time.Second, func() bool { return s.Stats().ShippedSeq >= last })
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			<-rig.stopped // the service's last write before the journal closes
		})
	}
}

// payments is payment's BenchmarkPaymentRoundTrip rig: a service with
// the MobyPay provider, its server, and the POS simulator approving at
// once, connected.
type payments struct {
	svc     *payment.Service
	waitFor func(ok func(payment.Event) bool)
	stopped <-chan struct{}
}

func startPayments(ctx context.Context, b *testing.B, j *payment.Journal) payments {
	b.Helper()
	secret := []byte("bench-secret")
	prov := payment.NewMobyPay("KIOSK001", secret, nil)
	svc := payment.NewService(payment.Config{}, j, nopVender{}, nil, prov)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: secret}, prov)
	if err != nil {
		b.Fatal(err)
	}
	prov.Bind(srv, svc)
	events, unsub := svc.Subscribe()
	b.Cleanup(unsub)
	stopped := make(chan struct{})
	go func() { svc.Run(ctx); close(stopped) }()
	go srv.Serve(ctx)
	sim, err := possim.New(possim.Config{Addr: srv.Addr().String(), Secret: secret, Behaviour: possim.Approve, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	go sim.Run(ctx)
	waitFor := func(ok func(payment.Event) bool) {
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
	waitFor(func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
	return payments{svc: svc, waitFor: waitFor, stopped: stopped}
}

type nopVender struct{}

func (nopVender) Vend(context.Context, payment.Txn, func(int) error) error { return nil }

// percentile is the nearest-rank p-th percentile of sorted, in µs.
func percentile(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return float64(sorted[max(i-1, 0)].Nanoseconds()) / 1e3
}

// waitUntil fails b unless ok holds within d. The shipper has no
// channel for its progress, so this looks at it every few milliseconds.
func waitUntil(b *testing.B, what string, d time.Duration, ok func() bool) {
	b.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-tick.C:
		case <-deadline.C:
			b.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
