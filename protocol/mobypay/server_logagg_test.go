package mobypay

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// memHandler keeps every record, and offers each on ch if set.
type memHandler struct {
	mu   sync.Mutex
	recs []slog.Record
	ch   chan slog.Record
}

func (h *memHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *memHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *memHandler) WithGroup(string) slog.Handler            { return h }

func (h *memHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	if h.ch != nil {
		h.ch <- r.Clone()
	}
	return nil
}

func (h *memHandler) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.recs...)
}

func attrOf(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// lines renders records as "msg key=value..." for failure messages.
func lines(recs []slog.Record) string {
	var s string
	for _, r := range recs {
		s += "\n" + r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	}
	return s
}

var (
	hostA = netip.MustParseAddr("127.0.0.2")
	hostB = netip.MustParseAddr("127.0.0.3")
	hostC = netip.MustParseAddr("127.0.0.4")
)

// TestLogAggWindows steps the aggregator's clock: the first event of a
// burst is written at once, the rest of the window in one summary with
// the exact count, a key that keeps firing gets one line per window, and
// a key quiet for a whole window starts over.
func TestLogAggWindows(t *testing.T) {
	h := &memHandler{}
	a := newLogAgg(slog.New(h), time.Hour) // the timer never fires here
	clock := time.Now()
	a.now = func() time.Time { return clock }
	ev := func(host netip.Addr) {
		a.event(slog.LevelWarn, host, "pos connections refused", "another POS is connected", "pos connection refused", "peer", host.String()+":1")
	}
	want := func(step string, n int) []slog.Record {
		t.Helper()
		recs := h.records()
		if len(recs) != n {
			t.Fatalf("%s: %d lines, want %d:%s", step, len(recs), n, lines(recs))
		}
		return recs
	}
	for range 100 {
		ev(hostA)
	}
	for range 3 {
		ev(hostB)
	}
	want("burst", 2)

	clock = clock.Add(time.Hour + time.Millisecond)
	ev(hostA) // closes both windows, then counts towards A's next one
	recs := want("first window closed", 4)
	sums := map[string]string{}
	for _, r := range recs[2:] {
		if r.Message != "pos connections refused" || attrOf(r, "window") != "1h0m0.001s" || attrOf(r, "reason") != "another POS is connected" {
			t.Fatalf("summary:%s", lines(recs[2:]))
		}
		sums[attrOf(r, "peer_host")] = attrOf(r, "count")
	}
	if sums[hostA.String()] != "99" || sums[hostB.String()] != "2" {
		t.Fatalf("summaries %v, want A 99, B 2", sums)
	}

	clock = clock.Add(time.Hour)
	ev(hostC) // A's one event is summarised; B was quiet and is dropped
	recs = want("second window", 6)
	if r := recs[4]; attrOf(r, "peer_host") != hostA.String() || attrOf(r, "count") != "1" {
		t.Fatalf("A's second summary:%s", lines(recs[4:5]))
	}
	if r := recs[5]; r.Message != "pos connection refused" || attrOf(r, "peer") != hostC.String()+":1" {
		t.Fatalf("C's first line:%s", lines(recs[5:]))
	}

	clock = clock.Add(time.Hour)
	ev(hostB) // B starts over: written at once
	recs = want("B again", 7)
	if recs[6].Message != "pos connection refused" {
		t.Fatalf("B after a quiet window:%s", lines(recs[6:]))
	}
	a.close() // nothing left to summarise
	want("closed", 7)
	ev(hostB) // after close, written as they come
	want("after close", 8)
}

// TestLogAggTimer: a burst's summary comes from the timer when no later
// event closes the window.
func TestLogAggTimer(t *testing.T) {
	h := &memHandler{ch: make(chan slog.Record, 200)}
	a := newLogAgg(slog.New(h), 30*time.Millisecond)
	defer a.close()
	for range 50 {
		a.event(slog.LevelWarn, hostA, "pos messages refused", "malformed", "pos message refused")
	}
	first := mobypaytest.Await(t, h.ch, "first line")
	sum := mobypaytest.Await(t, h.ch, "summary")
	if first.Message != "pos message refused" || sum.Message != "pos messages refused" || attrOf(sum, "count") != "49" {
		t.Fatalf("got:%s", lines([]slog.Record{first, sum}))
	}
}

// TestLogAggBounded: past aggMaxKeys hosts, new hosts share one key.
func TestLogAggBounded(t *testing.T) {
	h := &memHandler{}
	a := newLogAgg(slog.New(h), time.Hour)
	for i := range 100 {
		host := netip.AddrFrom4([4]byte{127, 0, 1, byte(i)})
		a.event(slog.LevelWarn, host, "pos connections refused", "another POS is connected", "pos connection refused")
	}
	if n := len(a.m); n != aggMaxKeys+1 {
		t.Fatalf("%d keys, want %d", n, aggMaxKeys+1)
	}
	a.close()
	recs := h.records()
	if len(recs) != aggMaxKeys+2 {
		t.Fatalf("%d lines, want %d", len(recs), aggMaxKeys+2)
	}
	last := recs[len(recs)-1]
	if got := fmt.Sprint(attrOf(last, "peer_host"), " ", attrOf(last, "count")); got != "other 35" {
		t.Fatalf("overflow summary %q, want \"other 35\"", got)
	}
}
