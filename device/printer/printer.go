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
	"os"
	"sync"
	"time"

	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/protocol/escpos"
)

// State is the printer's condition as kioskd status shows it.
type State string

// States.
const (
	StateUnknown      State = "unknown" // not checked yet; only right after start
	StateOK           State = "ok"
	StatePaperNearEnd State = "paper_near_end" // prints; reload soon
	StatePaperOut     State = "paper_out"
	StateOffline      State = "offline"    // cover open, error, or stopped answering
	StateNoPrinter    State = "no_printer" // port missing or gone, or nothing ever answered
)

// Fault reports a state in which receipts do not print, for the fault LED.
func (s State) Fault() bool {
	return s == StatePaperOut || s == StateOffline || s == StateNoPrinter
}

// Status is a snapshot of the printer for kioskd status.
type Status struct {
	State State     `json:"state"`
	Since time.Time `json:"since"` // when State last changed
	// LastError is the latest problem seen; it stays after recovery.
	LastError string `json:"last_error,omitempty"`
	// Printed counts jobs (receipts, test pages, lines) put on paper.
	Printed uint64 `json:"printed"`
	// Failed counts jobs sent to a printer that then failed; they may be
	// incomplete and are not sent again.
	Failed uint64 `json:"failed"`
	// Dropped counts receipts never sent: queue full, not printable within
	// MaxAge, or still queued at Close.
	Dropped uint64 `json:"dropped"`
	Queue   int    `json:"queue"` // receipts waiting, including one held for the printer
}

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

type jobKind int

const (
	kindReceipt jobKind = iota
	kindLines
	kindTestPage
)

type job struct {
	kind    jobKind
	receipt Receipt
	lines   []string
	qr      string
	at      time.Time
	waiting bool // "waiting for the printer" was logged

	// Set for the calls that wait for the result.
	ctx  context.Context
	done chan error
}

