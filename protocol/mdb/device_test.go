package mdb_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// A whole card sale at each VMC level: the message formats change with
// the level both sides share, the flow does not.
func TestSessionFlow(t *testing.T) {
	for _, tc := range []struct {
		vmcLevel  uint8
		idLen     int
		beginLen  int
		optionBit byte
	}{
		{1, 30, 3, 0},
		{2, 30, 10, 0},
		{3, 34, 10, 0x20},
	} {
		r := newRig(t, mdb.Config{Serial: "KSK-0001", SoftwareVersion: 102}, tc.vmcLevel, mdb.OptionAlwaysIdle)
		if len(r.id.Data) != tc.idLen {
			t.Fatalf("level %d: Peripheral ID of %d bytes, want %d", tc.vmcLevel, len(r.id.Data), tc.idLen)
		}
		if got := string(r.id.Data[1:28]); got != "KSKKSK-0001    kioskd      " {
			t.Errorf("level %d: identity %q", tc.vmcLevel, got)
		}
		if r.id.Data[28] != 0x01 || r.id.Data[29] != 0x02 {
			t.Errorf("software version % X, want 01 02", r.id.Data[28:30])
		}
		if tc.idLen == 34 && r.id.Data[33] != tc.optionBit {
			t.Errorf("option bits % X", r.id.Data[30:])
		}
		if err := r.d.BeginSession(250); err != nil {
			t.Fatal(err)
		}
		ms := r.pollMsgs()
		if len(ms) != 1 || ms[0].Code != 0x03 || len(ms[0].Data) != tc.beginLen || ms[0].Data[2] != 250 {
			t.Fatalf("level %d: begin session %v", tc.vmcLevel, ms)
		}
		r.state(mdb.StateSessionIdle)
		id := r.vend(150, 7)
		// The payment takes its time; the VMC keeps polling and hears ACK,
		// which restarts its non-response timer.
		for range 5 {
			r.clk.Advance(5 * time.Second)
			r.wantPoll()
		}
		if err := r.d.Approve(id, 150); err != nil {
			t.Fatal(err)
		}
		ms = r.pollMsgs()
		if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x05, 0x00, 150}) {
			t.Fatalf("vend approved %v", ms)
		}
		r.ack(r.v.VendSuccess(7))
		evs := r.expect(mdb.EventVendSucceeded)
		if evs[0].Vend != id || evs[0].Price != 150 || evs[0].Item != 7 {
			t.Fatalf("success %+v", evs[0])
		}
		r.state(mdb.StateSessionIdle)
		r.finish()
		r.state(mdb.StateEnabled)
		r.wantPoll()
	}
}

func TestReaderConfigData(t *testing.T) {
	d, err := mdb.New(mdb.Config{Address: mdb.AddrCashless2, MaxResponse: 90 * time.Second, Multivend: true})
	if err != nil {
		t.Fatal(err)
	}
	v := vmcsim.New(d, mdb.AddrCashless2)
	r, err := v.Send(1, 0x00, 3, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Level 3, ringgit as 1458, factor 1, 2 decimals, 90 s, multivend
	// and cash sale.
	want := []byte{0x01, 3, 0x14, 0x58, 1, 2, 90, 0x0A}
	if !bytes.Equal(r.Data(), want) {
		t.Fatalf("config data % X, want % X", r.Data(), want)
	}
	// Cashless #1's address is not this device's.
	if got := vmcsim.New(d, mdb.AddrCashless1).Raw(mdb.AppendCommand(nil, 0x12, nil)); got != nil {
		t.Fatalf("answered another address: %03x", got)
	}
}

func TestAlwaysIdle(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, mdb.OptionAlwaysIdle|mdb.Option32Bit|mdb.OptionFTL)
	if got := r.d.Options(); got != mdb.OptionAlwaysIdle {
		t.Fatalf("options %#x: only always idle is offered", got)
	}
	r.wantPoll()
	id := r.vend(200, 3) // no Begin Session
	r.approve(id, 200)
	r.ack(r.v.VendSuccess(3))
	r.expect(mdb.EventVendSucceeded)
	r.state(mdb.StateSessionIdle)
	r.finish()
	r.state(mdb.StateEnabled)

	// The standard's example 13: no card before the timeout, Vend
	// Denied, then the VMC completes the session.
	id = r.vend(200, 3)
	r.clk.Advance(58 * time.Second)
	r.wantPoll(0x06)
	if e := r.expect(mdb.EventVendTimedOut); e[0].Vend != id {
		t.Fatalf("timed out %+v", e[0])
	}
	r.finish()

	// Without the option a Vend Request outside a session is out of
	// sequence.
	r2 := newRig(t, mdb.Config{}, 3, 0)
	r2.ack(r2.v.VendRequest(100, 1))
	r2.expect(mdb.EventOutOfSequence)
	ms := r2.pollMsgs()
	if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x0B, byte(mdb.StateEnabled)}) {
		t.Fatalf("out of sequence %v", ms)
	}
}

