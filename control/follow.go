package control

// A payment asked for and followed to its outcome, through lost contact
// with the daemon: what `kioskd pay` does, and what a machine controller
// written in Go needs too.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// Outcome says how PayAndWait ended.
type Outcome int

const (
	// Final: the payment will not change any more; its state and vend
	// say how it ended.
	Final Outcome = iota
	// NotAsked: the event stream could not be opened, so nothing was
	// asked for.
	NotAsked
	// NotSent: the payment request never left this process. There is no
	// payment; asking again is safe.
	NotSent
	// Refused: the daemon refused the request (the error is an
	// *APIError). There is no payment.
	Refused
	// Unclear: no outcome this client can vouch for (the error is an
	// *UnclearError). The payment may exist and may still complete:
	// never ask again blindly.
	Unclear
)

// Why says what left a payment unclear.
type Why int

const (
	// NoAnswer: the request got no answer, and without a key asking
	// again could make a second payment.
	NoAnswer Why = iota + 1
	// RetryRefused: the request got no answer, and asking again with the
	// key was refused; the first request's outcome is unknown.
	RetryRefused
	// RetryNoAnswer: asking again with the key got no answer in time.
	RetryNoAnswer
	// Undecodable: the daemon accepted the payment, but its answer
	// cannot be decoded.
	Undecodable
	// Timeout: ctx ended before the payment did.
	Timeout
	// LookUpFailed: the payment's record cannot be read, for a reason
	// that asking again would not mend.
	LookUpFailed
	// Lost: the daemon did not answer again after contact was lost.
	Lost
)

// UnclearError is why PayAndWait has no outcome to report.
type UnclearError struct {
	Why   Why
	TxnID string // the payment, once the daemon has named it
	Err   error  // the last error seen, if any
}

func (e *UnclearError) Error() string {
	what := map[Why]string{
		NoAnswer: "the request got no answer", RetryRefused: "asking again was refused",
		RetryNoAnswer: "asking again got no answer", Undecodable: "the answer cannot be decoded",
		Timeout: "no outcome in time", LookUpFailed: "the payment cannot be looked up",
		Lost: "the daemon did not answer again",
	}[e.Why]
	id := e.TxnID
	if id == "" {
		id = "(no txn_id)"
	}
	if e.Err == nil {
		return fmt.Sprintf("control: payment %s: outcome unknown: %s", id, what)
	}
	return fmt.Sprintf("control: payment %s: outcome unknown: %s: %v", id, what, e.Err)
}

func (e *UnclearError) Unwrap() error { return e.Err }

// Step is what a Progress reports.
type Step int

const (
	// Accepted: the daemon has the payment (Txn); Existing when it is the
	// one already made for the key.
	Accepted Step = iota + 1
	// Retrying: the request got no answer (Err); it is asked again with
	// the same key.
	Retrying
	// Changed: the payment moved to a new state (Txn).
	Changed
	// Cancelling: a cancel is being asked for (Txn).
	Cancelling
	// CancelFailed: the cancel was not taken (Err).
	CancelFailed
	// UndecodableEvent: an event (Item) cannot be decoded; the record of
	// the payment (Txn, as last known) is looked up instead.
	UndecodableEvent
	// LostContact: the daemon is out of reach (Err says how); the
	// payment (Txn, as last known) is looked for again.
	LostContact
	// Reconnected: the daemon answers again; the payment is Txn.
	Reconnected
)

// Progress is one step of PayAndWait, for the caller to show.
type Progress struct {
	Step     Step
	Txn      Txn
	Existing bool
	Item     StreamItem
	Err      error
}

// PayOptions tune PayAndWait. Zero durations take the defaults.
type PayOptions struct {
	// Key is the Idempotency-Key (the controller's order id). With one,
	// a request that got no answer is asked again, which the daemon
	// answers with the payment already made.
	Key string
	// Cancel asks the daemon to cancel the payment each time it
	// receives; PayAndWait then goes on waiting for the outcome.
	Cancel <-chan struct{}
	// Progress, if set, is called with every step, from the goroutine
	// that called PayAndWait.
	Progress func(Progress)
	// RequestTimeout bounds one look-up once the payment is being
	// followed (default 10 s). The payment request itself is bounded
	// only by ctx: the daemon may be waiting on a payment host.
	RequestTimeout time.Duration
	// ReconnectWindow is how long the daemon is looked for again after
	// contact is lost (default 30 s, or until ctx ends), asking at
	// RetryFirst (100 ms) and doubling up to RetryMax (2 s).
	ReconnectWindow      time.Duration
	RetryFirst, RetryMax time.Duration
}

