package mdb

import (
	"bytes"
	"errors"
	"sync"
	"time"
)

// State is the cashless device's state. The values are the status codes
// of the level 2/3 Command Out Of Sequence response.
type State uint8

const (
	StateInactive    State = 1
	StateDisabled    State = 2
	StateEnabled     State = 3
	StateSessionIdle State = 4
	StateVend        State = 5
)

func (s State) String() string {
	switch s {
	case StateInactive:
		return "inactive"
	case StateDisabled:
		return "disabled"
	case StateEnabled:
		return "enabled"
	case StateSessionIdle:
		return "session-idle"
	case StateVend:
		return "vend"
	}
	return "State(?)"
}

// The payment side's verdicts.
var (
	ErrNoVend     = errors.New("mdb: no such vend awaiting an answer")
	ErrTooLate    = errors.New("mdb: the vend timed out before the answer")
	ErrNoSession  = errors.New("mdb: no session to cancel")
	ErrNotEnabled = errors.New("mdb: reader not enabled and idle")
	ErrQueueFull  = errors.New("mdb: poll queue full")
)

// The command numbers (low three bits of the first byte).
const (
	cmdReset     = 0
	cmdSetup     = 1
	cmdPoll      = 2
	cmdVend      = 3
	cmdReader    = 4
	cmdRevalue   = 5
	cmdExpansion = 7
)

// The poll response codes the device sends.
const (
	rspJustReset     = 0x00
	rspConfig        = 0x01
	rspBeginSession  = 0x03
	rspSessionCancel = 0x04
	rspVendApproved  = 0x05
	rspVendDenied    = 0x06
	rspEndSession    = 0x07
	rspCancelled     = 0x08
	rspPeripheralID  = 0x09
	rspMalfunction   = 0x0A
	rspOutOfSequence = 0x0B
	rspRevalueDenied = 0x0E
	rspRevalueLimit  = 0x0F
	maxMsg           = 34 // the longest message: Peripheral ID with option bits
	queueCap         = 16
	fundsUnknown16   = 0xFFFF
	vmcLevelUnknown  = 1
)

// msg is one poll response, ready to send.
type msg struct {
	code byte // the first byte, for the delivery bookkeeping
	n    uint8
	b    [maxMsg]byte
}

func (m *msg) bytes() []byte { return m.b[:m.n] }

type vendPhase uint8

const (
	vendNone     vendPhase = iota
	vendPending            // ACKed the request, waiting for the payment side
	vendApproval           // Vend Approved queued, the VMC has not ACKed it
	vendApproved           // the VMC ACKed Vend Approved; awaiting Success/Failure
)

type vend struct {
	id       uint32
	phase    vendPhase
	price    int64 // sen, as requested
	approved int64 // sen, as approved
	item     uint16
	sent     bool // Vend Approved was put on the bus at least once
	deadline time.Time
}

// Device is an MDB cashless device (a "reader") at one address: the
// state machine of the standard's section 7, independent of any
// transport. A transport calls Handle with each unit it receives; the
// payment side calls Approve, Deny, CancelSession and BeginSession and
// drains events.
//
// Handle is the hot path. It is meant to run on one goroutine locked to
// an OS thread that must put the reply on the bus within 5 ms of the
// block's last byte, so it allocates nothing, never blocks on the payment
// side (whose calls only take the same short mutex), and does constant
// work bounded by the 36-byte block. All of Device's methods are safe for
// concurrent use.
type Device struct {
	mu  sync.Mutex
	cfg Config

	state       State
	vmcLevel    uint8
	options     uint32 // enabled optional features
	stayOff     bool   // Reader Disable during a session: go to Disabled after it
	implicit    bool   // the session was entered by always idle, without Begin Session
	beginQueued bool   // Begin Session queued, the VMC has not ACKed it
	vendsDone   int    // vends finished in this session
	maxPrice    uint16
	minPrice    uint16

	v        vend
	nextVend uint32

	q  [queueCap]msg
	qn int

	// The last reply and what it carried, for RET and for a VMC that
	// repeats a command whose reply it missed.
	out        [MaxBlock]Word
	outN       int
	awaiting   bool // a data reply is out; the next handshake is about it
	inFlight   int  // queue messages that reply carried
	lastFlight int

	cmd       Command
	prev      Command
	prevValid bool

	ev     eventRing
	notify chan struct{}
}

