package qibixx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// Config is the board's set-up and the reader's own rules. The zero
// value of each field means its default.
type Config struct {
	// Address is the cashless address the board answers at, 10h (the
	// default) or 60h: C,SETCONF,mdb-addr.
	Address byte
	// Currency is the ISO 4217 numeric code (default 458, ringgit):
	// C,SETCONF,mdb-currency-code, in the MDB's 1xxx BCD form.
	Currency uint16
	// Scale is the money's scaling (default factor 1, 2 decimals); its
	// Decimals are how many decimals the board writes amounts with, and a
	// price with more is refused: board and kioskd disagree about the
	// money. The factor must be 1: the board's pages do not say whether
	// the amounts it writes are scaled.
	Scale mdb.Scale
	// AlwaysIdle is C,SETCONF,mdb-always-idle: the VMC may ask for a
	// vend without a session begun by the reader.
	AlwaysIdle bool
	// Multivend allows a second vend in one session; off, the second is
	// denied: one card payment, one item.
	Multivend bool
	// MaxResponse less VendMargin is how long a vend request waits for
	// Approve or Deny before the reader denies it itself (defaults 60 s
	// and 2 s, as mdb.Device's): the VMC hears a denial rather than its
	// own timeout, and the payment side is told to cancel.
	MaxResponse, VendMargin time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log gets one line per thing worth knowing (default: discarded).
	Log *slog.Logger
}

// ErrConfig is what New wraps around a problem in a Config.
var ErrConfig = errors.New("qibixx: invalid config")

// ErrLinkDown is Approve's and Deny's verdict while there is no link to
// the board: nothing reached the VMC.
var ErrLinkDown = errors.New("qibixx: no link to the board")

func (c Config) normalize() (Config, error) {
	if c.Address == 0 {
		c.Address = mdb.AddrCashless1
	}
	if c.Currency == 0 {
		c.Currency = mdb.CurrencyMYR
	}
	if c.Scale == (mdb.Scale{}) {
		c.Scale = mdb.Scale{Factor: 1, Decimals: 2}
	}
	if c.MaxResponse == 0 {
		c.MaxResponse = 60 * time.Second
	}
	if c.VendMargin == 0 {
		c.VendMargin = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Address != mdb.AddrCashless1 && c.Address != mdb.AddrCashless2:
		return c, fmt.Errorf("%w: address %#x", ErrConfig, c.Address)
	case c.Currency > 999:
		return c, fmt.Errorf("%w: currency %d", ErrConfig, c.Currency)
	case c.Scale.Factor != 1 || int(c.Scale.Decimals) > maxFrac:
		return c, fmt.Errorf("%w: scale factor %d, %d decimals: want factor 1, 0 to 4 decimals", ErrConfig, c.Scale.Factor, c.Scale.Decimals)
	case c.VendMargin < 0 || c.VendMargin >= c.MaxResponse:
		return c, fmt.Errorf("%w: vend margin %s, max response %s", ErrConfig, c.VendMargin, c.MaxResponse)
	}
	return c, nil
}

type vendPhase uint8

const (
	vendNone     vendPhase = iota
	vendPending            // the board waits for C,VEND or C,STOP
	vendApproved           // C,VEND is out; only the VMC's report ends it
)

type vend struct {
	id       uint32
	phase    vendPhase
	price    int64 // sen, as requested
	approved int64 // sen, as approved
	item     uint16
	deadline time.Time
}

// outCap bounds the commands waiting for the link: the set-up and a few
// answers; more means the link is stuck, and Approve says so.
const outCap = 16

// Reader is a Qibixx board in cashless slave mode, seen from the payment
// side as an mdb.Device is: the same events, Approve and Deny with the
// same verdicts, the same never-approve-twice rule. Serve runs it over
// one link; all its other methods are safe for concurrent use and never
// block on the link.
type Reader struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	state     mdb.State
	v         vend
	nextVend  uint32
	vendsDone int
	ev        eventRing
	out       chan []byte // nil while no link is served
	notify    chan struct{}

	lines, refused, connects, drops atomic.Uint64

	badLines, oddLines limiter
}

// New makes a reader with no link yet: Inactive.
func New(cfg Config) (*Reader, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &Reader{cfg: c, log: c.Log.With("component", "qibixx"), state: mdb.StateInactive,
		notify:   make(chan struct{}, 1),
		badLines: limiter{window: 10 * time.Second}, oddLines: limiter{window: 10 * time.Second}}, nil
}