func TestRetransmission(t *testing.T) {
	// Each case brings Vend Approved to the VMC in its own ugly way; at
	// the end the VMC must have it exactly once and the vend succeed.
	for _, tc := range []struct {
		name string
		run  func(r *rig)
	}{
		{"RET resends the same words", func(r *rig) {
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			first := r.v.Last
			again := r.v.Answer(mdb.RET)
			if !slices.Equal(again, first) {
				r.t.Fatalf("RET answered %03x, want %03x", again, first)
			}
			if r.v.Answer(mdb.ACK) != nil {
				r.t.Fatal("the device answered an ACK")
			}
			// A RET after the ACK is about nothing.
			if got := r.v.Answer(mdb.RET); got != nil {
				r.t.Fatalf("RET after ACK answered %03x", got)
			}
			r.v.NoHandshake = false
			r.wantPoll()
		}},
		{"NAK: next poll repeats", func(r *rig) {
			r.v.Handshake = mdb.NAK
			r.wantPoll(0x05)
			r.v.Handshake = mdb.ACK
			r.wantPoll(0x05)
			r.wantPoll()
		}},
		{"silence counts as NAK", func(r *rig) {
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			r.v.NoHandshake = false
			r.wantPoll(0x05)
			r.wantPoll()
		}},
		{"lost ACK, then Vend Success", func(r *rig) {
			// The VMC got the approval, its ACK did not reach us; it
			// dispenses and reports. The approval is not sent again.
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			r.v.NoHandshake = false
		}},
		{"corrupted block between reply and ACK", func(r *rig) {
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			if got := r.v.Raw([]mdb.Word{0x112, 0x13}); got != nil {
				r.t.Fatalf("bad checksum answered %03x", got)
			}
			// This ACK follows a block that was not ours to answer:
			// it is not about our reply.
			r.v.Answer(mdb.ACK)
			r.v.NoHandshake = false
			r.wantPoll(0x05)
		}},
		{"ACK for another peripheral", func(r *rig) {
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			// The VMC polls the coin changer (08h), which answers, and
			// the VMC ACKs it: we see that ACK on the bus too.
			if got := r.v.Raw(mdb.AppendCommand(nil, 0x0B, nil)); got != nil {
				r.t.Fatalf("answered the changer's poll: %03x", got)
			}
			r.v.Answer(mdb.ACK)
			r.v.NoHandshake = false
			r.wantPoll(0x05)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, mdb.Config{}, 3, 0)
			r.t = t
			r.session()
			id := r.vend(150, 9)
			if err := r.d.Approve(id, 150); err != nil {
				t.Fatal(err)
			}
			tc.run(r)
			r.ack(r.v.VendSuccess(9))
			r.expect(mdb.EventVendSucceeded)
			r.wantPoll()
		})
	}
}