// New makes a device in the power-up state: Inactive, with Just Reset
// waiting for the first poll.
func New(cfg Config) (*Device, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: c, notify: make(chan struct{}, 1)}
	d.reset()
	return d, nil
}

// Handle takes one unit received from the bus and returns what to send
// back, or nil for silence. A unit is either a whole VMC block (its first
// word carries the mode bit) or a single handshake word from the VMC
// (ACK, RET or NAK, no mode bit). Blocks for other peripherals must be
// passed in too: they end the window in which a handshake can be ours.
//
// The returned slice aliases the device's reply buffer and is valid
// until the next call.
func (d *Device) Handle(in []Word) []Word {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkDeadline(d.cfg.Now())
	if len(in) == 1 && in[0] <= 0xFF {
		return d.handshake(in[0].Byte())
	}
	// Any block, ours or not, good or not, ends the handshake window: a
	// VMC that moved on took our reply as lost (silence counts as NAK),
	// and an ACK after another peripheral's reply is not ours.
	d.awaiting = false
	d.inFlight = 0
	if err := ParseCommand(&d.cmd, in); err != nil || d.cmd.Address() != d.cfg.Address {
		// A corrupted block gets silence, as a reception error must: the
		// VMC repeats it. Another peripheral's block is none of ours.
		d.prevValid = false
		return nil
	}
	if d.prevValid && d.cmd.Code() != cmdPoll && sameCommand(&d.prev, &d.cmd) {
		// The VMC repeats a command it sent just before, with nothing in
		// between: it missed our reply. Send the same again and do not
		// act twice (a second Vend Request would start a second payment).
		d.inFlight = d.lastFlight
		d.awaiting = d.lastFlight > 0
		return d.out[:d.outN]
	}
	reply := d.dispatch()
	d.prev = d.cmd
	d.prevValid = true
	d.autoSession()
	return reply
}

// sameCommand compares the bytes received; what lies beyond a command's
// data in its buffer is left over from longer ones.
func sameCommand(a, b *Command) bool {
	return a.AddrCmd == b.AddrCmd && bytes.Equal(a.Data(), b.Data())
}

// handshake takes the VMC's answer to our data reply.
func (d *Device) handshake(b byte) []Word {
	if !d.awaiting {
		return nil
	}
	d.prevValid = false
	switch b {
	case ACK:
		d.awaiting = false
		d.delivered(d.inFlight)
		d.inFlight = 0
		d.autoSession()
	case RET:
		return d.out[:d.outN]
	default:
		// NAK, or a byte that is none of the three: the reply was not
		// received. Its messages stay queued for the next poll.
		d.awaiting = false
		d.inFlight = 0
	}
	return nil
}

// delivered pops the first n messages, which the VMC has ACKed.
func (d *Device) delivered(n int) {
	for i := 0; i < n; i++ {
		switch d.q[i].code {
		case rspBeginSession:
			d.beginDelivered()
		case rspVendApproved:
			if d.v.phase == vendApproval {
				d.v.phase = vendApproved
			}
		}
	}
	d.drop(0, n)
}

func (d *Device) beginDelivered() {
	if d.beginQueued && d.state == StateEnabled {
		d.state = StateSessionIdle
		d.vendsDone = 0
	}
	d.beginQueued = false
}

func (d *Device) dispatch() []Word {
	c := &d.cmd
	data := c.Data()
	var sub byte
	if len(data) > 0 {
		sub = data[0]
	}
	switch c.Code() {
	case cmdReset:
		d.resetByVMC()
		return d.ack()
	case cmdSetup:
		return d.setup(sub, data)
	case cmdPoll:
		return d.send(queueCap)
	case cmdVend:
		return d.vendCmd(sub, data)
	case cmdReader:
		return d.readerCmd(sub)
	case cmdRevalue:
		return d.revalue(sub)
	case cmdExpansion:
		return d.expansion(sub, data)
	}
	return d.outOfSequence(sub)
}

// level is the level both sides support.
func (d *Device) level() uint8 { return min(d.cfg.Level, d.vmcLevel) }

