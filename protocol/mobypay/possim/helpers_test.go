package possim

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// The harness: the simulator against the kiosk's real mobypay.Server, or
// against a bare listener, over loopback TCP. Tests synchronise on the
// handler's and the simulator's events, never on sleeps. It mirrors the
// server harness in mobypay's own tests, which cannot import this package.

var srvSecret = []byte("server-test-secret")

const srvWait = 5 * time.Second // bound on any single wait

type lateMsg struct {
	m   mobypay.Message
	err error
}

type connEvent struct {
	s    mobypay.ConnState
	peer string
}

// recHandler records every handler call on a channel.
type recHandler struct {
	msgs   chan mobypay.Message
	late   chan lateMsg
	states chan connEvent
}

func (r *recHandler) Message(m *mobypay.Message)              { r.msgs <- *m }
func (r *recHandler) Late(m *mobypay.Message, err error)      { r.late <- lateMsg{*m, err} }
func (r *recHandler) ConnState(s mobypay.ConnState, p string) { r.states <- connEvent{s, p} }

// startServer runs a server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, cfg mobypay.ServerConfig) (*mobypay.Server, *recHandler) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	rec := &recHandler{make(chan mobypay.Message, 256), make(chan lateMsg, 256), make(chan connEvent, 256)}
	srv, err := mobypay.NewServer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context()) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(srvWait):
			t.Errorf("Serve did not return")
		}
	})
	return srv, rec
}

// startSim runs a simulator until the test ends and returns its events.
func startSim(t *testing.T, cfg Config) <-chan Event {
	t.Helper()
	ctx := t.Context()
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	events := make(chan Event, 256)
	cfg.OnEvent = func(e Event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(srvWait):
			t.Errorf("Run did not return")
		}
	})
	return events
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(srvWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// awaitSim skips simulator events until one matches.
func awaitSim(t *testing.T, ch <-chan Event, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(srvWait)
	for {
		select {
		case e := <-ch:
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for simulator event: %s", what)
		}
	}
}

func simKind(k EventKind) func(Event) bool {
	return func(e Event) bool { return e.Kind == k }
}

// expectNothing fails if anything is queued on ch now. It is only used
// after a later event proved that the server has passed the point where
// the unwanted value would have been delivered.
func expectNothing[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

func awaitState(t *testing.T, rec *recHandler, want mobypay.ConnState) connEvent {
	t.Helper()
	ev := await(t, rec.states, "ConnState "+want.String())
	if ev.s != want {
		t.Fatalf("ConnState %v (%s), want %v", ev.s, ev.peer, want)
	}
	return ev
}

// awaitMsg waits for the next delivered message and checks its type,
// status and txn_id.
func awaitMsg(t *testing.T, rec *recHandler, typ, status, txn string) mobypay.Message {
	t.Helper()
	m := await(t, rec.msgs, typ+" "+status)
	if m.Type != typ || m.Status != status || m.TxnID != txn {
		t.Fatalf("got %s %s %s, want %s %s %s\n%s", m.Type, m.Status, m.TxnID, typ, status, txn, m.Payload)
	}
	return m
}

// kiosk sends the kiosk's messages through a server (srv), or builds them
// for a raw connection (srv nil).
type kiosk struct {
	t     *testing.T
	srv   *mobypay.Server
	codec *mobypay.Codec
}

func newKiosk(t *testing.T, srv *mobypay.Server, secret []byte) *kiosk {
	return &kiosk{t, srv, mobypay.NewCodec(secret)}
}

func (k *kiosk) header(txn string) mobypay.Header {
	return mobypay.Header{TxnID: txn, KioskID: "KIOSK001", Nonce: rand.Text(), Timestamp: time.Now().UnixMilli()}
}

func (k *kiosk) send(frame []byte) {
	k.t.Helper()
	if err := k.srv.Send(frame); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kiosk) request(txn string, sen int64, mode string) {
	k.t.Helper()
	f, err := k.codec.AppendTransactionRequest(nil, k.header(txn), sen, mode)
	if err != nil {
		k.t.Fatal(err)
	}
	k.send(f)
}

func (k *kiosk) selectPlan(txn, plan string) {
	k.t.Helper()
	k.send(k.codec.AppendPlanSelection(nil, k.header(txn), plan))
}

func (k *kiosk) cancel(txn string) {
	k.t.Helper()
	k.send(k.codec.AppendCancel(nil, k.header(txn)))
}

// dial opens a raw client connection to addr.
func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: srvWait}
	c, err := d.DialContext(t.Context(), "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads until the server closes c, which must happen before
// the deadline.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(srvWait))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %s", srvWait)
		}
		return
	}
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(srvWait))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}
