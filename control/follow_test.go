package control

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

func wait(t *testing.T, ch <-chan payResult) payResult {
	t.Helper()
	return next(t, ch, "end of PayAndWait")
}

// A payment followed through its events to the outcome; another
// payment's events are not taken for it.
func TestPayAndWaitFollowsEvents(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusCreated, txn("TXN1", payment.Acked, payment.VendNone))})
	res := payInBackground(d, context.Background(), PayOptions{})
	feed := next(t, d.subs, "subscriber")
	if k := next(t, d.keys, "payment request"); k != "" {
		t.Errorf("Idempotency-Key %q sent without a key", k)
	}
	feed <- paymentEvent(txn("TXN9", payment.Declined, payment.VendNone))
	feed <- paymentEvent(txn("TXN1", payment.Approved, payment.VendReleasing))
	feed <- paymentEvent(txn("TXN1", payment.Approved, payment.VendReleased))
	r := wait(t, res)
	if r.out != Final || r.err != nil || r.txn.ID != "TXN1" || r.txn.Vend != payment.VendReleased {
		t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
	}
	if len(r.steps) != 2 || r.steps[0].Step != Accepted || r.steps[0].Existing || r.steps[1].Step != Changed || r.steps[1].Txn.State != payment.Approved {
		t.Errorf("steps %+v", r.steps)
	}
}

// The three ways of no payment at all, told apart.
func TestPayAndWaitNoPayment(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusServiceUnavailable, Error{Error: "payment: not ready"})})
		r := wait(t, payInBackground(d, context.Background(), PayOptions{}))
		var ae *APIError
		if r.out != Refused || !errors.As(r.err, &ae) || ae.Code != http.StatusServiceUnavailable {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		t.Parallel()
		r := wait(t, payInBackground(newDaemon(t), context.Background(), PayOptions{}))
		var na *NoAnswerError
		if r.out != NotAsked || !errors.As(r.err, &na) {
			t.Fatalf("%v %v", r.out, r.err)
		}
	})
	t.Run("not sent", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"GET /v1/events": func(w http.ResponseWriter, r *http.Request) {
			d.stopListening() // this stream goes on; the request cannot connect
			d.events(w, r)
		}})
		r := wait(t, payInBackground(d, context.Background(), PayOptions{Key: "ORDER-1"}))
		if r.out != NotSent || !SentNothing(r.err) {
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
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.postThenDie})
		r := wait(t, payInBackground(d, context.Background(), PayOptions{}))
		var ue *UnclearError
		if r.out != Unclear || !errors.As(r.err, &ue) || ue.Why != NoAnswer || ue.TxnID != "" || r.txn.ID != "" {
			t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
		}
	})
	t.Run("key", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.postThenDie})
		res := payInBackground(d, context.Background(), PayOptions{Key: "ORDER-7", RetryFirst: time.Millisecond})
		if k := next(t, d.keys, "request"); k != "ORDER-7" {
			t.Fatalf("key %q", k)
		}
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusOK, txn("TXN1", payment.Approved, payment.VendReleased))})
		if k := next(t, d.keys, "repeated request"); k != "ORDER-7" {
			t.Fatalf("repeated key %q", k)
		}
		r := wait(t, res)
		if r.out != Final || r.err != nil || !r.stepped(Retrying) || !r.steps[len(r.steps)-1].Existing {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
	t.Run("key, refused again", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.postThenDie})
		res := payInBackground(d, context.Background(), PayOptions{Key: "ORDER-2", RetryFirst: time.Millisecond})
		next(t, d.keys, "request")
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusServiceUnavailable, Error{Error: "pos not connected"})})
		r := wait(t, res)
		var ue *UnclearError
		if r.out != Unclear || !errors.As(r.err, &ue) || ue.Why != RetryRefused {
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
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.acceptThenDie})
		res := payInBackground(d, context.Background(), PayOptions{RetryFirst: time.Millisecond})
		next(t, d.subs, "first subscriber")
		next(t, d.keys, "request")
		d.up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": d.get(txn("TXN1", payment.Acked, payment.VendNone))})
		feed := next(t, d.subs, "subscriber after the restart")
		if id := next(t, d.gets, "look-up"); id != "TXN1" {
			t.Fatalf("looked up %q", id)
		}
		feed <- paymentEvent(txn("TXN1", payment.Approved, payment.VendReleased))
		r := wait(t, res)
		if r.out != Final || r.err != nil || !r.stepped(LostContact) || !r.stepped(Reconnected) {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
	t.Run("gone", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.acceptThenDie})
		r := wait(t, payInBackground(d, context.Background(), PayOptions{ReconnectWindow: 200 * time.Millisecond, RetryFirst: time.Millisecond}))
		var ue *UnclearError
		if r.out != Unclear || !errors.As(r.err, &ue) || ue.Why != Lost || ue.TxnID != "TXN1" || r.txn.State != payment.Acked {
			t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
		}
	})
	t.Run("undecodable record", func(t *testing.T) {
		t.Parallel()
		d := newDaemon(t)
		d.up(map[string]http.HandlerFunc{
			"POST /v1/payments":     d.post(http.StatusCreated, txn("TXN1", payment.Acked, payment.VendNone)),
			"GET /v1/payments/{id}": d.get(map[string]string{"txn_id": "TXN1", "paid_amount": "-x"}),
		})
		res := payInBackground(d, context.Background(), PayOptions{})
		feed := next(t, d.subs, "subscriber")
		next(t, d.keys, "request")
		feed <- "event: payment\ndata: {\"kind\":\"payment\",\"txn\":{\"txn_id\":\"TXN1\",\"paid_amount\":\"-x\"}}\n\n"
		r := wait(t, res)
		var ue *UnclearError
		var de *DecodeError
		if r.out != Unclear || !errors.As(r.err, &ue) || ue.Why != LookUpFailed || !errors.As(r.err, &de) || !r.stepped(UndecodableEvent) {
			t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
		}
	})
}

