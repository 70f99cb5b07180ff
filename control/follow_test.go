package control_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/control/controltest"
	"github.com/kioskd/kioskd/payment"
)

// next waits for the next value on ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

type payResult struct {
	txn   control.Txn
	out   control.Outcome
	err   error
	steps []control.Progress
}

// payInBackground runs PayAndWait against d; the steps are collected
// from PayAndWait's own goroutine, so reading them after it returns
// needs no lock. Each step is also sent on seen, if given.
func payInBackground(d *controltest.Daemon, ctx context.Context, opts control.PayOptions, seen ...chan<- control.Step) <-chan payResult {
	ch := make(chan payResult, 1)
	go func() {
		var r payResult
		opts.Progress = func(p control.Progress) {
			r.steps = append(r.steps, p)
			for _, c := range seen {
				c <- p.Step
			}
		}
		r.txn, r.out, r.err = control.NewClient(d.Socket()).PayAndWait(ctx, control.PayRequest{Amount: "12.50", Mode: "card"}, opts)
		ch <- r
	}()
	return ch
}

func (r payResult) stepped(s control.Step) bool {
	for _, p := range r.steps {
		if p.Step == s {
			return true
		}
	}
	return false
}

func wait(t *testing.T, ch <-chan payResult) payResult {
	t.Helper()
	return next(t, ch, "end of PayAndWait")
}

// A payment followed through its events to the outcome; another
// payment's events are not taken for it.
func TestPayAndWaitFollowsEvents(t *testing.T) {
	t.Parallel()
	d := controltest.New(t)
	d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
	res := payInBackground(d, context.Background(), control.PayOptions{})
	feed := d.Subscriber()
	if k := d.WaitKey(); k != "" {
		t.Errorf("Idempotency-Key %q sent without a key", k)
	}
	feed.Payment(controltest.Txn("TXN9", payment.Declined, payment.VendNone))
	feed.Payment(controltest.Txn("TXN1", payment.Approved, payment.VendReleasing))
	feed.Payment(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))
	r := wait(t, res)
	if r.out != control.Final || r.err != nil || r.txn.ID != "TXN1" || r.txn.Vend != payment.VendReleased {
		t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
	}
	if len(r.steps) != 2 || r.steps[0].Step != control.Accepted || r.steps[0].Existing || r.steps[1].Step != control.Changed || r.steps[1].Txn.State != payment.Approved {
		t.Errorf("steps %+v", r.steps)
	}
}

// The three ways of no payment at all, told apart.
func TestPayAndWaitNoPayment(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusServiceUnavailable, control.Error{Error: "payment: not ready"})})
		r := wait(t, payInBackground(d, context.Background(), control.PayOptions{}))
		var ae *control.APIError
		if r.out != control.Refused || !errors.As(r.err, &ae) || ae.Code != http.StatusServiceUnavailable {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		t.Parallel()
		r := wait(t, payInBackground(controltest.New(t), context.Background(), control.PayOptions{}))
		var na *control.NoAnswerError
		if r.out != control.NotAsked || !errors.As(r.err, &na) {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
	t.Run("not sent", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"GET /v1/events": func(w http.ResponseWriter, r *http.Request) {
			d.StopListening() // this stream goes on; the request cannot connect
			d.Events(w, r)
		}})
		r := wait(t, payInBackground(d, context.Background(), control.PayOptions{Key: "ORDER-1"}))
		if r.out != control.NotSent || !control.SentNothing(r.err) {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
}

// A request that got no answer: without a key its outcome is unclear;
// with one it is asked again once the daemon is back, and the payment
// already made for the key is followed.
func TestPayAndWaitLostAnswer(t *testing.T) {
	t.Parallel()
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.PostThenDie})
		r := wait(t, payInBackground(d, context.Background(), control.PayOptions{}))
		var ue *control.UnclearError
		if r.out != control.Unclear || !errors.As(r.err, &ue) || ue.Why != control.NoAnswer || ue.TxnID != "" || r.txn.ID != "" {
			t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
		}
	})
	t.Run("key", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.PostThenDie})
		res := payInBackground(d, context.Background(), control.PayOptions{Key: "ORDER-7", RetryFirst: time.Millisecond})
		if k := d.WaitKey(); k != "ORDER-7" {
			t.Fatalf("key %q", k)
		}
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusOK, controltest.Txn("TXN1", payment.Approved, payment.VendReleased))})
		if k := d.WaitKey(); k != "ORDER-7" {
			t.Fatalf("repeated key %q", k)
		}
		r := wait(t, res)
		if r.out != control.Final || r.err != nil || !r.stepped(control.Retrying) || !r.steps[len(r.steps)-1].Existing {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
	t.Run("key, refused again", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.PostThenDie})
		res := payInBackground(d, context.Background(), control.PayOptions{Key: "ORDER-2", RetryFirst: time.Millisecond})
		d.WaitKey()
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusServiceUnavailable, control.Error{Error: "pos not connected"})})
		r := wait(t, res)
		var ue *control.UnclearError
		if r.out != control.Unclear || !errors.As(r.err, &ue) || ue.Why != control.RetryRefused {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
}

