package mdb_test

import (
	"testing"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// The reply path's budget: Handle runs on a goroutine that must answer
// within 5 ms, and garbage it makes is a collection some later reply
// waits for. A poll and a whole vend, payment side included, allocate
// nothing.

var (
	wPoll    = mdb.AppendCommand(nil, 0x12, nil)
	wVendReq = mdb.AppendCommand(nil, 0x13, []byte{0x00, 0x00, 150, 0x00, 7})
	wSuccess = mdb.AppendCommand(nil, 0x13, []byte{0x02, 0x00, 7})
	wSessEnd = mdb.AppendCommand(nil, 0x13, []byte{0x04})
	wACK     = []mdb.Word{mdb.Data(mdb.ACK)}
)

func enabledDevice(tb testing.TB) *mdb.Device {
	tb.Helper()
	return newRig(tb, mdb.Config{}, 3, mdb.OptionAlwaysIdle).d
}

// vendCycle is one always-idle sale: request, approval, success, session
// complete, end session.
func vendCycle(d *mdb.Device, evs []mdb.Event) []mdb.Event {
	d.Handle(wVendReq)
	evs = d.Events(evs[:0])
	if len(evs) == 1 {
		_ = d.Approve(evs[0].Vend, 150)
	}
	d.Handle(wPoll)
	d.Handle(wACK)
	d.Handle(wSuccess)
	d.Handle(wSessEnd)
	d.Handle(wPoll)
	d.Handle(wACK)
	return d.Events(evs[:0])
}

func TestHandleAllocs(t *testing.T) {
	d := enabledDevice(t)
	if n := testing.AllocsPerRun(1000, func() { d.Handle(wPoll) }); n != 0 {
		t.Errorf("poll: %v allocations", n)
	}
	evs := make([]mdb.Event, 0, 64)
	// One cycle outside the measurement checks the cycle is what it
	// claims to be.
	evs = vendCycle(d, evs)
	if len(evs) != 2 || evs[0].Kind != mdb.EventVendSucceeded || evs[1].Kind != mdb.EventSessionCompleted {
		t.Fatalf("cycle events %+v", evs)
	}
	if n := testing.AllocsPerRun(1000, func() { evs = vendCycle(d, evs) }); n != 0 {
		t.Errorf("vend cycle: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		d.Handle(wVendReq)
		d.Handle(wPoll)
		evs = d.Events(evs[:0])
		_ = d.Deny(evs[0].Vend)
		d.Handle(wPoll)
		d.Handle(wACK)
		d.Handle(wSessEnd)
		d.Handle(wPoll)
		d.Handle(wACK)
		evs = d.Events(evs[:0])
	}); n != 0 {
		t.Errorf("vend request and denial: %v allocations", n)
	}
}

func BenchmarkHandlePoll(b *testing.B) {
	d := enabledDevice(b)
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(wPoll)
	}
}

// BenchmarkVendCycle is eight bus exchanges and the payment side's
// calls of one sale.
func BenchmarkVendCycle(b *testing.B) {
	d := enabledDevice(b)
	evs := make([]mdb.Event, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		evs = vendCycle(d, evs)
	}
}
