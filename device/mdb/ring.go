package mdb

import (
	"errors"
	"sync"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// ErrTraceReaders refuses a trace reader when every reader slot of the
// ring is taken.
var ErrTraceReaders = errors.New("mdb: trace: every reader slot is taken")

// TraceRecord is one exchange as a TraceRing keeps it: the words are
// copied into arrays of their own, so that the record outlives the loop's
// buffers and keeping it allocates nothing.
type TraceRecord struct {
	Time    time.Time
	Latency time.Duration
	Gap     bool
	nUnit   uint8
	nReply  uint8
	// unit is as long as the loop's own unit buffer: an over-long block
	// is handed over whole, and the trace must show what the device saw.
	unit  [2 * mdb.MaxBlock]mdb.Word
	reply [mdb.MaxBlock]mdb.Word
}

// Unit is the words the VMC sent.
func (r *TraceRecord) Unit() []mdb.Word { return r.unit[:r.nUnit] }

// Reply is the device's reply; nil when it stayed silent.
func (r *TraceRecord) Reply() []mdb.Word {
	if r.nReply == 0 {
		return nil
	}
	return r.reply[:r.nReply]
}

func (r *TraceRecord) set(te TraceEntry) {
	r.Time, r.Latency, r.Gap = te.Time, te.Latency, te.Gap
	r.nUnit = uint8(copy(r.unit[:], te.Unit))
	// A Device never replies with more than a block; a Handler that did
	// is cut to one here rather than refused on the loop's goroutine.
	r.nReply = uint8(copy(r.reply[:], te.Reply))
}

// TraceRing keeps the last exchanges of a bus loop for readers on other
// goroutines: its Put is the loop's Options.Trace. Put runs on the loop's
// goroutine, inside the 5 ms budget of the next reply's read, so it
// allocates nothing and never waits on a reader: the records are
// preallocated, the lock is held for one copy, and readers are woken by a
// send that is dropped when one is already pending. A reader that falls
// more than the ring's size behind loses the oldest exchanges and is told
// how many.
type TraceRing struct {
	mu   sync.Mutex
	recs []TraceRecord
	next uint64 // sequence number of the next Put; record s is recs[s%len]
	// setup is the last Setup Config Data exchange, which tells a Tracer
	// both feature levels: a reader that starts after it left the ring
	// still splits poll replies at the right lengths.
	setup    TraceRecord
	hasSetup bool
	wake     []chan struct{} // one per reader slot; nil when free
}

// NewTraceRing returns a ring of size records with room for readers
// concurrent readers.
func NewTraceRing(size, readers int) *TraceRing {
	return &TraceRing{recs: make([]TraceRecord, max(size, 1)), wake: make([]chan struct{}, max(readers, 1))}
}

// Size is how many exchanges the ring holds.
func (g *TraceRing) Size() int { return len(g.recs) }

// Put keeps one exchange. It is meant to be the loop's Options.Trace.
func (g *TraceRing) Put(te TraceEntry) {
	g.mu.Lock()
	g.recs[g.next%uint64(len(g.recs))].set(te)
	g.next++
	if isSetupConfig(te.Unit) {
		g.setup.set(te)
		g.hasSetup = true
	}
	for _, c := range g.wake {
		if c != nil {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	g.mu.Unlock()
}

// isSetupConfig reports a cashless Setup Config Data command (10h or
// 60h, command 1, sub-command 0).
func isSetupConfig(u []mdb.Word) bool {
	if len(u) < 2 || !u[0].Mode() {
		return false
	}
	a := u[0].Byte()
	return (a == mdb.AddrCashless1|1 || a == mdb.AddrCashless2|1) && u[1].Byte() == 0
}

// TraceReader reads a TraceRing from where it started, at its own pace.
type TraceReader struct {
	g    *TraceRing
	slot int
	c    chan struct{}
	pos  uint64
}

// NewReader starts a reader at the last n exchanges held (fewer if the
// ring holds fewer). It takes one of the ring's reader slots until Close;
// with none free it returns ErrTraceReaders.
func (g *TraceRing) NewReader(last int) (*TraceReader, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.wake {
		if c != nil {
			continue
		}
		n := uint64(min(max(last, 0), len(g.recs)))
		n = min(n, g.next)
		rd := &TraceReader{g: g, slot: i, c: make(chan struct{}, 1), pos: g.next - n}
		g.wake[i] = rd.c
		return rd, nil
	}
	return nil, ErrTraceReaders
}

// Ready receives after a Put; Read then has something for the reader
// (unless an earlier Read took it already).
func (rd *TraceReader) Ready() <-chan struct{} { return rd.c }

// Setup copies the last Setup Config Data exchange the ring saw into
// dst, and reports whether there was one.
func (rd *TraceReader) Setup(dst *TraceRecord) bool {
	rd.g.mu.Lock()
	defer rd.g.mu.Unlock()
	*dst = rd.g.setup
	return rd.g.hasSetup
}

// Read copies the exchanges the reader has not read into dst, oldest
// first, as many as fit, and returns how many it copied and how many
// were overwritten before the reader got to them.
func (rd *TraceReader) Read(dst []TraceRecord) (n int, dropped uint64) {
	g := rd.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if oldest := g.next - min(g.next, uint64(len(g.recs))); rd.pos < oldest {
		dropped = oldest - rd.pos
		rd.pos = oldest
	}
	for n < len(dst) && rd.pos < g.next {
		dst[n] = g.recs[rd.pos%uint64(len(g.recs))]
		n++
		rd.pos++
	}
	return n, dropped
}

// Close frees the reader's slot.
func (rd *TraceReader) Close() {
	rd.g.mu.Lock()
	if rd.g.wake[rd.slot] == rd.c {
		rd.g.wake[rd.slot] = nil
	}
	rd.g.mu.Unlock()
}