func (j *job) name() string {
	switch j.kind {
	case kindLines:
		return "lines"
	case kindTestPage:
		return "test page"
	}
	return "receipt"
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

func (p *Printer) closePort() error {
	c, ok := p.rw.(io.Closer)
	p.rw = nil
	if !ok {
		return nil
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("printer: close port: %w", err)
	}
	return nil
}

func (p *Printer) run() {
	defer close(p.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var poll <-chan time.Time
	if p.cfg.PollInterval > 0 {
		t := time.NewTicker(p.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}

	p.refresh()
	var held *job
	for {
		in := p.queue
		if held != nil {
			in = nil
		}
		select {
		case <-p.quit:
			p.shutdown(held)
			return
		case j := <-in:
			held = &j
			p.setHeld(1)
		case j := <-p.direct:
			p.attempt(&j)
		case <-retry.C:
		case <-poll:
			if held == nil {
				p.refresh()
			}
		}
		if held == nil {
			continue
		}
		if p.attempt(held) {
			held = nil // attempt cleared p.held with the counter it moved
		} else {
			retry.Reset(p.cfg.RetryInterval)
		}
	}
}

func (p *Printer) setHeld(n int) {
	p.mu.Lock()
	p.held = n
	p.mu.Unlock()
}

func (p *Printer) shutdown(held *job) {
	n := len(p.queue)
	if held != nil {
		n++
	}
	for range len(p.queue) {
		<-p.queue
	}
	p.setHeld(0)
	if n == 0 {
		return
	}
	p.mu.Lock()
	p.st.Dropped += uint64(n)
	p.mu.Unlock()
	p.log.Warn("receipts dropped", "reason", "printer closed", "count", n)
}

// refresh checks the printer while idle.
func (p *Printer) refresh() {
	if p.ensurePort() != nil {
		return
	}
	if p.cfg.Blind {
		p.setState(StateOK, "")
		return
	}
	// The state is all an idle check is for; a fault is in it.
	_ = p.check(p.cfg.StatusTimeout)
}

// attempt tries to print j and reports whether j is finished with (printed,
// failed or dropped) rather than to be retried.
func (p *Printer) attempt(j *job) bool {
	sync := j.done != nil
	if sync && j.ctx.Err() != nil {
		j.done <- fmt.Errorf("printer: %s: %w", j.name(), j.ctx.Err())
		return true
	}
	if !sync && time.Since(j.at) > p.cfg.MaxAge {
		p.mu.Lock()
		p.st.Dropped++
		p.held = 0
		dropped, state := p.st.Dropped, p.st.State
		p.mu.Unlock()
		p.log.Warn("receipt dropped", "txn_id", j.receipt.TxnID, "reason", "printer not ready within max age",
			"printer", state, "max_age", p.cfg.MaxAge, "dropped", dropped)
		return true
	}
	notReady := func(err error) bool {
		if sync {
			j.done <- fmt.Errorf("printer: %s not printed: %w", j.name(), err)
			return true
		}
		if !j.waiting {
			j.waiting = true
			p.log.Info("receipt waiting for the printer", "txn_id", j.receipt.TxnID, "printer", p.Status().State, "err", err)
		}
		return false
	}
	if err := p.ensurePort(); err != nil {
		return notReady(err)
	}
	if !p.cfg.Blind {
		if err := p.check(p.cfg.StatusTimeout); err != nil {
			return notReady(err)
		}
	}

	p.buf = j.encode(p.buf[:0], p.cfg.Layout)
	n, err := p.rw.Write(p.buf)
	if err != nil {
		p.portFailed(err)
		if n == 0 {
			return notReady(err)
		}
		return p.failed(j, fmt.Errorf("%s cut off after %d of %d bytes: %w", j.name(), n, len(p.buf), err))
	}
	if !p.cfg.Blind {
		err := p.check(p.cfg.StatusTimeout + p.wireTime(len(p.buf)))
		// Closing cuts the answer short; the job went out.
		if err != nil && !errors.Is(err, ErrClosed) {
			return p.failed(j, fmt.Errorf("after %s: %w", j.name(), err))
		}
	} else {
		p.setState(StateOK, "")
	}
	p.mu.Lock()
	p.st.Printed++
	if !sync {
		p.held = 0
	}
	p.mu.Unlock()
	if j.kind == kindReceipt {
		p.log.Info("receipt printed", "txn_id", j.receipt.TxnID)
	} else {
		p.log.Info("printed", "job", j.name())
	}
	if sync {
		j.done <- nil
	}
	return true
}

func (p *Printer) failed(j *job, err error) bool {
	p.mu.Lock()
	p.st.Failed++
	p.st.LastError = err.Error()
	if j.done == nil {
		p.held = 0
	}
	p.mu.Unlock()
	p.log.Warn("print may be incomplete; not sent again", "job", j.name(), "txn_id", j.receipt.TxnID, "err", err)
	if j.done != nil {
		j.done <- fmt.Errorf("printer: %w", err)
	}
	return true
}

// wireTime is how long n bytes take to leave at the port's baud rate (10
// bits a byte), which the answer after a job waits behind.
func (p *Printer) wireTime(n int) time.Duration {
	if p.baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(p.baud)
}

func (j *job) encode(dst []byte, l Layout) []byte {
	switch j.kind {
	case kindLines:
		return AppendLines(dst, j.lines, j.qr, l)
	case kindTestPage:
		return AppendTestPage(dst, j.lines, time.Now(), l)
	}
	return AppendReceipt(dst, j.receipt, l)
}

func (p *Printer) ensurePort() error {
	if p.rw != nil {
		return nil
	}
	if p.open == nil {
		return errors.New("no port")
	}
	rw, err := p.open()
	if err != nil {
		p.setState(StateNoPrinter, err.Error())
		return err
	}
	p.rw = rw
	p.resync = true
	return nil
}

// portFailed handles an error from the port itself: a device that went
// away is closed, to be opened again by the next job or poll.
func (p *Printer) portFailed(err error) {
	if p.open != nil {
		if cerr := p.closePort(); cerr != nil {
			p.log.Debug("closing failed port", "err", cerr)
		}
	}
	p.setState(StateNoPrinter, err.Error())
}

var statusQueries = [...]escpos.Query{escpos.QueryPrinter, escpos.QueryOffline, escpos.QueryPaper}

// check asks the printer for its status, sets the state from the answer,
// and returns an error unless it can print.
func (p *Printer) check(timeout time.Duration) error {
	st, err := p.query(timeout)
	if err != nil {
		return err
	}
	p.answered = true
	switch {
	case st.NoPaper():
		err = fmt.Errorf("printer reports %v", st)
		p.setState(StatePaperOut, err.Error())
	case st.Fault():
		err = fmt.Errorf("printer reports %v", st)
		p.setState(StateOffline, err.Error())
	case st.PaperNearEnd:
		p.setState(StatePaperNearEnd, "")
	default:
		p.setState(StateOK, "")
	}
	return err
}

var errNoAnswer = errors.New("no answer to DLE EOT")

// query sends DLE EOT 1, 2 and 4 and reads the three answers.
func (p *Printer) query(timeout time.Duration) (escpos.Status, error) {
	var st escpos.Status
	if p.resync {
		p.drain()
		p.resync = false
	}
	var req [3 * len(statusQueries)]byte
	q := req[:0]
	for _, n := range statusQueries {
		q = escpos.AppendStatusQuery(q, n)
	}
	if _, err := p.rw.Write(q); err != nil {
		p.portFailed(err)
		return st, fmt.Errorf("status request: %w", err)
	}
	deadline := time.Now().Add(timeout)
	got := 0
	for got < len(statusQueries) {
		select {
		case <-p.quit:
			return st, ErrClosed
		default:
		}
		if !time.Now().Before(deadline) {
			p.resync = true
			return st, p.silent(timeout, got)
		}
		if d, ok := p.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(deadline)
		}
		// Read no more than the answers still due, so a late byte is
		// never taken for the next exchange's.
		n, err := p.rw.Read(p.rbuf[:len(statusQueries)-got])
		for _, b := range p.rbuf[:n] {
			if st.Decode(statusQueries[got], b) != nil {
				p.resync = true // noise, or an answer out of step
				continue
			}
			got++
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			p.portFailed(err)
			return st, fmt.Errorf("status answer: %w", err)
		}
	}
	return st, nil
}

// silent sets the state for a printer that did not answer: one that never
// has may not be there at all.
func (p *Printer) silent(timeout time.Duration, got int) error {
	err := fmt.Errorf("%w within %v (%d of %d answers)", errNoAnswer, timeout, got, len(statusQueries))
	if p.answered {
		p.setState(StateOffline, err.Error())
	} else {
		p.setState(StateNoPrinter, err.Error())
	}
	return err
}

// drain discards bytes left on the line by an exchange that broke off.
func (p *Printer) drain() {
	deadline := time.Now().Add(p.cfg.StatusTimeout)
	for time.Now().Before(deadline) {
		if d, ok := p.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		n, err := p.rw.Read(p.rbuf[:])
		if n == 0 || err != nil {
			return
		}
	}
}

func (p *Printer) setState(s State, problem string) {
	p.mu.Lock()
	was := p.st.State
	if problem != "" {
		p.st.LastError = problem
	}
	if s == was {
		p.mu.Unlock()
		return
	}
	p.st.State, p.st.Since = s, time.Now()
	snap := p.st
	snap.Queue = len(p.queue) + p.held
	p.mu.Unlock()
	if s.Fault() {
		p.log.Warn("printer state", "state", s, "was", was, "err", problem)
	} else {
		p.log.Info("printer state", "state", s, "was", was)
	}
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(snap)
	}
}
