package printer

// The printer's goroutine and its jobs: the queue, a held receipt's retries,
// and one job's attempt.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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