func (d *Device) setup(sub byte, data []byte) []Word {
	switch {
	case sub == 0x00 && len(data) >= 5:
		if d.state == StateSessionIdle || d.state == StateVend {
			return d.outOfSequence(sub)
		}
		d.vmcLevel = min(max(data[1], 1), 3)
		// Messages queued before, at the old level, are resized to the
		// new one: a level 3 VMC reads Command Out Of Sequence as two
		// bytes, whenever it was queued.
		for i := 0; i < d.qn; i++ {
			if n := d.msgLen(d.q[i].code); n != 0 {
				d.q[i].n = n
			}
		}
		if d.state == StateInactive {
			d.state = StateDisabled
		}
		// A VMC that sends its setup has seen that we were reset; a Just
		// Reset still queued would only make it start over.
		d.dropCode(rspJustReset)
		d.event(Event{Kind: EventSetup, Detail: uint16(d.vmcLevel)})
		return d.immediate(d.configData())
	case sub == 0x01 && len(data) >= 5:
		if d.state == StateVend {
			return d.outOfSequence(sub)
		}
		d.maxPrice = uint16(data[1])<<8 | uint16(data[2])
		d.minPrice = uint16(data[3])<<8 | uint16(data[4])
		return d.ack()
	}
	return d.outOfSequence(sub)
}

// msgLen is the length of the messages whose format depends on the
// level, 0 for the others.
func (d *Device) msgLen(code byte) uint8 {
	lv := d.level()
	switch {
	case code == rspOutOfSequence && lv >= 2:
		return 2
	case code == rspOutOfSequence:
		return 1
	case code == rspBeginSession && lv >= 2:
		return 10
	case code == rspBeginSession:
		return 3
	}
	return 0
}

func (d *Device) configData() msg {
	var m msg
	hi, lo := bcd2(1000 + d.cfg.Currency)
	m.n = 8
	m.b = [maxMsg]byte{rspConfig, d.cfg.Level, hi, lo, d.cfg.Scale.Factor, d.cfg.Scale.Decimals,
		byte(d.cfg.MaxResponse / time.Second), d.cfg.miscOptions()}
	m.code = rspConfig
	return m
}

func (d *Device) peripheralID() msg {
	m := msg{code: rspPeripheralID}
	m.b[0] = rspPeripheralID
	field := func(at int, s string, n int) {
		for i := 0; i < n; i++ {
			c := byte(' ')
			if i < len(s) {
				c = s[i]
			}
			m.b[at+i] = c
		}
	}
	field(1, d.cfg.Manufacturer, 3)
	field(4, d.cfg.Serial, 12)
	field(16, d.cfg.Model, 12)
	m.b[28], m.b[29] = bcd2(d.cfg.SoftwareVersion)
	m.n = 30
	if d.level() >= 3 {
		o := d.cfg.offered()
		m.b[30], m.b[31], m.b[32], m.b[33] = byte(o>>24), byte(o>>16), byte(o>>8), byte(o)
		m.n = 34
	}
	return m
}

func (d *Device) expansion(sub byte, data []byte) []Word {
	switch sub {
	case 0x00: // Request ID; the VMC's own identity in it is not used
		if d.state == StateVend {
			return d.outOfSequence(sub)
		}
		return d.immediate(d.peripheralID())
	case 0x04: // Enable Options
		if len(data) < 5 || d.state == StateVend {
			return d.outOfSequence(sub)
		}
		want := uint32(data[1])<<24 | uint32(data[2])<<16 | uint32(data[3])<<8 | uint32(data[4])
		// Bits we did not offer are ignored, not refused: the VMC learns
		// from our Peripheral ID what it may use.
		d.options = want & d.cfg.offered()
		if d.level() < 3 {
			d.options = 0
		}
		return d.ack()
	case 0x03, 0xFF: // Write Time/Date, Diagnostics: accepted, nothing to do
		return d.ack()
	}
	return d.outOfSequence(sub)
}

func (d *Device) revalue(sub byte) []Word {
	// kioskd cannot put value on a card. A level 2/3 VMC may still ask;
	// the graceful answers are Revalue Denied and a limit of zero.
	if d.level() < 2 || (d.state != StateSessionIdle && d.state != StateEnabled) {
		return d.outOfSequence(sub)
	}
	switch sub {
	case 0x00:
		return d.immediate(msg1(rspRevalueDenied))
	case 0x01:
		m := msg1(rspRevalueLimit)
		m.n = 3 // limit 0000h
		return d.immediate(m)
	}
	return d.outOfSequence(sub)
}

