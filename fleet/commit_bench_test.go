package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/payment"
)

// BenchmarkCommitBesideShipper is the issue's "a slow or absent broker
// never delays a payment": a payment's only contact with the fleet is
// the journal (its writer lock, which the cursor writes take, and
// OnWrite's Notify), so it times journal commits, as a payment makes
// them, with no shipper (the floor), a shipper whose broker is not
// there, and one shipping every commit to a live broker. Each reports
// its time as a ratio to the floor measured in the same run.
func BenchmarkCommitBesideShipper(b *testing.B) {
	var floor float64
	for _, mode := range []string{"none", "absent", "present"} {
		b.Run(mode, func(b *testing.B) {
			j, err := payment.OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			ctx, cancel := context.WithCancel(context.Background())
			_, done := shipperBeside(ctx, b, mode, j)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: payment.Sen(100 + i%900)}
				if err := j.Create(&tx, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			b.StopTimer()
			if mode == "none" {
				floor = per
			} else if floor > 0 {
				b.ReportMetric(per/floor, "x_floor")
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// shipperBeside starts what mode names beside j, as the benchmarks
// compare them: nothing ("none", the floor), a shipper whose broker is
// not there ("absent"), or one shipping every commit to a live
// mosquitto ("present"). done gets Run's result, at once for "none".
func shipperBeside(ctx context.Context, b *testing.B, mode string, j *payment.Journal) (*Shipper, <-chan error) {
	done := make(chan error, 1)
	if mode == "none" {
		done <- nil
		return nil, done
	}
	cfg := Config{Broker: fmt.Sprintf("mqtt://127.0.0.1:%d", fleettest.FreePort(b)), KioskID: "bench"}
	if mode == "present" {
		cfg = testConfig(fleettest.Start(b), "bench")
	}
	cfg.Log = discardLogger()
	s, err := New(cfg, j, nil)
	if err != nil {
		b.Fatal(err)
	}
	j.OnWrite(s.Notify)
	go func() { done <- s.Run(ctx) }()
	return s, done
}
