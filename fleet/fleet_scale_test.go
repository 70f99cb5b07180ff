package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/payment"
)

// TestFleetOf200: 200 kiosks, each an in-process shipper over its own
// bbolt journal, take payments at once while shipping to one broker. The
// audit, the operator's view, finds every kiosk's every seq, no gap, no
// conflicting resend; the log has the fleet's events/s and the lag on
// the broker's side: how long after its write each kiosk's records
// reached the consumer (the newest, and the longest of any).
func TestFleetOf200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 shippers")
	}
	const kiosks, records = 200, 50
	b := fleettest.Start(t, "max_connections -1")
	total := kiosks * records
	rep := startAudit(t, b, func(c *collector) bool {
		n := 0
		for i := range kiosks {
			n += c.events(fmt.Sprintf("k%03d", i))
		}
		return n >= total
	})
	ctx, cancel := context.WithCancel(context.Background())
	var shippers sync.WaitGroup
	defer func() { cancel(); shippers.Wait() }()
	journals := make([]*payment.Journal, kiosks)
	for i := range kiosks {
		j, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		cfg := testConfig(b, fmt.Sprintf("k%03d", i))
		cfg.Log = discardLogger()
		s, err := New(cfg, j, nil)
		if err != nil {
			t.Fatal(err)
		}
		j.OnWrite(s.Notify)
		shippers.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Errorf("k%03d: %v", i, err)
			}
		})
		journals[i] = j
	}
	// Every kiosk takes its payments as fast as its journal commits them.
	start := time.Now()
	var writers sync.WaitGroup
	for _, j := range journals {
		writers.Go(func() {
			for n := range records {
				tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: payment.Sen(100 + n)}
				if err := j.Create(&tx, time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	wrote := time.Since(start)
	r := waitReport(t, rep)
	took := time.Since(start)
	var lags, maxLags []time.Duration
	for i := range kiosks {
		id := fmt.Sprintf("k%03d", i)
		k := r.Kiosks[id]
		if k == nil || k.Events != records || k.Lowest != 1 || k.Highest != records || len(k.Gaps) > 0 || len(k.Conflicts) > 0 {
			t.Fatalf("%s: %+v; want %d events 1..%d, no gap, no conflict", id, k, records, records)
		}
		lags, maxLags = append(lags, k.Lag), append(maxLags, k.MaxLag)
	}
	if !r.Clean() {
		t.Fatalf("the audit of the fleet is not clean: %+v", r)
	}
	slices.Sort(lags)
	slices.Sort(maxLags)
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	t.Logf("%d kiosks x %d payments: written in %v, all %d events at the consumer after %v: %.0f events/s for the fleet, %.0f per kiosk",
		kiosks, records, ms(wrote), total, ms(took), float64(total)/took.Seconds(), float64(records)/took.Seconds())
	t.Logf("lag on the broker's side, per kiosk: last record median %v, max %v; longest of any record median %v, max %v",
		ms(lags[len(lags)/2]), ms(lags[len(lags)-1]), ms(maxLags[len(maxLags)/2]), ms(maxLags[len(maxLags)-1]))
}
