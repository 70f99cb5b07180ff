// Package printer prints receipts on an ESC/POS thermal printer over a
// serial port, from a queue in its own goroutine, so that a printer that is
// jammed, out of paper, switched off or missing never delays a payment.
//
// Before each job the printer is asked for its real-time status (DLE EOT
// 1, 2 and 4); a job goes out only when it can print. After the job it is
// asked again, so paper that ran out during the receipt is reported at
// once. The state is kept for kioskd status and the fault LED.
//
// A receipt that cannot print yet (paper out, cover open, printer silent or
// missing) is held and retried every RetryInterval until MaxAge, then
// dropped: a customer who walked away must not have their receipt handed to
// the next one when the operator reloads paper. While one receipt is held,
// the next ones wait in the queue, and those beyond it are dropped. A
// receipt that was sent but after which the printer reported a fault is
// counted as failed and never sent again: the printer keeps what it
// received and finishes it once it is back, and a second copy would be a
// duplicate.
package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/kioskd/kioskd/device/serial"
)

// Config tunes a Printer. Zero values take the defaults below.
type Config struct {
	Layout Layout
	// QueueLen bounds the receipts waiting to print.
	QueueLen int
	// StatusTimeout bounds one status exchange. Keep it above the serial
	// port's read timeout.
	StatusTimeout time.Duration
	// RetryInterval is how often a held receipt tries again.
	RetryInterval time.Duration
	// PollInterval is how often an idle printer is checked, so that the
	// status and the fault LED follow paper being reloaded; negative
	// turns polling off.
	PollInterval time.Duration
	// MaxAge is how long a receipt may wait for the printer before it is
	// dropped.
	MaxAge time.Duration
	// Blind is for printers whose transmit line is not wired (or that do
	// not answer DLE EOT): jobs are sent without asking, and the state is
	// ok while the port is open.
	Blind bool
	Log   *slog.Logger
	// OnChange is called from the printer's goroutine when the state
	// changes, e.g. to drive the fault LED. It must not block.
	OnChange func(Status)
}

// Defaults for Config.
const (
	DefaultQueueLen      = 8
	DefaultStatusTimeout = 500 * time.Millisecond
	DefaultRetryInterval = 2 * time.Second
	DefaultPollInterval  = 30 * time.Second
	DefaultMaxAge        = 2 * time.Minute
)

// Check reports a config that cannot work.
func (c Config) Check() error {
	var errs []error
	if err := c.Layout.Check(); err != nil {
		errs = append(errs, err)
	}
	if c.QueueLen < 0 || c.QueueLen > 1024 {
		errs = append(errs, fmt.Errorf("printer: queue length %d: want 1..1024, or 0 for the default", c.QueueLen))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"status timeout", c.StatusTimeout}, {"retry interval", c.RetryInterval}, {"max age", c.MaxAge}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("printer: %s %v: must not be negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	def(&c.StatusTimeout, DefaultStatusTimeout)
	def(&c.RetryInterval, DefaultRetryInterval)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.MaxAge, DefaultMaxAge)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrClosed is returned by calls on a closed Printer.
var ErrClosed = errors.New("printer: closed")

// Printer prints jobs one at a time from its own goroutine.
type Printer struct {
	cfg  Config
	log  *slog.Logger
	open func() (io.ReadWriter, error) // nil when given a port by New
	baud int                           // for the time a job takes on the wire; 0 if unknown

	queue  chan job // receipts
	direct chan job // test pages and lines, which fail at once rather than wait
	quit   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	closed bool
	st     Status
	held   int

	// Owned by the goroutine.
	rw       io.ReadWriter
	buf      []byte
	answered bool // the printer has answered a status request since start
	resync   bool // an exchange broke off; a late answer may still arrive
	rbuf     [8]byte
}

// New starts a printer on rw, which it owns: Close closes it if it is an
// io.Closer. rw.Read must return within a bounded time when nothing
// arrives, as a device/serial Port does with its read timeout, or rw must
// have SetReadDeadline.
func New(rw io.ReadWriter, cfg Config) (*Printer, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	p := newPrinter(cfg)
	p.rw = rw
	go p.run()
	return p, nil
}

// Open starts a printer on a serial port. A port that is missing or fails
// is not an error: the printer reports no_printer and opens the port again
// when a job or a status poll needs it, so a printer plugged in later is
// found.
func Open(port serial.Config, cfg Config) (*Printer, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if port.Device == "" || port.Baud <= 0 {
		return nil, fmt.Errorf("printer: serial port %q at %d baud: device and baud rate are required", port.Device, port.Baud)
	}
	p := newPrinter(cfg)
	p.baud = port.Baud
	p.open = func() (io.ReadWriter, error) { return serial.Open(port) }
	go p.run()
	return p, nil
}

func newPrinter(cfg Config) *Printer {
	cfg = cfg.withDefaults()
	return &Printer{
		cfg:    cfg,
		log:    cfg.Log,
		queue:  make(chan job, cfg.QueueLen),
		direct: make(chan job),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		st:     Status{State: StateUnknown, Since: time.Now()},
		buf:    make([]byte, 0, 2048),
	}
}

// Receipt queues r and returns at once; false means it was dropped because
// the queue is full or the printer closed. r's slices must not change
// afterwards.
func (p *Printer) Receipt(r Receipt) bool {
	p.mu.Lock()
	reason := ""
	if p.closed {
		reason = "printer closed"
	} else {
		select {
		case p.queue <- job{kind: kindReceipt, receipt: r, at: time.Now()}:
		default:
			reason = "queue full"
		}
	}
	if reason != "" {
		p.st.Dropped++
	}
	dropped, state := p.st.Dropped, p.st.State
	p.mu.Unlock()
	if reason != "" {
		p.log.Warn("receipt dropped", "txn_id", r.TxnID, "reason", reason, "printer", state, "dropped", dropped)
		return false
	}
	return true
}

// PrintLines prints lines and, if qr is not empty, a QR code of it, as
// kioskd pair does. It waits for the result, but fails at once if the
// printer cannot print now.
func (p *Printer) PrintLines(ctx context.Context, lines []string, qr string) error {
	return p.do(ctx, job{kind: kindLines, lines: lines, qr: qr})
}

// TestPage prints a page that shows the layout, code page, styles, QR
// code and cutter, with header lines on top (kiosk id, version), for
// kioskd selftest. Like PrintLines it fails at once if the printer cannot
// print now.
func (p *Printer) TestPage(ctx context.Context, header ...string) error {
	return p.do(ctx, job{kind: kindTestPage, lines: header})
}

func (p *Printer) do(ctx context.Context, j job) error {
	j.ctx, j.done, j.at = ctx, make(chan error, 1), time.Now()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	select {
	case p.direct <- j:
	case <-ctx.Done():
		return fmt.Errorf("printer: %s: %w", j.name(), ctx.Err())
	case <-p.done:
		return ErrClosed
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("printer: %s: %w", j.name(), ctx.Err())
	}
}

// Status returns the current state and counters.
func (p *Printer) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.Queue = len(p.queue) + p.held
	return s
}

// Close stops the printer goroutine, drops receipts still queued and
// closes the port. It returns within about StatusTimeout plus the port's
// read timeout.
func (p *Printer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.quit)
	<-p.done
	return p.closePort()
}
