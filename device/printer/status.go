package printer

// The printer's state: what it can be, and the port and the DLE EOT status
// exchange that set it.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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