func msg1(code byte) msg {
	m := msg{code: code, n: 1}
	m.b[0] = code
	return m
}

func (d *Device) readerCmd(sub byte) []Word {
	switch sub {
	case 0x00: // Disable
		switch d.state {
		case StateEnabled:
			d.withdrawBegin()
			d.state = StateDisabled
		case StateSessionIdle, StateVend:
			// A transaction in progress goes on to its end.
			d.stayOff = true
		}
		d.event(Event{Kind: EventDisabled})
		return d.ack()
	case 0x01: // Enable
		switch d.state {
		case StateInactive:
			return d.outOfSequence(sub)
		case StateDisabled:
			d.state = StateEnabled
		}
		d.stayOff = false
		d.event(Event{Kind: EventEnabled})
		return d.ack()
	case 0x02: // Cancel
		switch d.state {
		case StateSessionIdle, StateVend:
			return d.outOfSequence(sub)
		case StateEnabled:
			d.withdrawBegin()
		}
		d.event(Event{Kind: EventReaderCancelled})
		return d.immediate(msg1(rspCancelled))
	}
	return d.outOfSequence(sub)
}

// withdrawBegin takes back a Begin Session the VMC has not seen.
func (d *Device) withdrawBegin() {
	if d.beginQueued {
		d.dropCode(rspBeginSession)
		d.beginQueued = false
		d.event(Event{Kind: EventSessionCancelled})
	}
}

func (d *Device) outOfSequence(sub byte) []Word {
	m := msg1(rspOutOfSequence)
	m.b[1] = byte(d.state)
	m.n = d.msgLen(rspOutOfSequence)
	d.push(m)
	d.event(Event{Kind: EventOutOfSequence, Detail: uint16(d.cmd.AddrCmd)<<8 | uint16(sub)})
	return d.ack()
}

// resetByVMC is the Reset command: end what was going on, telling the
// payment side what became of an interrupted vend.
func (d *Device) resetByVMC() {
	if d.state == StateVend {
		e := Event{Kind: EventVendCancelled, Cause: CauseReset, Vend: d.v.id, Price: d.v.price, Item: d.v.item}
		switch {
		case d.v.phase == vendApproved || d.v.phase == vendApproval && d.v.sent:
			e = Event{Kind: EventVendUnconfirmed, Vend: d.v.id, Price: d.v.approved, Item: d.v.item}
		case d.v.phase == vendApproval:
			e.Approved = true
		}
		d.event(e)
	}
	d.reset()
	d.event(Event{Kind: EventReset})
}

// reset is the power-up state.
func (d *Device) reset() {
	d.state = StateInactive
	d.vmcLevel = vmcLevelUnknown
	d.options = 0
	d.stayOff, d.implicit, d.beginQueued = false, false, false
	d.vendsDone = 0
	d.v = vend{}
	d.qn = 0
	d.awaiting, d.inFlight, d.lastFlight = false, 0, 0
	d.push(msg1(rspJustReset))
}

func (d *Device) autoSession() {
	if d.cfg.AutoSession && d.state == StateEnabled && !d.beginQueued && !d.stayOff &&
		d.options&OptionAlwaysIdle == 0 && d.qn == 0 && !d.awaiting {
		d.queueBegin(-1)
	}
}

func (d *Device) queueBegin(funds int64) {
	m := msg{code: rspBeginSession}
	f := uint16(fundsUnknown16)
	if funds >= 0 {
		f = d.cfg.Scale.floorScaled(funds)
	}
	m.b[0], m.b[1], m.b[2] = rspBeginSession, byte(f>>8), byte(f)
	// Level 2/3 only: payment media ID unknown, type 0 (normal, VMC
	// prices), no payment data.
	m.b[3], m.b[4], m.b[5], m.b[6] = 0xFF, 0xFF, 0xFF, 0xFF
	m.n = d.msgLen(rspBeginSession)
	if d.push(m) {
		d.beginQueued = true
	}
}