func TestRepeatedCommands(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.session()
	// Our ACK to the Vend Request was lost: the VMC sends it again. One
	// payment, not two.
	r.ack(r.v.VendRequest(150, 9))
	r.ack(r.v.VendRequest(150, 9))
	r.expect(mdb.EventVendRequested)
	r.wantPoll()
	r.ack(r.v.VendCancel())
	r.ack(r.v.VendCancel()) // the same again: still one cancel
	r.expect(mdb.EventVendCancelled)
	r.wantPoll(0x06)
	r.finish()

	// Setup's data reply NAKed: the answer comes with the next poll.
	r.v.Handshake = mdb.NAK
	rep, err := r.v.Send(1, 0x00, 3, 0, 0, 0)
	if err != nil || rep.Kind != mdb.ReplyData || rep.Data()[0] != 0x01 {
		t.Fatalf("setup %v % X %v", rep.Kind, rep.Data(), err)
	}
	r.v.Handshake = mdb.ACK
	r.wantPoll(0x01)
	r.wantPoll()
}

func TestCorruptedChecksum(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.session()
	bad := r.v.Block(3, 0x00, 0, 150, 0, 9)
	bad[len(bad)-1] ^= 0x40
	for _, words := range [][]mdb.Word{
		bad,
		bad[:len(bad)-1],            // cut short
		{mdb.Mark(0x13), 0x100},     // mode bit on the checksum
		append(r.v.Block(2), 0x100), // a stray marked word after a poll
	} {
		if got := r.v.Raw(words); got != nil {
			t.Fatalf("%03x answered %03x, want silence", words, got)
		}
	}
	r.expect()
	r.state(mdb.StateSessionIdle)
	// The VMC repeats the block intact and it is taken once.
	r.vend(150, 9)
}

func TestResetMidVend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		progress func(r *rig, id uint32)
		want     mdb.Event
	}{
		{"payment pending", func(*rig, uint32) {},
			mdb.Event{Kind: mdb.EventVendCancelled, Cause: mdb.CauseReset, Price: 150, Item: 4}},
		{"approved, not yet polled", func(r *rig, id uint32) {
			if err := r.d.Approve(id, 150); err != nil {
				r.t.Fatal(err)
			}
		}, mdb.Event{Kind: mdb.EventVendCancelled, Cause: mdb.CauseReset, Approved: true, Price: 150, Item: 4}},
		{"approval sent, ACK lost", func(r *rig, id uint32) {
			if err := r.d.Approve(id, 150); err != nil {
				r.t.Fatal(err)
			}
			r.v.NoHandshake = true
			r.wantPoll(0x05)
			r.v.NoHandshake = false
		}, mdb.Event{Kind: mdb.EventVendUnconfirmed, Price: 150, Item: 4}},
		{"approval delivered", func(r *rig, id uint32) {
			r.approve(id, 150)
		}, mdb.Event{Kind: mdb.EventVendUnconfirmed, Price: 150, Item: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, mdb.Config{}, 3, 0)
			r.t = t
			r.session()
			id := r.vend(150, 4)
			tc.progress(r, id)
			r.ack(r.v.Reset())
			evs := r.expect(tc.want.Kind, mdb.EventReset)
			tc.want.Vend = id
			if evs[0] != tc.want {
				t.Fatalf("reported %+v, want %+v", evs[0], tc.want)
			}
			r.state(mdb.StateInactive)
			// A late approval has nowhere to go.
			if err := r.d.Approve(id, 150); !errors.Is(err, mdb.ErrNoVend) {
				t.Fatalf("late Approve: %v", err)
			}
			// The VMC never hears an approval again: only Just Reset.
			r.wantPoll(0x00)
			r.wantPoll()
			if _, err := r.v.Init(0); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				r.wantPoll()
			}
		})
	}
}

