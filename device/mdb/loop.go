package mdb

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// Handler is what the loop feeds: protocol/mdb's Device.
type Handler interface {
	Handle(in []mdb.Word) []mdb.Word
}

// TraceEntry is one exchange as the loop saw it. Unit and Reply alias the
// loop's buffers and are valid only during the callback.
type TraceEntry struct {
	Time    time.Time // when the unit's last word was read
	Unit    []mdb.Word
	Reply   []mdb.Word    // nil: the device stayed silent
	Latency time.Duration // to the reply written; zero for silence
	// Gap is set when the unit was cut by the inter-byte gap (or by the
	// next marked word) rather than found complete.
	Gap bool
}

// Options tune the loop; the zero value is the standard's timing.
type Options struct {
	// Gap ends a block when no word follows within it (default
	// DefaultGap).
	Gap time.Duration
	// Idle bounds each wait for the first word of a unit, so that the
	// loop notices its context (default 100 ms).
	Idle time.Duration
	// Trace, if set, gets every unit after its reply has been written,
	// on the loop's goroutine: it must be quick, and it delays the
	// reading (not the answering) of the next unit. A TraceRing's Put
	// is one that is: it copies the exchange and returns.
	Trace func(TraceEntry)
}

// Loop is the bus loop: it cuts what the transport reads into units,
// hands each to the device and writes the reply at once.
type Loop struct {
	t    Transport
	h    Handler
	opts Options

	// fw is t when it can tell when a reply's first word went out
	// (the UART, whose WriteWords returns only when the reply has
	// drained).
	fw firstWriter

	unit    [2 * mdb.MaxBlock]mdb.Word
	pending mdb.Word // a marked word that cut the previous block
	hasPend bool

	mu   sync.Mutex
	hist histogram
}

// NewLoop makes a loop over t feeding h (an *mdb.Device).
func NewLoop(t Transport, h Handler, opts Options) *Loop {
	if opts.Gap <= 0 {
		opts.Gap = DefaultGap
	}
	if opts.Idle <= 0 {
		opts.Idle = 100 * time.Millisecond
	}
	l := &Loop{t: t, h: h, opts: opts}
	l.fw, _ = t.(firstWriter)
	return l
}

// firstWriter is a transport that knows when the first word of the last
// reply was handed to the hardware.
type firstWriter interface {
	FirstWritten() time.Time
}

// Run reads, answers and measures until ctx is done (it returns nil) or
// the transport fails for good (closed, or an error that is neither a
// timeout nor a dropped link). It locks its goroutine to an OS thread for
// its whole run: the reply must not wait for the scheduler to find the
// goroutine a thread. Run does not close the transport.
func (l *Loop) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for ctx.Err() == nil {
		n, last, gap, err := l.readUnit()
		if err != nil {
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrDisconnected) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n == 0 {
			continue
		}
		unit := l.unit[:n]
		reply := l.h.Handle(unit)
		var lat time.Duration
		if reply != nil {
			if err := l.t.WriteWords(reply); err != nil {
				if errors.Is(err, ErrDisconnected) {
					continue
				}
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if l.fw != nil {
				lat = l.fw.FirstWritten().Sub(last)
			} else {
				lat = time.Since(last)
			}
			l.mu.Lock()
			l.hist.add(lat)
			l.mu.Unlock()
		}
		if l.opts.Trace != nil {
			l.opts.Trace(TraceEntry{Time: last, Unit: unit, Reply: reply, Latency: lat, Gap: gap})
		}
	}
	return nil
}

// readUnit assembles one unit into l.unit: a lone unmarked word (a
// handshake), or a block from its marked first word to a complete known
// length, the gap, or the next marked word (kept for the next unit). It
// returns the unit's length, when its last word was read and whether the
// gap (rather than completeness) ended it.
func (l *Loop) readUnit() (n int, last time.Time, gap bool, err error) {
	var w mdb.Word
	if l.hasPend {
		w, l.hasPend = l.pending, false
	} else {
		w, err = l.t.ReadWord(time.Now().Add(l.opts.Idle))
		if err != nil {
			return 0, last, false, err
		}
	}
	last = time.Now()
	l.unit[0] = w
	n = 1
	if !w.Mode() {
		// A word without the mode bit outside a block is the VMC's
		// handshake (ACK, RET, NAK), a unit by itself.
		return n, last, false, nil
	}
	for {
		if complete(l.unit[:n]) {
			return n, last, false, nil
		}
		w, err = l.t.ReadWord(last.Add(l.opts.Gap))
		if errors.Is(err, ErrTimeout) {
			return n, last, true, nil
		}
		if err != nil {
			// The link dropped mid-block: what came is lost with it.
			return 0, last, false, err
		}
		if w.Mode() {
			l.pending, l.hasPend = w, true
			return n, last, true, nil
		}
		if n == len(l.unit) {
			// Longer than any block: hand over what came, which the
			// device refuses as too long, and drop the rest up to the
			// next marked word or gap with the next units.
			return n, last, true, nil
		}
		l.unit[n] = w
		n++
		last = time.Now()
	}
}

// Stats is the loop's reply latency so far.
type Stats struct {
	Count    uint64        // replies written
	Late     uint64        // replies later than ReplyBudget
	P50, P99 time.Duration // upper bounds of the histogram bucket
	Max      time.Duration
}

// Stats returns the reply latency so far. It is safe to call from any
// goroutine.
func (l *Loop) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hist.stats()
}

// ResetStats forgets the latencies measured so far (a benchmark's warm-up).
func (l *Loop) ResetStats() {
	l.mu.Lock()
	l.hist = histogram{}
	l.mu.Unlock()
}

// histogram counts latencies in fixed buckets: 1 µs wide up to 1 ms,
// 10 µs wide up to 10 ms, 1 ms wide up to 100 ms, then one overflow
// bucket. It is a plain array: adding allocates nothing.
type histogram struct {
	b    [1000 + 900 + 90 + 1]uint64
	n    uint64
	late uint64
	max  time.Duration
}

func bucket(d time.Duration) int {
	us := int64(d / time.Microsecond)
	switch {
	case us < 0:
		return 0
	case us < 1000:
		return int(us)
	case us < 10_000:
		return 1000 + int((us-1000)/10)
	case us < 100_000:
		return 1900 + int((us-10_000)/1000)
	}
	return 1990
}

// upper is the upper bound of bucket i.
func upper(i int) time.Duration {
	switch {
	case i < 1000:
		return time.Duration(i+1) * time.Microsecond
	case i < 1900:
		return time.Duration(1000+(i-1000+1)*10) * time.Microsecond
	case i < 1990:
		return time.Duration(10_000+(i-1900+1)*1000) * time.Microsecond
	}
	return time.Duration(1<<63 - 1)
}

func (h *histogram) add(d time.Duration) {
	h.b[bucket(d)]++
	h.n++
	if d > ReplyBudget {
		h.late++
	}
	h.max = max(h.max, d)
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.b {
		seen += c
		if seen >= rank {
			return min(upper(i), h.max)
		}
	}
	return h.max
}

func (h *histogram) stats() Stats {
	return Stats{Count: h.n, Late: h.late, P50: h.quantile(0.50), P99: h.quantile(0.99), Max: h.max}
}