func (o *PayOptions) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.RequestTimeout, 10*time.Second)
	set(&o.ReconnectWindow, 30*time.Second)
	set(&o.RetryFirst, 100*time.Millisecond)
	set(&o.RetryMax, 2*time.Second)
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
}

// Over reports a payment that will not change any more: final, and no
// vend still running.
func Over(t Txn) bool { return t.State.Final() && t.Vend != payment.VendReleasing }

// PayAndWait asks for a payment and follows it until it is over, ctx
// ends, or the daemon cannot be reached again. It subscribes to the
// event stream before asking, so that no step is missed, and after a
// lost contact subscribes again before it reads the record. The Txn
// returned is the last one known (zero before the daemon named one).
func (c *Client) PayAndWait(ctx context.Context, req PayRequest, opts PayOptions) (Txn, Outcome, error) {
	opts.defaults()
	p := &payer{c: c, o: opts}
	defer func() { p.st.Close() }()
	var err error
	if p.st, err = c.Events(ctx, ctx); err != nil {
		return Txn{}, NotAsked, err
	}
	t, out, err := p.create(ctx, req)
	if err != nil {
		return t, out, err
	}
	return p.follow(ctx, t)
}

type payer struct {
	c  *Client
	o  PayOptions
	st *Stream // nil while the daemon is out of reach
}

// create asks for the payment. Until the daemon answers with a txn id
// the outcome of a request that got no answer is unknown (the daemon may
// have created the payment and sent it to the terminal): only a request
// that was never sent is NotSent. With a key the request is asked again.
func (p *payer) create(ctx context.Context, req PayRequest) (Txn, Outcome, error) {
	t, created, err := p.c.Pay(ctx, req, p.o.Key)
	if err == nil {
		return p.accepted(t, created)
	}
	var ae *APIError
	var de *DecodeError
	switch {
	case errors.As(err, &ae):
		return t, Refused, err
	case errors.As(err, &de):
		return t, Unclear, undecodable(de)
	case SentNothing(err):
		return t, NotSent, err
	}
	if p.o.Key == "" {
		return t, Unclear, &UnclearError{Why: NoAnswer, Err: err}
	}
	wctx, cancel := context.WithTimeout(ctx, p.o.ReconnectWindow)
	defer cancel()
	if ctx.Err() == nil {
		p.o.Progress(Progress{Step: Retrying, Err: err})
	}
	for wait := p.o.RetryFirst; ctx.Err() == nil; wait = min(2*wait, p.o.RetryMax) {
		if !sleepCtx(wctx, wait) {
			break
		}
		// The daemon may have restarted: subscribe again before asking.
		if p.st == nil || p.st.Dead() {
			p.st.Close()
			if p.st, err = p.c.Events(ctx, wctx); err != nil {
				continue
			}
		}
		t, created, err = p.c.Pay(wctx, req, p.o.Key)
		if err == nil {
			return p.accepted(t, created)
		}
		if errors.As(err, &de) {
			return t, Unclear, undecodable(de)
		}
		if Answered(err) {
			return t, Unclear, &UnclearError{Why: RetryRefused, Err: err}
		}
	}
	return t, Unclear, &UnclearError{Why: RetryNoAnswer, Err: err}
}

func (p *payer) accepted(t Txn, created bool) (Txn, Outcome, error) {
	p.o.Progress(Progress{Step: Accepted, Txn: t, Existing: !created && p.o.Key != ""})
	return t, Final, nil
}

// undecodable is a payment the daemon accepted with an answer this
// client cannot decode: it exists, under the id the answer names if any.
func undecodable(de *DecodeError) error {
	var head struct {
		ID string `json:"txn_id"`
	}
	json.Unmarshal(de.Raw, &head)
	return &UnclearError{Why: Undecodable, TxnID: head.ID, Err: de}
}