func TestVendFailure(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.session()
	id := r.vend(300, 12)
	r.approve(id, 280) // a discount
	r.ack(r.v.VendFailure())
	evs := r.expect(mdb.EventVendFailed)
	if evs[0].Vend != id || evs[0].Price != 280 || evs[0].Item != 12 {
		t.Fatalf("failure %+v: the refund owed is what was approved", evs[0])
	}
	// The refund is the payment side's business: the poll after the
	// failure answers ACK at once rather than going silent.
	r.wantPoll()
	r.finish()
}

func TestSecondVendInSession(t *testing.T) {
	for _, multivend := range []bool{false, true} {
		r := newRig(t, mdb.Config{Multivend: multivend}, 3, 0)
		r.session()
		first := r.vend(100, 1)
		r.approve(first, 100)
		r.ack(r.v.VendSuccess(1))
		r.expect(mdb.EventVendSucceeded)
		if !multivend {
			r.ack(r.v.VendRequest(100, 2))
			if e := r.expect(mdb.EventVendRefused); e[0].Cause != mdb.CauseMultivend {
				t.Fatalf("refused %+v", e[0])
			}
			r.wantPoll(0x06)
			r.finish()
			continue
		}
		second := r.vend(120, 2)
		if second == first {
			t.Fatal("the second vend has the first's id")
		}
		if err := r.d.Approve(first, 100); !errors.Is(err, mdb.ErrNoVend) {
			t.Fatalf("approving the finished vend: %v", err)
		}
		r.approve(second, 120)
		r.ack(r.v.VendSuccess(2))
		r.expect(mdb.EventVendSucceeded)
		r.finish()
	}
}

func TestReaderDisableMidSession(t *testing.T) {
	r := newRig(t, mdb.Config{AutoSession: true}, 3, 0)
	r.wantPoll(0x03) // the automatic session
	r.state(mdb.StateSessionIdle)
	id := r.vend(100, 5)
	r.ack(r.v.ReaderDisable())
	r.expect(mdb.EventDisabled)
	r.state(mdb.StateVend) // the transaction goes on
	r.approve(id, 100)
	r.ack(r.v.VendSuccess(5))
	r.expect(mdb.EventVendSucceeded)
	r.finish()
	r.state(mdb.StateDisabled)
	r.wantPoll() // no new session while disabled
	r.ack(r.v.ReaderEnable())
	r.expect(mdb.EventEnabled)
	r.wantPoll(0x03)

	// Disabled before the VMC saw the Begin Session: it is withdrawn.
	r.finish()
	r.ack(r.v.ReaderDisable())
	r.expect(mdb.EventSessionCancelled, mdb.EventDisabled)
	r.wantPoll()
	r.state(mdb.StateDisabled)
}