// Notify is signalled (without blocking, at most one pending signal)
// whenever events are waiting; drain them with Events.
func (r *Reader) Notify() <-chan struct{} { return r.notify }

// Events appends the waiting events to dst, oldest first, and forgets
// them.
func (r *Reader) Events(dst []mdb.Event) []mdb.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev.drain(dst)
}

// LostEvents counts events dropped because the ring was full; only
// non-vend events can be.
func (r *Reader) LostEvents() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev.lost
}

// State is the slave's state as the board last reported it.
func (r *Reader) State() mdb.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Lines counts the lines read from the board; Refused those that did
// not parse (too long, not ASCII, a field that does not read); Connects
// the links served; Drops those that failed.
func (r *Reader) Lines() uint64    { return r.lines.Load() }
func (r *Reader) Refused() uint64  { return r.refused.Load() }
func (r *Reader) Connects() uint64 { return r.connects.Load() }
func (r *Reader) Drops() uint64    { return r.drops.Load() }

// Approve answers vend id with C,VEND for amount sen (at most the
// price). It fails with mdb.ErrNoVend when that vend is not waiting,
// mdb.ErrTooLate when it timed out, mdb.ErrAmount when amount cannot be
// sent, ErrLinkDown or mdb.ErrQueueFull when the command cannot go out;
// then nothing reaches the VMC, and money already taken must be given
// back by the payment side.
func (r *Reader) Approve(id uint32, amount int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.v.phase == vendPending && r.v.id == id {
		r.checkDeadline(r.cfg.Now())
		if r.v.phase != vendPending {
			return mdb.ErrTooLate
		}
	}
	if r.v.phase != vendPending || r.v.id != id {
		return mdb.ErrNoVend
	}
	if amount > r.v.price || amount <= 0 {
		return mdb.ErrAmount
	}
	cmd, err := AppendVend(nil, amount, r.cfg.Scale.Decimals)
	if err != nil {
		return mdb.ErrAmount
	}
	if err := r.sendLocked(cmd); err != nil {
		return err
	}
	r.v.phase, r.v.approved = vendApproved, amount
	return nil
}

// Deny answers vend id with C,STOP.
func (r *Reader) Deny(id uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.v.phase != vendPending || r.v.id != id {
		return mdb.ErrNoVend
	}
	r.v = vend{}
	// Even when the stop cannot go out the vend is over for kioskd: the
	// VMC's own timeout ends it at the machine.
	return r.sendLocked(AppendStop(nil))
}

func (r *Reader) sendLocked(cmd []byte) error {
	if r.out == nil {
		return ErrLinkDown
	}
	select {
	case r.out <- cmd:
		return nil
	default:
		return mdb.ErrQueueFull
	}
}

func (r *Reader) event(e mdb.Event) {
	r.ev.push(e)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// checkDeadline denies the vend waiting past its deadline.
func (r *Reader) checkDeadline(now time.Time) {
	if r.v.phase == vendPending && !now.Before(r.v.deadline) {
		r.log.Warn("vend not answered in time; denied", "vend", r.v.id, "price", r.v.price, "item", r.v.item)
		r.sendLocked(AppendStop(nil))
		r.endVend(mdb.Event{Kind: mdb.EventVendTimedOut})
	}
}

// endVend reports e about the vend in progress and forgets it.
func (r *Reader) endVend(e mdb.Event) {
	e.Vend, e.Price, e.Item = r.v.id, r.v.price, r.v.item
	r.v = vend{}
	r.event(e)
}

// interrupt ends the vend in progress when the board, the VMC or the link
// has moved on without its outcome: one still waiting is cancelled
// (Cause says why); one approved is unconfirmed, for review, never
// approved again.
func (r *Reader) interrupt(cause mdb.Cause, why string) {
	switch r.v.phase {
	case vendPending:
		r.log.Warn("vend cancelled before its answer", "vend", r.v.id, "why", why)
		r.endVend(mdb.Event{Kind: mdb.EventVendCancelled, Cause: cause})
	case vendApproved:
		r.log.Error("approved vend ended without a report of it", "vend", r.v.id, "why", why)
		r.endVend(mdb.Event{Kind: mdb.EventVendUnconfirmed})
	}
}

// Serve runs the reader over rw, a line link to the board, until ctx
// ends (nil) or the link fails (the error). It owns rw and closes it.
// It switches the slave off, configures it and switches it on again, as
// the board forgets its configuration at power-up; a vend the link's
// end interrupts is reported as interrupt says. One link at a time: call
// Serve again only once it has returned.
func (r *Reader) Serve(ctx context.Context, rw io.ReadWriteCloser) error {
	out := make(chan []byte, outCap)
	out <- AppendEnable(nil, false)
	out <- AppendSetConf(nil, "mdb-addr", fmt.Sprintf("0x%02X", r.cfg.Address))
	out <- AppendSetConf(nil, "mdb-currency-code", fmt.Sprintf("0x1%03d", r.cfg.Currency))
	out <- AppendSetConf(nil, "mdb-always-idle", map[bool]string{false: "0", true: "1"}[r.cfg.AlwaysIdle])
	out <- AppendEnable(nil, true)
	r.mu.Lock()
	r.out, r.state = out, mdb.StateInactive
	r.mu.Unlock()
	r.connects.Add(1)

	lines := make(chan []byte)
	readErr := make(chan error, 1)
	writeErr := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); readErr <- readLines(rw, lines, stop) }()
	wrote := make(chan struct{})
	go func() { defer wg.Done(); defer close(wrote); writeErr <- writeLines(rw, out, stop) }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var err error
