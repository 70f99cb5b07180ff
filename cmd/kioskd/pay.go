package main

// kioskd pay: ask the daemon for a payment and follow it to its outcome, through lost contact.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// How kioskd pay keeps in touch with the daemon. Variables so that tests
// can shorten them.
var (
	// requestTimeout bounds one look-up (and the event stream's first
	// answer) once pay is following a payment. A payment request itself
	// is bounded only by -timeout: the daemon may be waiting on a
	// payment host before it answers.
	requestTimeout = 10 * time.Second
	// reconnectWindow is how long pay keeps trying to reach the daemon
	// again after losing it (or -timeout, whichever ends first), asking
	// at retryFirst, doubling up to retryMax.
	reconnectWindow = 30 * time.Second
	retryFirst      = 100 * time.Millisecond
	retryMax        = 2 * time.Second
)

// defaultPayTimeout is longer than the longest payment the default
// config allows (BNPL and DuitNow QR: 15 s to the ack, 5 min to the
// result, then up to 30 s of cancel grace and 30 s of reconnect grace),
// so that on a healthy kiosk pay always sees the daemon's own outcome.
const defaultPayTimeout = 10 * time.Minute

// checkKey applies the control API's rule for an Idempotency-Key: 1 to
// 64 printable ASCII characters. Leading and trailing spaces are refused
// too, since HTTP would drop them.
func checkKey(k string) error {
	if len(k) < 1 || len(k) > 64 || strings.TrimSpace(k) != k {
		return fmt.Errorf("-key %q: want 1 to 64 printable ASCII characters, e.g. the order id", k)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return fmt.Errorf("-key %q: want 1 to 64 printable ASCII characters, e.g. the order id", k)
		}
	}
	return nil
}

// payer follows one kioskd pay to its outcome.
type payer struct {
	e        *env
	c        *control.Client
	progress io.Writer
	asJSON   bool
	key      string
	timeout  time.Duration
	st       *control.Stream // nil while the daemon is out of reach
}

func cmdPay(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	amount := fs.String("amount", "", "amount in RM, e.g. 12.50")
	mode := fs.String("mode", "card", "card, bnpl, duitnow_qr or ipp")
	plan := fs.String("plan", "", "IPP plan to choose when offered")
	provider := fs.String("provider", "", "payment provider (default mobypay)")
	key := fs.String("key", "", "idempotency key, e.g. the controller's order id: asking again with the same key returns the payment already made instead of making a second one, and lets pay repeat a request that got no answer")
	timeout := fs.Duration("timeout", defaultPayTimeout, "give up waiting after this long (0: no limit) and exit 3; the payment is not cancelled")
	asJSON := fs.Bool("json", false, "print the final transaction as JSON")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *amount == "" || *timeout < 0 {
		fs.Usage()
		return exitUsage
	}
	if _, err := payment.ParseAmount(*amount); err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	if *key != "" {
		if err := checkKey(*key); err != nil {
			fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
			return exitUsage
		}
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if *timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), *timeout)
	}
	defer cancel()
	p := &payer{e: e, c: c, progress: e.stdout, asJSON: *asJSON, key: *key, timeout: *timeout}
	if *asJSON {
		p.progress = e.stderr
	}
	defer func() { p.st.Close() }()
	// Subscribe before asking, so no step of the payment is missed.
	if p.st, err = c.Events(ctx, ctx); err != nil {
		return clientFail(e, err) // nothing was asked: safe to retry
	}
	t, code, ok := p.create(ctx, control.PayRequest{Amount: *amount, Mode: *mode, PlanID: *plan, Provider: *provider})
	if !ok {
		return code
	}
	return p.follow(ctx, t)
}