// The daemon dies after accepting: PayAndWait looks the payment up once
// it is back and follows it on; gone for good, it ends Unclear after the
// reconnect window with the last known record.
func TestPayAndWaitReconnects(t *testing.T) {
	t.Parallel()
	t.Run("back, still open", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.AcceptThenDie})
		res := payInBackground(d, context.Background(), control.PayOptions{RetryFirst: time.Millisecond})
		d.Subscriber()
		d.WaitKey()
		d.Up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": d.Get(controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
		feed := d.Subscriber()
		if id := d.WaitGet(); id != "TXN1" {
			t.Fatalf("looked up %q", id)
		}
		feed.Payment(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))
		r := wait(t, res)
		if r.out != control.Final || r.err != nil || !r.stepped(control.LostContact) || !r.stepped(control.Reconnected) {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
	t.Run("gone", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.AcceptThenDie})
		r := wait(t, payInBackground(d, context.Background(), control.PayOptions{ReconnectWindow: 200 * time.Millisecond, RetryFirst: time.Millisecond}))
		var ue *control.UnclearError
		if r.out != control.Unclear || !errors.As(r.err, &ue) || ue.Why != control.Lost || ue.TxnID != "TXN1" || r.txn.State != payment.Acked {
			t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
		}
	})
	t.Run("undecodable record", func(t *testing.T) {
		t.Parallel()
		d := controltest.New(t)
		d.Up(map[string]http.HandlerFunc{
			"POST /v1/payments":     d.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone)),
			"GET /v1/payments/{id}": d.Get(map[string]string{"txn_id": "TXN1", "paid_amount": "-x"}),
		})
		res := payInBackground(d, context.Background(), control.PayOptions{})
		feed := d.Subscriber()
		d.WaitKey()
		feed.Event("payment", `{"kind":"payment","txn":{"txn_id":"TXN1","paid_amount":"-x"}}`)
		r := wait(t, res)
		var ue *control.UnclearError
		var de *control.DecodeError
		if r.out != control.Unclear || !errors.As(r.err, &ue) || ue.Why != control.LookUpFailed || !errors.As(r.err, &de) || !r.stepped(control.UndecodableEvent) {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
}

// Cancel asks the daemon to cancel and goes on waiting for the outcome.
func TestPayAndWaitCancel(t *testing.T) {
	t.Parallel()
	d := controltest.New(t)
	d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
	cancels := make(chan struct{}, 1)
	res := payInBackground(d, context.Background(), control.PayOptions{Cancel: cancels})
	feed := d.Subscriber()
	d.WaitKey()
	cancels <- struct{}{}
	if id := d.WaitCancel(); id != "TXN1" {
		t.Fatalf("cancelled %q", id)
	}
	feed.Payment(controltest.Txn("TXN1", payment.CancelRequested, payment.VendNone))
	feed.Payment(controltest.Txn("TXN1", payment.Cancelled, payment.VendNone))
	r := wait(t, res)
	if r.out != control.Final || r.err != nil || r.txn.State != payment.Cancelled || !r.stepped(control.Cancelling) {
		t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
	}
}

// ctx ending while the payment is open is Unclear with the last known
// record, and never a cancel.
func TestPayAndWaitTimeout(t *testing.T) {
	t.Parallel()
	d := controltest.New(t)
	d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	seen := make(chan control.Step, 16)
	res := payInBackground(d, ctx, control.PayOptions{}, seen)
	if s := next(t, seen, "step"); s != control.Accepted {
		t.Fatalf("first step %v", s)
	}
	stop()
	r := wait(t, res)
	var ue *control.UnclearError
	if r.out != control.Unclear || !errors.As(r.err, &ue) || ue.Why != control.Timeout || !errors.Is(r.err, context.Canceled) || r.txn.State != payment.Acked {
		t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
	}
	if ids := d.Cancels(); len(ids) != 0 {
		t.Errorf("%v cancelled on timeout", ids)
	}
}