func TestOutOfSequence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(r *rig)
		cmd    byte
		data   []byte
		status mdb.State
		short  bool // before Setup the VMC's level is unknown: level 1 format
	}{
		{"vend request while disabled", func(r *rig) { r.ack(r.v.ReaderDisable()); r.expect(mdb.EventDisabled) },
			3, []byte{0, 0, 100, 0, 1}, mdb.StateDisabled, false},
		{"vend success without a vend", func(r *rig) { r.session() }, 3, []byte{2, 0, 1}, mdb.StateSessionIdle, false},
		{"request ID during a vend", func(r *rig) { r.session(); r.vend(100, 1) }, 7, []byte{0}, mdb.StateVend, false},
		{"session complete during a vend", func(r *rig) { r.session(); r.vend(100, 1) }, 3, []byte{4}, mdb.StateVend, false},
		{"vend success before approval", func(r *rig) { r.session(); r.vend(100, 1) }, 3, []byte{2, 0, 1}, mdb.StateVend, false},
		{"negative vend, never offered", func(r *rig) { r.session() }, 3, []byte{6, 0, 100, 0, 1}, mdb.StateSessionIdle, false},
		{"reader enable before setup", func(r *rig) { r.ack(r.v.Reset()); r.expect(mdb.EventReset); r.wantPoll(0) },
			4, []byte{1}, mdb.StateInactive, true},
		{"unknown command 16h", func(*rig) {}, 6, nil, mdb.StateEnabled, false},
		{"short vend request", func(r *rig) { r.session() }, 3, []byte{0, 0, 100}, mdb.StateSessionIdle, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, mdb.Config{}, 3, 0)
			r.t = t
			tc.setup(r)
			r.events()
			r.ack(r.v.Send(tc.cmd, tc.data...))
			r.expect(mdb.EventOutOfSequence)
			want := []byte{0x0B, byte(tc.status)}
			if tc.short {
				want = want[:1]
			}
			rep, err := r.v.Send(2)
			if err != nil || !bytes.Equal(rep.Data(), want) {
				t.Fatalf("poll % X %v, want % X", rep.Data(), err, want)
			}
			// The state is untouched: the VMC will reset the reader.
			r.state(tc.status)
		})
	}
	// At level 1 the response has no status byte.
	r := newRig(t, mdb.Config{}, 1, 0)
	r.ack(r.v.VendSuccess(1))
	ms := r.pollMsgs()
	if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x0B}) {
		t.Fatalf("level 1 out of sequence %v", ms)
	}
}

func TestVendCancel(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.session()
	// While the payment is pending (escrow return, example 4b).
	id := r.vend(100, 1)
	r.ack(r.v.VendCancel())
	e := r.expect(mdb.EventVendCancelled)[0]
	if e.Vend != id || e.Cause != mdb.CauseVendCancel || e.Approved {
		t.Fatalf("cancel %+v", e)
	}
	r.wantPoll(0x06)
	if err := r.d.Approve(id, 100); !errors.Is(err, mdb.ErrNoVend) {
		t.Fatalf("Approve after cancel: %v", err)
	}
	r.state(mdb.StateSessionIdle)

	// After the approval was given but before the VMC polled for it: the
	// approval is withdrawn and the payment side told to give it back.
	id = r.vend(100, 1)
	if err := r.d.Approve(id, 100); err != nil {
		t.Fatal(err)
	}
	r.ack(r.v.VendCancel())
	if e := r.expect(mdb.EventVendCancelled)[0]; !e.Approved {
		t.Fatalf("cancel %+v: the approval was withdrawn", e)
	}
	r.wantPoll(0x06)

	// After the VMC has the approval it may not cancel.
	id = r.vend(100, 1)
	r.approve(id, 100)
	r.ack(r.v.VendCancel())
	r.expect(mdb.EventOutOfSequence)
}

func TestPaymentSlowerThanVMC(t *testing.T) {
	r := newRig(t, mdb.Config{MaxResponse: 30 * time.Second, VendMargin: 3 * time.Second}, 3, 0)
	r.session()
	id := r.vend(500, 2)
	r.clk.Advance(26 * time.Second)
	r.wantPoll()
	r.clk.Advance(time.Second) // 27 s: 30 s less the margin
	r.wantPoll(0x06)
	if e := r.expect(mdb.EventVendTimedOut)[0]; e.Vend != id || e.Price != 500 {
		t.Fatalf("timed out %+v", e)
	}
	if err := r.d.Approve(id, 500); !errors.Is(err, mdb.ErrNoVend) {
		t.Fatalf("Approve after the timeout: %v", err)
	}
	r.state(mdb.StateSessionIdle)

	// An approval that comes after the deadline but before the next
	// poll is refused too: the VMC would have given up by the time it
	// heard it.
	id = r.vend(500, 2)
	r.clk.Advance(27 * time.Second)
	if err := r.d.Approve(id, 500); !errors.Is(err, mdb.ErrTooLate) {
		t.Fatalf("Approve at the deadline: %v", err)
	}
	r.expect(mdb.EventVendTimedOut)
	r.wantPoll(0x06)
}

