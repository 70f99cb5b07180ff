package controltest_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/control/controltest"
	"github.com/kioskd/kioskd/payment"
)

// A controller's test, as its author would write one: the daemon takes
// the payment and dies; restarted, it has it approved. The controller
// (here control.Client.PayAndWait) must find that out, not pay twice.
func TestDaemonRestart(t *testing.T) {
	t.Parallel()
	d := controltest.New(t)
	d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.AcceptThenDie})
	type result struct {
		txn control.Txn
		out control.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.txn, r.out, r.err = control.NewClient(d.Socket()).PayAndWait(context.Background(),
			control.PayRequest{Amount: "12.50", Mode: "card"},
			control.PayOptions{Key: "ORDER-1", RetryFirst: time.Millisecond})
		done <- r
	}()
	d.Subscriber()
	if k := d.WaitKey(); k != "ORDER-1" {
		t.Fatalf("Idempotency-Key %q", k)
	}
	d.Up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": d.Get(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))})
	d.Subscriber().Payment(controltest.Txn("TXN9", payment.Declined, payment.VendNone)) // not ours
	if id := d.WaitGet(); id != "TXN1" {
		t.Fatalf("looked up %q", id)
	}
	select {
	case r := <-done:
		if r.out != control.Final || r.err != nil || r.txn.State != payment.Approved {
			t.Fatalf("%v %v %+v", r.out, r.err, r.txn)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PayAndWait did not return")
	}
	if c := d.Cancels(); len(c) != 0 {
		t.Errorf("cancelled %v", c)
	}
}

// The handlers never wait for the test: requests nobody waited for yet
// are all there, in order.
func TestDaemonRecordsWithoutBlocking(t *testing.T) {
	t.Parallel()
	d := controltest.New(t)
	d.Up(map[string]http.HandlerFunc{"POST /v1/payments": d.Post(http.StatusServiceUnavailable, control.Error{Error: "payment: not ready"})})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket())
	}}}
	const n = 40
	for i := range n {
		req, _ := http.NewRequest("POST", "http://kioskd/v1/payments", strings.NewReader(`{}`))
		req.Header.Set(control.HeaderIdempotencyKey, "K"+strconv.Itoa(i))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for i := range n {
		if k := d.WaitKey(); k != "K"+strconv.Itoa(i) {
			t.Fatalf("key %d is %q", i, k)
		}
	}
}
