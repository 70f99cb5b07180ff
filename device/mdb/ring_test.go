package mdb_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// traced is exchange i of a test: a POLL and a reply that carries i, so
// that each record can be told from the others.
func traced(i int) devmdb.TraceEntry {
	return devmdb.TraceEntry{
		Time:    time.Unix(0, int64(i)),
		Unit:    mdb.AppendCommand(nil, 0x12, nil),
		Reply:   []mdb.Word{mdb.Data(0x05), mdb.Data(byte(i)), mdb.Mark(0x05 + byte(i))},
		Latency: time.Duration(i) * time.Microsecond,
		Gap:     i%2 == 1,
	}
}

func seqOf(t *testing.T, r *devmdb.TraceRecord) int {
	t.Helper()
	i := int(r.Time.UnixNano())
	want := traced(i)
	if !slices.Equal(r.Unit(), want.Unit) || !slices.Equal(r.Reply(), want.Reply) || r.Latency != want.Latency || r.Gap != want.Gap {
		t.Fatalf("record %d: unit %03X reply %03X %v gap %v; want %03X %03X", i, r.Unit(), r.Reply(), r.Latency, r.Gap, want.Unit, want.Reply)
	}
	return i
}

// TestTraceRingPutAllocs: keeping an exchange allocates nothing, with
// readers waiting and with the ring full (every Put overwrites).
func TestTraceRingPutAllocs(t *testing.T) {
	g := devmdb.NewTraceRing(16, 2)
	rd, err := g.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	te := traced(3)
	setup := devmdb.TraceEntry{Unit: mdb.AppendCommand(nil, 0x11, []byte{0, 3, 0, 0, 0}), Reply: []mdb.Word{mdb.Mark(0)}}
	if allocs := testing.AllocsPerRun(1000, func() { g.Put(te); g.Put(setup) }); allocs != 0 {
		t.Errorf("%v allocations per Put, want 0", allocs)
	}
}

// TestTraceRingReplyPathAllocs: the loop with the ring as its trace
// still allocates nothing per exchange, a reader open beside it.
func TestTraceRingReplyPathAllocs(t *testing.T) {
	f := mdbtest.New()
	d := newDevice(t)
	g := devmdb.NewTraceRing(64, 1)
	rd, err := g.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	startLoop(t, f, d, devmdb.Options{Trace: g.Put})
	v := vmcsim.New(f, mdb.AddrCashless1)
	if _, err := v.Init(0); err != nil {
		t.Fatal(err)
	}
	poll := mdb.AppendCommand(nil, 0x12, nil)
	f.Handle(poll)
	allocs := testing.AllocsPerRun(500, func() {
		if got := f.Handle(poll); len(got) != 1 {
			panic(fmt.Sprintf("poll: %03x", got))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per exchange, want 0", allocs)
	}
	// The reader was woken and the exchanges are there, decoded the
	// same as the loop saw them.
	select {
	case <-rd.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("reader never woken")
	}
	var recs [64]devmdb.TraceRecord
	n, _ := rd.Read(recs[:])
	if n == 0 || mdb.Describe(recs[n-1].Unit(), recs[n-1].Reply()) != "POLL -> ACK" {
		t.Fatalf("%d records, last %03X -> %03X", n, recs[max(n-1, 0)].Unit(), recs[max(n-1, 0)].Reply())
	}
}

// TestTraceRingDropped: a reader that falls behind loses the oldest
// exchanges, is told how many, and goes on from the oldest still held;
// Put never waited for it.
func TestTraceRingDropped(t *testing.T) {
	g := devmdb.NewTraceRing(8, 1)
	rd, err := g.NewReader(50)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for i := range 20 {
		g.Put(traced(i))
	}
	var recs [5]devmdb.TraceRecord
	n, dropped := rd.Read(recs[:])
	if n != 5 || dropped != 12 {
		t.Fatalf("read %d, dropped %d; want 5 and 12", n, dropped)
	}
	for i := range n {
		if got := seqOf(t, &recs[i]); got != 12+i {
			t.Errorf("record %d is exchange %d, want %d", i, got, 12+i)
		}
	}
	n, dropped = rd.Read(recs[:])
	if n != 3 || dropped != 0 || seqOf(t, &recs[2]) != 19 {
		t.Fatalf("second read: %d, dropped %d", n, dropped)
	}
	if n, dropped = rd.Read(recs[:]); n != 0 || dropped != 0 {
		t.Fatalf("caught up: read %d, dropped %d", n, dropped)
	}
	// One wake-up is pending however many Puts there were: the loop
	// never blocks on a reader that does not take it.
	select {
	case <-rd.Ready():
	default:
		t.Fatal("no wake-up pending")
	}
	select {
	case <-rd.Ready():
		t.Fatal("a second wake-up pending")
	default:
	}
}

// TestTraceRingReaders: a reader starts at the last n held (no more than
// the ring holds), the reader slots are bounded and freed by Close, and
// the last Setup Config is kept past the ring for a Tracer's levels.
func TestTraceRingReaders(t *testing.T) {
	g := devmdb.NewTraceRing(8, 2)
	setup := devmdb.TraceEntry{Unit: mdb.AppendCommand(nil, 0x11, []byte{0, 3, 0, 0, 0}), Reply: []mdb.Word{mdb.Mark(0)}}
	g.Put(setup)
	for i := range 10 {
		g.Put(traced(i))
	}
	a, err := g.NewReader(3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.NewReader(100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.NewReader(1); !errors.Is(err, devmdb.ErrTraceReaders) {
		t.Fatalf("a third reader of two slots: %v", err)
	}
	var recs [16]devmdb.TraceRecord
	if n, _ := a.Read(recs[:]); n != 3 || seqOf(t, &recs[0]) != 7 {
		t.Fatalf("last 3: read %d", n)
	}
	if n, dropped := b.Read(recs[:]); n != 8 || dropped != 0 || seqOf(t, &recs[0]) != 2 {
		t.Fatalf("last 100 of 8: read %d, dropped %d", n, dropped)
	}
	var s devmdb.TraceRecord
	if !b.Setup(&s) || !slices.Equal(s.Unit(), setup.Unit) {
		t.Fatalf("setup kept: %03X", s.Unit())
	}
	a.Close()
	c, err := g.NewReader(0)
	if err != nil {
		t.Fatalf("a slot freed by Close: %v", err)
	}
	c.Close()
	b.Close()
	empty := devmdb.NewTraceRing(4, 1)
	e, err := empty.NewReader(10)
	if err != nil {
		t.Fatal(err)
	}
	if n, dropped := e.Read(recs[:]); n != 0 || dropped != 0 || e.Setup(&s) {
		t.Fatalf("empty ring: %d %d", n, dropped)
	}
}

// BenchmarkTraceRingPut is the cost Put adds to the bus loop's
// goroutine per exchange, with every reader slot taken.
func BenchmarkTraceRingPut(b *testing.B) {
	g := devmdb.NewTraceRing(1024, 4)
	for range 4 {
		rd, err := g.NewReader(0)
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
	}
	te := traced(7)
	b.ReportAllocs()
	for b.Loop() {
		g.Put(te)
	}
}