func TestPrices(t *testing.T) {
	// Factor 5, two decimals: one unit is 5 sen.
	r := newRig(t, mdb.Config{Scale: mdb.Scale{Factor: 5, Decimals: 2}, Multivend: true}, 3, 0)
	r.session()
	id := r.vend(30, 1) // RM 1.50
	if e := r.d.Events(nil); len(e) != 0 {
		t.Fatalf("stray events %+v", e)
	}
	for _, amount := range []int64{151, 152, 0, -5, 155} {
		if err := r.d.Approve(id, amount); !errors.Is(err, mdb.ErrAmount) {
			t.Errorf("Approve(%d sen): %v, want ErrAmount", amount, err)
		}
	}
	if err := r.d.Approve(id, 145); err != nil {
		t.Fatal(err)
	}
	ms := r.pollMsgs()
	if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x05, 0, 29}) {
		t.Fatalf("approved %v, want 29 units", ms)
	}
	r.ack(r.v.VendSuccess(1))
	r.expect(mdb.EventVendSucceeded)
	for _, price := range []uint16{0, 0xFFFF} {
		r.ack(r.v.VendRequest(price, 1))
		if e := r.expect(mdb.EventVendRefused)[0]; e.Cause != mdb.CausePrice {
			t.Fatalf("refused %+v", e)
		}
		r.wantPoll(0x06)
	}
	r.ack(r.v.CashSale(40, 0x8003))
	if e := r.expect(mdb.EventCashSale)[0]; e.Price != 200 || e.Item != 0x8003 {
		t.Fatalf("cash sale %+v", e)
	}
}

func TestCancelSessionMultiMessage(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.session()
	r.vend(100, 1)
	if err := r.d.Malfunction(0x07); err != nil {
		t.Fatal(err)
	}
	if err := r.d.CancelSession(); err != nil {
		t.Fatal(err)
	}
	// One reply carries all three, as in the standard's example.
	r.wantPoll(0x0A, 0x06, 0x04)
	if e := r.expect(mdb.EventVendCancelled)[0]; e.Cause != mdb.CauseSessionCancel {
		t.Fatalf("cancelled %+v", e)
	}
	r.finish()
	if err := r.d.CancelSession(); !errors.Is(err, mdb.ErrNoSession) {
		t.Fatalf("CancelSession without a session: %v", err)
	}
}

func TestReaderCancel(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	if err := r.d.BeginSession(-1); err != nil {
		t.Fatal(err)
	}
	rep, err := r.v.ReaderCancel()
	if err != nil || rep.Kind != mdb.ReplyData || !bytes.Equal(rep.Data(), []byte{0x08}) {
		t.Fatalf("reader cancel: %v % X %v", rep.Kind, rep.Data(), err)
	}
	r.expect(mdb.EventSessionCancelled, mdb.EventReaderCancelled)
	r.wantPoll()
	r.state(mdb.StateEnabled)
}

func TestAutoSessionAfterEndSession(t *testing.T) {
	r := newRig(t, mdb.Config{AutoSession: true}, 1, 0)
	ms := r.pollMsgs()
	if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x03, 0xFF, 0xFF}) {
		t.Fatalf("auto session %v: want funds unknown", ms)
	}
	r.finish()
	r.wantPoll(0x03) // the next one, once End Session was ACKed
}

func TestConfigErrors(t *testing.T) {
	_, err := mdb.New(mdb.Config{
		Address: 0x18, Level: 4, Currency: 1458, Scale: mdb.Scale{Factor: 0, Decimals: 9},
		MaxResponse: 1500 * time.Millisecond, Manufacturer: "KIOSK", Serial: "0123456789ABC", SoftwareVersion: 10000,
	})
	if !errors.Is(err, mdb.ErrConfig) {
		t.Fatalf("err %v", err)
	}
	for _, word := range []string{"address", "level", "currency", "scale", "max response", "manufacturer", "serial", "software"} {
		if !bytes.Contains([]byte(err.Error()), []byte(word)) {
			t.Errorf("error does not name %s: %v", word, err)
		}
	}
}