// create asks for the payment. Until the daemon answers with a txn id
// the outcome of a request that got no answer is unknown (the daemon may
// have created the payment and sent it to the terminal): only a request
// that was never sent is reported as "not reachable" (exit 4, safe to
// retry). With -key the request is repeated, which the daemon answers
// with the payment already made; without it pay exits 3.
func (p *payer) create(ctx context.Context, req control.PayRequest) (payment.Txn, int, bool) {
	post := func(ctx context.Context) (payment.Txn, bool, error) {
		return p.c.Pay(ctx, req, p.key)
	}
	t, created, err := post(ctx)
	if err == nil {
		return p.accepted(t, created)
	}
	var ae *control.APIError
	var de *control.DecodeError
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(p.e.stderr, "kioskd: payment refused: %v\n", err)
		if ae.Code == http.StatusServiceUnavailable {
			return t, exitDeclined, false
		}
		return t, exitFail, false
	case errors.As(err, &de):
		return t, p.unreadable(de), false
	case control.SentNothing(err):
		fmt.Fprintf(p.e.stderr, "kioskd: payment refused: %v\n", err)
		return t, exitUnreachable, false
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("no answer within -timeout %s", p.timeout)
	}
	if p.key == "" {
		fmt.Fprintf(p.e.stderr, "kioskd: the payment request got no answer (%v). The daemon may have created the payment and sent it to the terminal: its outcome is unknown. Do not simply ask again: look it up with `kioskd journal`, and pay with -key ORDER_ID so that asking again is safe.\n", err)
		return t, exitUnclear, false
	}
	wctx, cancel := context.WithTimeout(ctx, reconnectWindow)
	defer cancel()
	if ctx.Err() == nil {
		fmt.Fprintf(p.e.stderr, "kioskd: the payment request got no answer (%v); asking again with the same key %q\n", err, p.key)
	}
	for wait := retryFirst; ctx.Err() == nil; wait = min(2*wait, retryMax) {
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
		t, created, err = post(wctx)
		if err == nil {
			return p.accepted(t, created)
		}
		if errors.As(err, &de) {
			return t, p.unreadable(de), false
		}
		if control.Answered(err) {
			fmt.Fprintf(p.e.stderr, "kioskd: asking again with key %q: payment refused: %v. The first request's outcome is unknown: look it up with `kioskd journal` before asking again.\n", p.key, err)
			return t, exitUnclear, false
		}
	}
	why := fmt.Sprintf("within %s", reconnectWindow)
	if ctx.Err() != nil {
		why = fmt.Sprintf("within -timeout %s", p.timeout)
	}
	fmt.Fprintf(p.e.stderr, "kioskd: no answer for key %q %s (%v). The payment may exist and may still complete: look it up with `kioskd journal`; asking again with `kioskd pay -key %s` and the same amount is safe.\n", p.key, why, err, p.key)
	return t, exitUnclear, false
}

// accepted reports the daemon's answer: a new payment, or the one
// already made with this key (which is followed the same way, and may
// already be over).
func (p *payer) accepted(t payment.Txn, created bool) (payment.Txn, int, bool) {
	if !created && p.key != "" {
		fmt.Fprintf(p.progress, "%s %s RM %s: %s (already made for key %q)\n", t.ID, t.Mode, t.Amount, t.State, p.key)
	} else {
		fmt.Fprintf(p.progress, "%s %s RM %s: %s\n", t.ID, t.Mode, t.Amount, t.State)
	}
	return t, 0, true
}

// unreadable reports a payment the daemon accepted with an answer this
// client cannot decode: it exists, its outcome is unknown here.
func (p *payer) unreadable(de *control.DecodeError) int {
	var head struct {
		ID string `json:"txn_id"`
	}
	json.Unmarshal(de.Raw, &head)
	id := head.ID
	if id == "" {
		id = "(no txn_id)"
	}
	fmt.Fprintf(p.e.stderr, "kioskd: the daemon accepted payment %s but its answer cannot be decoded: %v. The outcome is unknown: look it up with `kioskd journal` or `kioskd review`.\n", id, de.Err)
	return exitUnclear
}

// follow waits for the payment's outcome. From here on every failure
// exits 3 with the txn id and its last known state: the daemon has the
// payment, and it may still complete.
func (p *payer) follow(ctx context.Context, t payment.Txn) int {
	// Ctrl-C asks the kiosk to cancel, then waits for the outcome.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	last := t.State
	for !done(t) {
		var items <-chan control.StreamItem
		if p.st != nil {
			items = p.st.C
		}
		select {
		case <-sig:
			fmt.Fprintf(p.progress, "%s: cancelling\n", t.ID)
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			if _, err := p.c.Cancel(rctx, t.ID); err != nil {
				fmt.Fprintf(p.e.stderr, "kioskd: cancel: %v\n", err)
			}
			cancel()
		case <-ctx.Done():
			return p.unclear(t, fmt.Sprintf("no outcome within -timeout %s", p.timeout))
		case it, open := <-items:
			var code int
			var ok bool
			switch {
			case !open:
				why := "the event stream ended"
				if err := p.st.Err(); err != nil {
					why += ": " + err.Error()
				}
				p.st.Close()
				p.st = nil
				t, code, ok = p.reconnect(ctx, t, why)
			case it.Err != nil:
				about := ""
				if it.TxnID != "" {
					about = " about " + it.TxnID
				}
				fmt.Fprintf(p.e.stderr, "kioskd: cannot decode a %q event%s from the daemon: %v; looking %s up instead\n", it.Kind, about, it.Err, t.ID)
				t, code, ok = p.lookUp(ctx, t)
			case it.Event.Txn != nil && it.Event.Txn.ID == t.ID:
				t, ok = *it.Event.Txn, true
			default:
				continue
			}
			if !ok {
				return code
			}
		}
		if t.State != last {
			last = t.State
			line := fmt.Sprintf("%s: %s", t.ID, t.State)
			if t.State == payment.PlansOffered {
				ids := make([]string, len(t.Plans))
				for i, p := range t.Plans {
					ids[i] = p.ID
				}
				line += " (" + strings.Join(ids, ", ") + "); choose with: kioskd plan " + t.ID + " PLAN_ID"
			}
			fmt.Fprintln(p.progress, line)
		}
	}
	p.print(t)
	return payExit(t)
}

