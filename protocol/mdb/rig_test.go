package mdb_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// clock is the tests' fake time: it moves only when a test moves it.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// rig is a device with a simulated VMC in front of it and the payment
// side's view of its events.
type rig struct {
	t   testing.TB
	d   *mdb.Device
	v   *vmcsim.VMC
	clk *clock
	id  vmcsim.Message // the Peripheral ID from Init
}

// newRig makes a device from cfg and runs the VMC's initialising
// sequence at vmcLevel, enabling options; the events of the start are
// drained.
func newRig(t testing.TB, cfg mdb.Config, vmcLevel uint8, options uint32) *rig {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	d, err := mdb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := cfg.Address
	if addr == 0 {
		addr = mdb.AddrCashless1
	}
	v := vmcsim.New(d, addr)
	v.Level = vmcLevel
	id, err := v.Init(options)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, d: d, v: v, clk: clk, id: id}
	r.events()
	if s := d.State(); s != mdb.StateEnabled {
		t.Fatalf("after init: state %v, want enabled", s)
	}
	return r
}

func (r *rig) events() []mdb.Event { return r.d.Events(nil) }

// expect drains the events and checks their kinds.
func (r *rig) expect(kinds ...mdb.EventKind) []mdb.Event {
	r.t.Helper()
	evs := r.events()
	got := make([]mdb.EventKind, len(evs))
	for i, e := range evs {
		got[i] = e.Kind
	}
	if !slices.Equal(got, kinds) {
		r.t.Fatalf("events %v, want %v (%+v)", got, kinds, evs)
	}
	return evs
}

// poll polls and returns the codes of the messages.
func (r *rig) poll() []byte {
	r.t.Helper()
	ms, err := r.v.Poll()
	if err != nil {
		r.t.Fatal(err)
	}
	codes := []byte{}
	for _, m := range ms {
		codes = append(codes, m.Code)
	}
	return codes
}

// pollMsgs polls and returns the messages.
func (r *rig) pollMsgs() []vmcsim.Message {
	r.t.Helper()
	ms, err := r.v.Poll()
	if err != nil {
		r.t.Fatal(err)
	}
	return ms
}

func (r *rig) wantPoll(codes ...byte) {
	r.t.Helper()
	if got := r.poll(); !slices.Equal(got, codes) {
		r.t.Fatalf("poll: % X, want % X", got, codes)
	}
}

// ack checks that a command was answered with a bare ACK.
func (r *rig) ack(rep mdb.Reply, err error) {
	r.t.Helper()
	if err != nil || rep.Kind != mdb.ReplyACK {
		r.t.Fatalf("answer %v % X, %v; want ACK", rep.Kind, rep.Data(), err)
	}
}

func (r *rig) state(want mdb.State) {
	r.t.Helper()
	if got := r.d.State(); got != want {
		r.t.Fatalf("state %v, want %v", got, want)
	}
}

// session begins a session from the payment side and delivers it.
func (r *rig) session() {
	r.t.Helper()
	if err := r.d.BeginSession(-1); err != nil {
		r.t.Fatal(err)
	}
	r.wantPoll(0x03)
	r.state(mdb.StateSessionIdle)
}

// vend sends a Vend Request and returns the vend's id from its event.
func (r *rig) vend(price, item uint16) uint32 {
	r.t.Helper()
	r.ack(r.v.VendRequest(price, item))
	evs := r.expect(mdb.EventVendRequested)
	if evs[0].Item != item {
		r.t.Fatalf("vend event %+v, want item %d", evs[0], item)
	}
	r.state(mdb.StateVend)
	return evs[0].Vend
}

// approve approves id for amount and delivers Vend Approved.
func (r *rig) approve(id uint32, amount int64) {
	r.t.Helper()
	if err := r.d.Approve(id, amount); err != nil {
		r.t.Fatal(err)
	}
	r.wantPoll(0x05)
}

// finish completes the session and checks End Session.
func (r *rig) finish() {
	r.t.Helper()
	r.ack(r.v.SessionComplete())
	r.expect(mdb.EventSessionCompleted)
	r.wantPoll(0x07)
}
