package payment

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// resultClock is the server's handler with a stopwatch: it notes when a
// verified success is handed over, which is as soon after its last byte
// as the kiosk can know it is one (the frame read, the signature and
// freshness checked).
type resultClock struct {
	*MobyPay
	mu   sync.Mutex
	at   map[string]time.Time
	lats []time.Duration
}

func (c *resultClock) Message(m *mobypay.Message) {
	if m.Type == mobypay.TypeTransactionResult && m.Status == mobypay.StatusSuccess {
		now := time.Now()
		c.mu.Lock()
		c.at[m.TxnID] = now
		c.mu.Unlock()
	}
	c.MobyPay.Message(m)
}

// Vend is the relay: the moment it is called ends the measurement.
func (c *resultClock) Vend(_ context.Context, t Txn, _ func(int) error) error {
	now := time.Now()
	c.mu.Lock()
	if at, ok := c.at[t.ID]; ok {
		c.lats = append(c.lats, now.Sub(at))
		delete(c.at, t.ID)
	}
	c.mu.Unlock()
	return nil
}

// BenchmarkResultToRelay: from a verified success to the relay's call,
// over whole card payments through the POS simulator on loopback TCP.
// On the way: the report to the service loop, the approval journaled
// with releasing (one commit: held sent and ack steps, the approval, its
// evidence and outbox records), and the vend started. The commit is the
// floor, measured in the same run on the same kind of disk: a bare bbolt
// commit of a record this size. x is what the kiosk adds to it, reported
// as "fsync + x": p50 and p99 of the latency less the floor's p50.
//
//	go test -run '^$' -bench ResultToRelay -benchtime 10000x ./payment
func BenchmarkResultToRelay(b *testing.B) {
	clock := &resultClock{at: map[string]time.Time{}}
	pay, _ := roundTrip(b, b.TempDir(), clock, func(p *MobyPay) mobypay.Handler { clock.MobyPay = p; return clock })
	b.ReportAllocs()
	for b.Loop() {
		pay()
	}
	b.StopTimer()
	lats := slices.Clone(clock.lats)
	if len(lats) != b.N {
		b.Fatalf("%d latencies for %d payments", len(lats), b.N)
	}
	floor := commitFloor(b, min(b.N, 2000))
	p50, p99 := quantile(lats, 0.5), quantile(lats, 0.99)
	f50 := quantile(floor, 0.5)
	b.ReportMetric(us(p50), "p50_us")
	b.ReportMetric(us(p99), "p99_us")
	b.ReportMetric(us(f50), "commit_p50_us")
	b.ReportMetric(us(p50-f50), "x_p50_us")
	b.ReportMetric(us(p99-f50), "x_p99_us")
}

// commitFloor times n bare bbolt commits of one put the size of a
// payment's record, each fsynced as the journal's are.
func commitFloor(b *testing.B, n int) []time.Duration {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	tx := Txn{Provider: "mobypay", Mode: "card", Amount: 1250}
	if err := j.Create(&tx, time.Now()); err != nil {
		b.Fatal(err)
	}
	v, err := encodeTxn(&tx)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := j.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketTxns).Put([]byte(tx.ID), v) }); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