// get reads the payment's record, bounded by requestTimeout.
func (p *payer) get(ctx context.Context, id string) (payment.Txn, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return p.c.Payment(ctx, id)
}

// retryable reports a look-up worth repeating: no answer, or the daemon
// not ready yet (starting or stopping).
func retryable(err error) bool {
	var ae *control.APIError
	if errors.As(err, &ae) {
		return ae.Code == http.StatusServiceUnavailable
	}
	return !control.Answered(err)
}

// lookUp reads the record while the event stream still runs; a lost
// answer turns into a reconnect.
func (p *payer) lookUp(ctx context.Context, t payment.Txn) (payment.Txn, int, bool) {
	nt, err := p.get(ctx, t.ID)
	switch {
	case err == nil:
		return nt, 0, true
	case ctx.Err() != nil:
		return t, p.unclear(t, fmt.Sprintf("no outcome within -timeout %s", p.timeout)), false
	case !retryable(err):
		return t, p.unclear(t, fmt.Sprintf("%s cannot be looked up: %v", t.ID, err)), false
	}
	p.st.Close()
	p.st = nil
	return p.reconnect(ctx, t, err.Error())
}

// reconnect finds the daemon again after losing it: subscribe (so that
// nothing after the look-up is missed), then read the record; repeated
// with a doubling pause for up to reconnectWindow or -timeout.
func (p *payer) reconnect(ctx context.Context, t payment.Txn, why string) (payment.Txn, int, bool) {
	fmt.Fprintf(p.e.stderr, "kioskd: lost contact with the daemon (%s); looking %s up again\n", why, t.ID)
	wctx, cancel := context.WithTimeout(ctx, reconnectWindow)
	defer cancel()
	var err error
	for wait := retryFirst; ; wait = min(2*wait, retryMax) {
		var st *control.Stream
		if st, err = p.c.Events(ctx, wctx); err == nil {
			var nt payment.Txn
			if nt, err = p.get(wctx, t.ID); err == nil {
				fmt.Fprintf(p.e.stderr, "kioskd: reconnected; %s is %s\n", nt.ID, nt.State)
				p.st = st
				return nt, 0, true
			}
			st.Close()
			if !retryable(err) {
				return t, p.unclear(t, fmt.Sprintf("%s cannot be looked up: %v", t.ID, err)), false
			}
		}
		if !sleepCtx(wctx, wait) {
			break
		}
	}
	if ctx.Err() != nil {
		return t, p.unclear(t, fmt.Sprintf("no outcome within -timeout %s (the daemon did not answer again: %v)", p.timeout, err)), false
	}
	return t, p.unclear(t, fmt.Sprintf("the daemon did not answer again within %s: %v", reconnectWindow, err)), false
}

// unclear ends pay without an outcome: the last known record goes to
// stdout as a final one would, and stderr says what is not known.
func (p *payer) unclear(t payment.Txn, why string) int {
	fmt.Fprintf(p.e.stderr, "kioskd: %s; %s was last known as %s. The payment was not cancelled and may still complete: look it up with `kioskd journal` (stop it with `kioskd cancel %s`).\n", why, t.ID, t.State, t.ID)
	p.print(t)
	return exitUnclear
}

func (p *payer) print(t payment.Txn) {
	if p.asJSON {
		json.NewEncoder(p.e.stdout).Encode(t)
	} else {
		fmt.Fprintln(p.e.stdout, describe(t))
	}
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
