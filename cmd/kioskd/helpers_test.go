package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// fakeKioskd is a control API on a real unix socket that a test scripts
// request by request: it can stop answering, die with everything open,
// and come back on the same path, which is every way the daemon can fail
// a `kioskd pay` that is following a payment.
type fakeKioskd struct {
	t    *testing.T
	sock string

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener

	subs    chan chan<- string // each new event subscriber's feed
	keys    chan string        // the Idempotency-Key of each POST /v1/payments
	gets    chan string        // the id of each GET /v1/payments/{id}, once answered
	cancels atomic.Int32
}

func newFakeKioskd(t *testing.T) *fakeKioskd {
	f := &fakeKioskd{
		t: t, sock: filepath.Join(t.TempDir(), "k.sock"),
		subs: make(chan chan<- string, 16), keys: make(chan string, 16), gets: make(chan string, 16),
	}
	t.Cleanup(f.die)
	return f
}

// up starts a daemon on the socket with the test's routes, plus the event
// stream and cancel (every test needs them) unless the test has its own.
func (f *fakeKioskd) up(routes map[string]http.HandlerFunc) {
	f.t.Helper()
	mux := http.NewServeMux()
	all := map[string]http.HandlerFunc{
		"GET /v1/events": f.events,
		"POST /v1/payments/{id}/cancel": func(w http.ResponseWriter, r *http.Request) {
			f.cancels.Add(1)
			answer(w, http.StatusOK, fakeTxn(r.PathValue("id"), payment.CancelRequested, payment.VendNone))
		},
	}
	for pattern, h := range routes {
		all[pattern] = h
	}
	for pattern, h := range all {
		mux.HandleFunc(pattern, h)
	}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	f.mu.Lock()
	f.srv, f.ln = srv, ln
	f.mu.Unlock()
	go srv.Serve(ln)
}

// die is the daemon killed: the listener and every connection close at
// once, whatever they were doing, and the socket file goes away.
func (f *fakeKioskd) die() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// stopListening closes the listener only: open connections go on.
func (f *fakeKioskd) stopListening() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ln.Close()
}

func (f *fakeKioskd) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	feed := make(chan string, 16)
	f.subs <- feed
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

// subscriber waits for the next client to open the event stream.
func (f *fakeKioskd) subscriber() chan<- string {
	f.t.Helper()
	select {
	case feed := <-f.subs:
		return feed
	case <-time.After(10 * time.Second):
		f.t.Fatal("nobody subscribed to the event stream")
	}
	return nil
}

func (f *fakeKioskd) waitKey() string {
	f.t.Helper()
	select {
	case k := <-f.keys:
		return k
	case <-time.After(10 * time.Second):
		f.t.Fatal("no payment request")
	}
	return ""
}

func (f *fakeKioskd) waitGet() string {
	f.t.Helper()
	select {
	case id := <-f.gets:
		return id
	case <-time.After(10 * time.Second):
		f.t.Fatal("no look-up")
	}
	return ""
}

// post answers POST /v1/payments with code and v, after noting the key.
func (f *fakeKioskd) post(code int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f.keys <- r.Header.Get("Idempotency-Key")
		answer(w, code, v)
	}
}

// postThenDie creates the payment and dies before it can answer.
func (f *fakeKioskd) postThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	f.die()
	f.keys <- r.Header.Get("Idempotency-Key")
}

// acceptThenDie answers 201 with an acked payment, then dies.
func (f *fakeKioskd) acceptThenDie(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	answer(w, http.StatusCreated, fakeTxn("TXN1", payment.Acked, payment.VendNone))
	f.die()
	f.keys <- r.Header.Get("Idempotency-Key")
}

// get answers GET /v1/payments/{id} with v.
func (f *fakeKioskd) get(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK, v)
		f.gets <- r.PathValue("id")
	}
}

// answer writes v with a Content-Length, so that an answer followed by
// die arrives whole.
func answer(w http.ResponseWriter, code int, v any) {
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

func fakeTxn(id string, s payment.State, v payment.Vend) payment.Txn {
	return payment.Txn{ID: id, Provider: "mobypay", Mode: "card", Amount: 1250, State: s, Vend: v}
}

func sse(kind, data string) string { return "event: " + kind + "\ndata: " + data + "\n\n" }

func paymentEvent(t payment.Txn) string {
	b, _ := json.Marshal(payment.Event{Kind: "payment", Txn: &t})
	return sse("payment", string(b))
}

type payResult struct {
	code           int
	stdout, stderr string
}

// startPay runs kioskd pay in-process in the background.
func startPay(args ...string) <-chan payResult {
	ch := make(chan payResult, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(append([]string{"pay"}, args...), strings.NewReader(""), &out, &errb)
		ch <- payResult{code, out.String(), errb.String()}
	}()
	return ch
}

func waitPay(t *testing.T, ch <-chan payResult) payResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("kioskd pay did not exit")
	}
	return payResult{}
}

func (r payResult) check(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d", r.code, code)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// stuckWriter blocks every Write until release is closed, like a serial
// console nobody drains (flow control held, a hung getty).
type stuckWriter struct {
	release chan struct{}
	mu      sync.Mutex
	out     bytes.Buffer
}

func newStuckWriter() *stuckWriter { return &stuckWriter{release: make(chan struct{})} }

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func (w *stuckWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// testBootID is the kernel's id of this boot, as the crash guard records
// it, so that a test can leave a record of unclean starts behind.
func testBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

func readSim(t *testing.T, k *kiosk, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "data", "sim", name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitSim waits until a file of the sim board contains want. It polls:
// the daemon runs behind serve with the sim board built inside it, and
// no seam hands the simulated printer's pages out; the file is the
// interface README documents. The ticker bounds the work and the
// deadline the wait (board/sim's own tests wait on the page itself).
func waitSim(t *testing.T, k *kiosk, name, want string) string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s := readSim(t, k, name)
		if strings.Contains(s, want) {
			return s
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s never contained %q:\n%s", name, want, s)
		case <-tick.C:
		}
	}
}
