package payment

import (
	"context"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/internal/gctune"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// resultClock is the server's handler with a stopwatch: it notes when a
// verified success is handed over, which is as soon after its last byte
// as the kiosk can know it is one (the frame read, the signature and
// freshness checked).
type resultClock struct {
	*MobyPay
	disk func() time.Duration // the journal's time in the disk so far (bbolt's WriteTime)
	mu   sync.Mutex
	at   map[string]mark
	lats []time.Duration
	xs   []time.Duration // each latency less the disk time spent inside it
}

// A mark is when a success was handed over, and the journal's disk time
// then.
type mark struct {
	at   time.Time
	disk time.Duration
}

func (c *resultClock) Message(m *mobypay.Message) {
	if m.Type == mobypay.TypeTransactionResult && m.Status == mobypay.StatusSuccess {
		now := mark{time.Now(), c.disk()}
		c.mu.Lock()
		c.at[m.TxnID] = now
		c.mu.Unlock()
	}
	c.MobyPay.Message(m)
}

// Vend is the relay: the moment it is called ends the measurement.
func (c *resultClock) Vend(_ context.Context, t Txn, _ func(int) error) error {
	now, disk := time.Now(), c.disk()
	c.mu.Lock()
	if m, ok := c.at[t.ID]; ok {
		lat := now.Sub(m.at)
		c.lats = append(c.lats, lat)
		c.xs = append(c.xs, lat-(disk-m.disk))
		delete(c.at, t.ID)
	}
	c.mu.Unlock()
	return nil
}

// BenchmarkResultToRelay: from a verified success to the relay's call,
// over whole card payments with the POS simulator in a child process, on
// loopback TCP.
// On the way: the report to the service loop, the approval journaled
// with releasing (one commit: the held sent and ack steps, the approval,
// their evidence and outbox records), and the vend started. The floor is
// that commit alone: the same bbolt gets and puts of the same sizes in
// the same buckets (captured from a sale, as BenchmarkPaymentFloor
// does), fsynced, measured in the same run on the same disk. x is what
// the kiosk adds to it, reported as "commit + x": each payment's latency
// less the time its own commit spent writing to the disk (bbolt's
// WriteTime: the page writes and both fdatasyncs), so that the disk's
// tail, which no code of ours can shorten, is not counted as ours. The
// floor's p50 and p99 say what a commit costs on this disk.
//
//	go test -run '^$' -bench ResultToRelay -benchtime 10000x ./payment
func BenchmarkResultToRelay(b *testing.B) {
	// The collector as kioskd runs it (internal/gctune): its pauses and
	// assists are most of the p99.
	defer debug.SetGCPercent(debug.SetGCPercent(gctune.Percent))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(gctune.MemoryLimit))
	clock := &resultClock{at: map[string]mark{}}
	// The POS in a child process: its garbage is not the kiosk's to
	// collect, nor its goroutines the kiosk's to share a core with, any
	// more than a real terminal's.
	payKey, j := kiosk(b, b.TempDir(), clock, func(p *MobyPay) mobypay.Handler { clock.MobyPay = p; return clock }, childPOS(b))
	pay := func() { payKey("") }
	clock.disk = func() time.Duration {
		s := j.db.Stats()
		return s.TxStats.GetWriteTime()
	}
	shape := captureSale(b, j, pay)
	clock.mu.Lock()
	clock.lats, clock.xs = clock.lats[:0], clock.xs[:0]
	clock.mu.Unlock()
	b.ReportAllocs()
	steal0, all0 := hostSteal()
	for b.Loop() {
		pay()
	}
	b.StopTimer()
	steal1, all1 := hostSteal()
	lats, xs := slices.Clone(clock.lats), slices.Clone(clock.xs)
	if len(lats) != b.N {
		b.Fatalf("%d latencies for %d payments", len(lats), b.N)
	}
	var floor []time.Duration
	sale := newFloor(b, shape, func(i int, d time.Duration) {
		if i == 1 { // the approval's commit
			floor = append(floor, d)
		}
	})
	for range min(b.N, 2000) {
		sale()
	}
	p50, p99 := quantile(lats, 0.5), quantile(lats, 0.99)
	f50, f99 := quantile(floor, 0.5), quantile(floor, 0.99)
	b.ReportMetric(us(p50), "p50_us")
	b.ReportMetric(us(p99), "p99_us")
	b.ReportMetric(us(f50), "commit_p50_us")
	b.ReportMetric(us(f99), "commit_p99_us")
	b.ReportMetric(us(quantile(xs, 0.5)), "x_p50_us")
	b.ReportMetric(us(quantile(xs, 0.99)), "x_p99_us")
	if all1 > all0 {
		b.ReportMetric(100*float64(steal1-steal0)/float64(all1-all0), "steal_%")
	}
}

// hostSteal reads /proc/stat's total CPU time and, of it, the time the
// hypervisor ran something else while this machine's CPUs wanted to run
// (steal), in clock ticks; zeros where there is no /proc/stat. On a
// shared virtual machine steal is the tail of the relay latency: a
// payment whose CPU is taken away for a tick takes a tick longer, and
// no code of ours can shorten that, so the benchmark says how much of
// it there was.
func hostSteal() (steal, all uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	return parseStat(string(b))
}

// parseStat is hostSteal's reader of /proc/stat's first line.
func parseStat(stat string) (steal, all uint64) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		// guest and guest_nice (fields 9 and 10) are already in user
		// and nice.
		if i < 8 {
			all += n
		}
		if i == 7 {
			steal = n
		}
	}
	return steal, all
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		stat       string
		steal, all uint64
	}{
		{"cpu  30245 0 24622 8293989 21049 0 5845 32550 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 32550, 30245 + 24622 + 8293989 + 21049 + 5845 + 32550},
		{"cpu  1 2 3 4 5 6 7 8 9 10", 8, 36}, // guest time is in user's already
		{"cpu  1 2 3 4 5 6 7", 0, 0},         // a kernel without steal
		{"cpu0 1 2 3 4 5 6 7 8 0 0", 0, 0},
		{"cpu  1 2 3 4 5 6 7 x 0 0", 0, 0},
		{"", 0, 0},
	} {
		if steal, all := parseStat(c.stat); steal != c.steal || all != c.all {
			t.Errorf("parseStat(%q) = %d, %d; want %d, %d", c.stat, steal, all, c.steal, c.all)
		}
	}
	if _, err := os.Stat("/proc/stat"); err == nil {
		if steal, all := hostSteal(); all == 0 || steal > all {
			t.Errorf("hostSteal on this machine: steal %d of %d", steal, all)
		}
	}
}
