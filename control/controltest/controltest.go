// Package controltest is a fake kioskd for tests of programs that speak
// its control API: a server on a real unix socket that the test scripts
// route by route. It can stop answering, die with connections open and
// come back on the same path, which is every way the daemon can fail a
// client that is following a payment. It feeds the event stream (GET
// /v1/events) by hand and records what it was asked: the Idempotency-Key
// of each POST /v1/payments, the id of each look-up and each cancel.
//
// kioskd's own CLI and the control package's client are tested against
// it, and so can be a machine controller written in Go: point its
// control.Client (or its own HTTP client) at Socket, script the daemon's
// answers, and check what the controller does when the answer is lost.
//
// Every Wait method fails the test after 10 seconds without the awaited
// request. The package is for tests only and is never linked into
// kioskd.
package controltest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// waitFor bounds every Wait.
const waitFor = 10 * time.Second

// Daemon is the fake kioskd. Its handlers never block on the test: what
// they record is kept until the test waits for it.
type Daemon struct {
	t    testing.TB
	sock string

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener

	subs    record[*Feed]  // each new event subscriber's feed
	keys    record[string] // the Idempotency-Key of each POST /v1/payments
	gets    record[string] // the id of each GET /v1/payments/{id}, once answered
	cancels record[string] // the id of each POST /v1/payments/{id}/cancel
}

// New makes a daemon on a socket in t's temporary directory; it is not
// up until Up, and dies when the test ends.
func New(t testing.TB) *Daemon {
	d := &Daemon{t: t, sock: filepath.Join(t.TempDir(), "k.sock")}
	t.Cleanup(d.Die)
	return d
}

// Socket is the path of the daemon's unix socket.
func (d *Daemon) Socket() string { return d.sock }

// Up starts the daemon on the socket with routes (patterns as for
// http.ServeMux), plus the event stream (Events) and a cancel that
// answers cancel_requested, unless routes has its own. After Die it
// starts a new daemon on the same path, as a restart does.
func (d *Daemon) Up(routes map[string]http.HandlerFunc) {
	d.t.Helper()
	all := map[string]http.HandlerFunc{
		"GET /v1/events": d.Events,
		"POST /v1/payments/{id}/cancel": func(w http.ResponseWriter, r *http.Request) {
			d.cancels.add(r.PathValue("id"))
			Answer(w, http.StatusOK, Txn(r.PathValue("id"), payment.CancelRequested, payment.VendNone))
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

// Die is the daemon killed: the listener and every connection close at
// once, whatever they were doing, and the socket file goes away. It may
// be called from a handler, and more than once.
func (d *Daemon) Die() {
	d.mu.Lock()
	srv := d.srv
	d.srv = nil
	d.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// StopListening closes the listener only: connections already open go
// on, new ones are refused. It may be called from a handler, after Up.
func (d *Daemon) StopListening() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ln.Close()
}

// Events is the handler of GET /v1/events that Up installs: it answers
// at once, as the daemon does, and then writes what the test sends on
// the subscriber's Feed until the client goes away.
func (d *Daemon) Events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	f := &Feed{c: make(chan string, 16), gone: make(chan struct{})}
	defer close(f.gone)
	d.subs.add(f)
	for {
		select {
		case <-r.Context().Done():
			return
		case s := <-f.c:
			io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
	}
}

// Subscriber waits for the next client to open the event stream.
func (d *Daemon) Subscriber() *Feed {
	d.t.Helper()
	return d.subs.next(d.t, "subscriber to the event stream")
}

// WaitKey waits for the next POST /v1/payments and returns its
// Idempotency-Key ("" when it had none).
func (d *Daemon) WaitKey() string {
	d.t.Helper()
	return d.keys.next(d.t, "payment request")
}

// WaitGet waits for the next GET /v1/payments/{id} answered by Get and
// returns the id.
func (d *Daemon) WaitGet() string {
	d.t.Helper()
	return d.gets.next(d.t, "look-up")
}

// WaitCancel waits for the next cancel taken by the default cancel
// route and returns the txn id.
func (d *Daemon) WaitCancel() string {
	d.t.Helper()
	return d.cancels.next(d.t, "cancel")
}

// Cancels is the txn id of every cancel the default cancel route took so
// far, waited for or not.
func (d *Daemon) Cancels() []string { return d.cancels.all() }

// RecordKey notes the Idempotency-Key of r for WaitKey, for a POST
// /v1/payments handler of the test's own.
func (d *Daemon) RecordKey(r *http.Request) {
	d.keys.add(r.Header.Get(control.HeaderIdempotencyKey))
}

// Post is a POST /v1/payments that answers code and v (see Answer),
// after noting the key.
func (d *Daemon) Post(code int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		d.RecordKey(r)
		Answer(w, code, v)
	}
}

// PostThenDie is a POST /v1/payments that takes the request and dies
// before answering it: the client cannot know whether a payment was
// made.
func (d *Daemon) PostThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	d.Die()
	d.RecordKey(r)
}

// AcceptThenDie is a POST /v1/payments that answers 201 with payment
// TXN1 acked (Txn("TXN1", payment.Acked, payment.VendNone)), then dies.
func (d *Daemon) AcceptThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	Answer(w, http.StatusCreated, Txn("TXN1", payment.Acked, payment.VendNone))
	d.Die()
	d.RecordKey(r)
}

// Get is a GET /v1/payments/{id} that answers v, then notes the id.
func (d *Daemon) Get(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		Answer(w, http.StatusOK, v)
		d.gets.add(r.PathValue("id"))
	}
}

// Answer writes v as JSON with code and a Content-Length, and flushes
// it, so that an answer followed by Die arrives whole. v may be a
// json.RawMessage, for an answer the client cannot decode.
func Answer(w http.ResponseWriter, code int, v any) {
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

// Txn is payment id: RM 12.50 by card through mobypay, in state s with
// vend v.
func Txn(id string, s payment.State, v payment.Vend) control.Txn {
	return control.Txn{ID: id, Provider: "mobypay", Mode: "card", Amount: 1250, State: s, Vend: v}
}

// Feed is one subscriber's event stream. Once the subscriber is gone,
// what is sent on it is dropped.
type Feed struct {
	c    chan string
	gone chan struct{}
}

// Event sends one event: kind is its name, data its data as written
// (it may be JSON the client cannot decode).
func (f *Feed) Event(kind, data string) {
	select {
	case f.c <- "event: " + kind + "\ndata: " + data + "\n\n":
	case <-f.gone:
	}
}

// Payment sends a "payment" event about t.
func (f *Feed) Payment(t control.Txn) {
	b, err := json.Marshal(control.Event{Kind: "payment", Txn: &t})
	if err != nil {
		panic(err)
	}
	f.Event("payment", string(b))
}

// record is what the handlers saw, in order: they add without waiting;
// the test takes each item once with next, or looks at all of them.
type record[T any] struct {
	mu      sync.Mutex
	items   []T
	taken   int
	changed chan struct{} // closed and replaced on each add
}

// wake is the channel the next add closes; r.mu is held.
func (r *record[T]) wake() chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
	close(r.wake())
	r.changed = nil
}

// next waits for the first item not yet taken.
func (r *record[T]) next(t testing.TB, what string) T {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if r.taken < len(r.items) {
			v := r.items[r.taken]
			r.taken++
			r.mu.Unlock()
			return v
		}
		changed := r.wake()
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s within %s", what, waitFor)
		}
	}
}

func (r *record[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}
