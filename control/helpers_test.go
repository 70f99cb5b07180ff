package control

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// daemon is a control API on a unix socket that a test scripts: it can
// die with everything open and come back on the same path, every way a
// daemon can fail a client following a payment.
type daemon struct {
	t    *testing.T
	sock string

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener

	subs    chan chan<- string // each new event subscriber's feed
	keys    chan string        // the Idempotency-Key of each POST /v1/payments
	gets    chan string        // the id of each GET /v1/payments/{id}, once answered
	cancels chan string        // the id of each cancel
}

func newDaemon(t *testing.T) *daemon {
	d := &daemon{t: t, sock: filepath.Join(t.TempDir(), "k.sock"),
		subs: make(chan chan<- string, 16), keys: make(chan string, 16),
		gets: make(chan string, 16), cancels: make(chan string, 16)}
	t.Cleanup(d.die)
	return d
}

// up serves routes, plus the event stream and cancel unless given.
func (d *daemon) up(routes map[string]http.HandlerFunc) {
	d.t.Helper()
	all := map[string]http.HandlerFunc{
		"GET /v1/events": d.events,
		"POST /v1/payments/{id}/cancel": func(w http.ResponseWriter, r *http.Request) {
			d.cancels <- r.PathValue("id")
			answerJSON(w, http.StatusOK, txn("TXN1", payment.CancelRequested, payment.VendNone))
		},
	}
	for p, h := range routes {
		all[p] = h
	}
	mux := http.NewServeMux()
	for p, h := range all {
		mux.HandleFunc(p, h)
	}
	ln, err := net.Listen("unix", d.sock)
	if err != nil {
		d.t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	d.mu.Lock()
	d.srv, d.ln = srv, ln
	d.mu.Unlock()
	go srv.Serve(ln)
}

// die closes the listener and every connection at once.
func (d *daemon) die() {
	d.mu.Lock()
	srv := d.srv
	d.srv = nil
	d.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// stopListening closes the listener only: open connections go on.
func (d *daemon) stopListening() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ln.Close()
}

func (d *daemon) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	feed := make(chan string, 16)
	d.subs <- feed
	for {
		select {
		case <-r.Context().Done():
			return
		case s := <-feed:
			io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
	}
}

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

// post answers POST /v1/payments with code and v, after noting the key.
func (d *daemon) post(code int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		d.keys <- r.Header.Get(HeaderIdempotencyKey)
		answerJSON(w, code, v)
	}
}

// postThenDie takes the request and dies before answering it.
func (d *daemon) postThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	d.die()
	d.keys <- r.Header.Get(HeaderIdempotencyKey)
}

// acceptThenDie answers 201 with an acked payment, then dies.
func (d *daemon) acceptThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	answerJSON(w, http.StatusCreated, txn("TXN1", payment.Acked, payment.VendNone))
	d.die()
	d.keys <- r.Header.Get(HeaderIdempotencyKey)
}

func (d *daemon) get(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		answerJSON(w, http.StatusOK, v)
		d.gets <- r.PathValue("id")
	}
}

// answerJSON writes v whole, with a Content-Length, so that an answer
// followed by die arrives.
func answerJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
	w.(http.Flusher).Flush()
}

func txn(id string, s payment.State, v payment.Vend) Txn {
	return Txn{ID: id, Provider: "mobypay", Mode: "card", Amount: 1250, State: s, Vend: v}
}

func paymentEvent(t Txn) string {
	b, _ := json.Marshal(Event{Kind: "payment", Txn: &t})
	return "event: payment\ndata: " + string(b) + "\n\n"
}

type payResult struct {
	txn   Txn
	out   Outcome
	err   error
	steps []Progress
}

// payInBackground runs PayAndWait against d; the steps are collected
// from PayAndWait's own goroutine, so reading them after it returns
// needs no lock. Each step is also sent on seen, if given.
func payInBackground(d *daemon, ctx context.Context, opts PayOptions, seen ...chan<- Step) <-chan payResult {
	ch := make(chan payResult, 1)
	go func() {
		var r payResult
		opts.Progress = func(p Progress) {
			r.steps = append(r.steps, p)
			for _, c := range seen {
				c <- p.Step
			}
		}
		r.txn, r.out, r.err = NewClient(d.sock).PayAndWait(ctx, PayRequest{Amount: "12.50", Mode: "card"}, opts)
		ch <- r
	}()
	return ch
}

func (r payResult) stepped(s Step) bool {
	for _, p := range r.steps {
		if p.Step == s {
			return true
		}
	}
	return false
}