// The payment side runs on its own goroutine, as it will in kioskd; the
// race detector watches the two sides share the device.
func TestPaymentOnAnotherGoroutine(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, mdb.OptionAlwaysIdle)
	approved := make(chan error)
	go func() {
		for range r.d.Notify() {
			for _, e := range r.d.Events(nil) {
				if e.Kind == mdb.EventVendRequested {
					approved <- r.d.Approve(e.Vend, e.Price)
					return
				}
			}
		}
	}()
	r.ack(r.v.VendRequest(150, 7))
	var polls []byte
	for !slices.Contains(polls, 0x05) {
		select {
		case err := <-approved:
			if err != nil {
				t.Fatal(err)
			}
			approved = nil
		default:
		}
		polls = r.poll()
	}
	if approved != nil {
		if err := <-approved; err != nil {
			t.Fatal(err)
		}
	}
	r.ack(r.v.VendSuccess(7))
	r.expect(mdb.EventVendSucceeded)
	r.finish()
}

// Found by TestSimulation: a Vend Denied whose ACK was lost must not be
// sent again after the VMC's next Vend Request, where it would read as
// the answer to the new one.
func TestStaleDenialAfterLostACK(t *testing.T) {
	r := newRig(t, mdb.Config{Multivend: true}, 3, 0)
	r.session()
	first := r.vend(100, 1)
	if err := r.d.Deny(first); err != nil {
		t.Fatal(err)
	}
	r.v.NoHandshake = true // received, ACK lost
	r.wantPoll(0x06)
	r.v.NoHandshake = false
	second := r.vend(100, 2)
	r.wantPoll() // not the old denial
	r.approve(second, 100)
	r.ack(r.v.VendSuccess(2))
	r.expect(mdb.EventVendSucceeded)
	// The same for Session Cancel and Vend Denied across Session
	// Complete: End Session comes alone.
	if err := r.d.CancelSession(); err != nil {
		t.Fatal(err)
	}
	r.v.NoHandshake = true
	r.wantPoll(0x04)
	r.v.NoHandshake = false
	r.finish()
}

// Found by TestSimulation: messages queued before Setup take the format
// of the level Setup brings.
func TestQueuedMessagesFollowTheLevel(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	r.ack(r.v.Reset())
	r.ack(r.v.ReaderEnable()) // before Setup: out of sequence, level 1 format
	r.v.ReaderLevel = 1
	r.wantPoll(0x00, 0x0B)
	r.ack(r.v.ReaderEnable())
	rep, err := r.v.Send(1, 0x00, 3, 0, 0, 0)
	if err != nil || rep.Data()[0] != 0x01 {
		t.Fatalf("setup % X %v", rep.Data(), err)
	}
	ms := r.pollMsgs()
	if len(ms) != 1 || !bytes.Equal(ms[0].Data, []byte{0x0B, byte(mdb.StateInactive)}) {
		t.Fatalf("after setup %v, want the level 3 format", ms)
	}
}

func TestRepeatedAfterNAK(t *testing.T) {
	r := newRig(t, mdb.Config{}, 3, 0)
	// Request ID NAKed, then sent again: one Peripheral ID, not one now
	// and a stale one on the next poll.
	r.v.Handshake = mdb.NAK
	if _, err := r.v.Send(7, 0x00); err != nil {
		t.Fatal(err)
	}
	r.v.Handshake = mdb.ACK
	rep, err := r.v.Send(7, 0x00)
	if err != nil || rep.Data()[0] != 0x09 {
		t.Fatalf("request ID % X %v", rep.Data(), err)
	}
	r.wantPoll()
}