// follow waits for the payment's outcome. From here on every failure is
// Unclear with the txn id and its last known state: the daemon has the
// payment, and it may still complete.
func (p *payer) follow(ctx context.Context, t Txn) (Txn, Outcome, error) {
	last := t.State
	for !Over(t) {
		var items <-chan StreamItem
		if p.st != nil {
			items = p.st.C
		}
		var err error
		select {
		case <-p.o.Cancel:
			p.o.Progress(Progress{Step: Cancelling, Txn: t})
			rctx, cancel := context.WithTimeout(ctx, p.o.RequestTimeout)
			if _, err := p.c.Cancel(rctx, t.ID); err != nil {
				p.o.Progress(Progress{Step: CancelFailed, Txn: t, Err: err})
			}
			cancel()
		case <-ctx.Done():
			return t, Unclear, &UnclearError{Why: Timeout, TxnID: t.ID, Err: ctx.Err()}
		case it, open := <-items:
			switch {
			case !open:
				why := errors.New("the event stream ended")
				if err := p.st.Err(); err != nil {
					why = fmt.Errorf("the event stream ended: %w", err)
				}
				p.st.Close()
				p.st = nil
				t, err = p.reconnect(ctx, t, why)
			case it.Err != nil:
				p.o.Progress(Progress{Step: UndecodableEvent, Txn: t, Item: it, Err: it.Err})
				t, err = p.lookUp(ctx, t)
			case it.Event.Txn != nil && it.Event.Txn.ID == t.ID:
				t = *it.Event.Txn
			default:
				continue
			}
			if err != nil {
				return t, Unclear, err
			}
		}
		if t.State != last {
			last = t.State
			p.o.Progress(Progress{Step: Changed, Txn: t})
		}
	}
	return t, Final, nil
}

// get reads the payment's record, bounded by RequestTimeout.
func (p *payer) get(ctx context.Context, id string) (Txn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.RequestTimeout)
	defer cancel()
	return p.c.Payment(ctx, id)
}

// retryable reports a look-up worth repeating: no answer, or the daemon
// not ready yet (starting or stopping).
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code == http.StatusServiceUnavailable
	}
	return !Answered(err)
}

// lookUp reads the record while the event stream still runs; a lost
// answer turns into a reconnect.
func (p *payer) lookUp(ctx context.Context, t Txn) (Txn, error) {
	nt, err := p.get(ctx, t.ID)
	switch {
	case err == nil:
		return nt, nil
	case ctx.Err() != nil:
		return t, &UnclearError{Why: Timeout, TxnID: t.ID, Err: ctx.Err()}
	case !retryable(err):
		return t, &UnclearError{Why: LookUpFailed, TxnID: t.ID, Err: err}
	}
	p.st.Close()
	p.st = nil
	return p.reconnect(ctx, t, err)
}

// reconnect finds the daemon again after losing it: subscribe (so that
// nothing after the look-up is missed), then read the record; repeated
// with a doubling pause for up to ReconnectWindow or until ctx ends.
func (p *payer) reconnect(ctx context.Context, t Txn, why error) (Txn, error) {
	p.o.Progress(Progress{Step: LostContact, Txn: t, Err: why})
	wctx, cancel := context.WithTimeout(ctx, p.o.ReconnectWindow)
	defer cancel()
	var err error
	for wait := p.o.RetryFirst; ; wait = min(2*wait, p.o.RetryMax) {
		var st *Stream
		if st, err = p.c.Events(ctx, wctx); err == nil {
			var nt Txn
			if nt, err = p.get(wctx, t.ID); err == nil {
				p.o.Progress(Progress{Step: Reconnected, Txn: nt})
				p.st = st
				return nt, nil
			}
			st.Close()
			if !retryable(err) {
				return t, &UnclearError{Why: LookUpFailed, TxnID: t.ID, Err: err}
			}
		}
		if !sleepCtx(wctx, wait) {
			break
		}
	}
	return t, &UnclearError{Why: Lost, TxnID: t.ID, Err: err}
}

// sleepCtx waits d, or until ctx ends (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
