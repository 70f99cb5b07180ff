package mdb_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// BenchmarkReplyLatency polls an enabled device through the loop and
// reports the loop's reply latency (p50, p99, max in µs, replies over
// 5 ms) over the fake and over the TCP stream on loopback; the +gc
// variants run a goroutine that allocates without pause beside it, so
// that the collector runs all the time, to show what its pauses cost the
// reply path that does not allocate.
func BenchmarkReplyLatency(b *testing.B) {
	for _, tc := range []struct {
		name string
		tcp  bool
		gc   bool
	}{{"fake", false, false}, {"fake+gc", false, true}, {"tcp", true, false}, {"tcp+gc", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			d := newDevice(b)
			var p vmcsim.Peripheral
			var tr devmdb.Transport
			if tc.tcp {
				ln, err := mdbtest.Listen()
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				st, err := devmdb.OpenStream(ln.Device(), devmdb.StreamOptions{})
				if err != nil {
					b.Fatal(err)
				}
				tr = st
				l := startLoop(b, tr, d, devmdb.Options{})
				c := accept(b, ln)
				defer c.Close()
				p = &mdbtest.StreamVMC{C: c}
				bench(b, l, p, tc.gc)
				return
			}
			f := mdbtest.New()
			l := startLoop(b, f, d, devmdb.Options{})
			bench(b, l, f, tc.gc)
		})
	}
}

func bench(b *testing.B, l *devmdb.Loop, p vmcsim.Peripheral, gc bool) {
	v := vmcsim.New(p, mdb.AddrCashless1)
	if _, err := v.Init(0); err != nil {
		b.Fatal(err)
	}
	poll := v.Block(2)
	if gc {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keep [][]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				keep = append(keep, make([]byte, 4096))
				if len(keep) > 1024 {
					keep = keep[:0]
				}
			}
		}()
		defer func() { close(stop); wg.Wait() }()
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	l.ResetStats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r := p.Handle(poll); len(r) != 1 {
			b.Fatalf("poll: %03x", r)
		}
	}
	b.StopTimer()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	s := l.Stats()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(s.P50), "p50-µs")
	b.ReportMetric(us(s.P99), "p99-µs")
	b.ReportMetric(us(s.Max), "max-µs")
	b.ReportMetric(float64(s.Late), "late")
	b.ReportMetric(float64(ms1.NumGC-ms0.NumGC), "gcs")
}