loop:
	for {
		r.mu.Lock()
		wait := time.Hour
		if r.v.phase == vendPending {
			wait = max(r.v.deadline.Sub(r.cfg.Now()), 0)
		}
		r.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			break loop
		case l := <-lines:
			r.handle(l)
		case err = <-readErr:
			break loop
		case err = <-writeErr:
			break loop
		case <-timer.C:
			r.mu.Lock()
			r.checkDeadline(r.cfg.Now())
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	if err == nil {
		// Going away on purpose: a vend still waiting is denied, and the
		// slave goes off the bus, so that the VMC stops offering cashless
		// rather than wait on a reader nobody runs.
		if r.v.phase == vendPending {
			r.sendLocked(AppendStop(nil))
		}
		r.interrupt(mdb.CauseReset, "kioskd stopping")
		r.sendLocked(AppendEnable(nil, false))
	} else {
		r.interrupt(mdb.CauseReset, "link to the board lost")
	}
	r.out, r.state = nil, mdb.StateInactive
	r.mu.Unlock()
	close(stop)
	if err == nil {
		// The writer drains what is queued before it stops; a link that
		// takes nothing does not hold the stop for long.
		select {
		case <-wrote:
		case <-time.After(time.Second):
		}
	}
	rw.Close()
	wg.Wait()
	if err != nil {
		r.drops.Add(1)
		return fmt.Errorf("qibixx: link: %w", err)
	}
	return nil
}

// readLines cuts what rw delivers into lines at CR or LF, each at most
// MaxLine long; an overlong one is delivered as a nil line, once, and the
// rest of it skipped. A read that times out (a serial port's read
// timeout) is not an error.
func readLines(rw io.Reader, lines chan<- []byte, stop <-chan struct{}) error {
	var buf [512]byte
	line := make([]byte, 0, MaxLine)
	overlong := false
	for {
		n, err := rw.Read(buf[:])
		for _, c := range buf[:n] {
			if c == '\n' || c == '\r' {
				var l []byte
				switch {
				case overlong:
				case len(line) == 0:
					continue
				default:
					l = append([]byte(nil), line...)
				}
				select {
				case lines <- l:
				case <-stop:
					return nil
				}
				line, overlong = line[:0], false
				continue
			}
			if overlong {
				continue
			}
			if len(line) == MaxLine {
				overlong = true
				continue
			}
			line = append(line, c)
		}
		switch {
		case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		case errors.Is(err, io.EOF):
			return io.ErrUnexpectedEOF
		default:
			return err
		}
	}
}

func writeLines(w io.Writer, out <-chan []byte, stop <-chan struct{}) error {
	for {
		select {
		case b := <-out:
			if _, err := w.Write(b); err != nil {
				return err
			}
		case <-stop:
			for {
				select {
				case b := <-out:
					if _, err := w.Write(b); err != nil {
						return nil
					}
				default:
					return nil
				}
			}
		}
	}
}