// Cancel asks the daemon to cancel and goes on waiting for the outcome.
func TestPayAndWaitCancel(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusCreated, txn("TXN1", payment.Acked, payment.VendNone))})
	cancels := make(chan struct{}, 1)
	res := payInBackground(d, context.Background(), PayOptions{Cancel: cancels})
	feed := next(t, d.subs, "subscriber")
	next(t, d.keys, "request")
	cancels <- struct{}{}
	if id := next(t, d.cancels, "cancel"); id != "TXN1" {
		t.Fatalf("cancelled %q", id)
	}
	feed <- paymentEvent(txn("TXN1", payment.CancelRequested, payment.VendNone))
	feed <- paymentEvent(txn("TXN1", payment.Cancelled, payment.VendNone))
	r := wait(t, res)
	if r.out != Final || r.err != nil || r.txn.State != payment.Cancelled || !r.stepped(Cancelling) {
		t.Fatalf("%v %v %+v", r.out, r.err, r.steps)
	}
}

// ctx ending while the payment is open is Unclear with the last known
// record, and never a cancel.
func TestPayAndWaitTimeout(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	d.up(map[string]http.HandlerFunc{"POST /v1/payments": d.post(http.StatusCreated, txn("TXN1", payment.Acked, payment.VendNone))})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	seen := make(chan Step, 16)
	res := payInBackground(d, ctx, PayOptions{}, seen)
	if s := next(t, seen, "step"); s != Accepted {
		t.Fatalf("first step %v", s)
	}
	stop()
	r := wait(t, res)
	var ue *UnclearError
	if r.out != Unclear || !errors.As(r.err, &ue) || ue.Why != Timeout || !errors.Is(r.err, context.Canceled) || r.txn.State != payment.Acked {
		t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
	}
	select {
	case id := <-d.cancels:
		t.Errorf("%s cancelled on timeout", id)
	default:
	}
}
