// Package mobypaytest is the harness shared by the tests of mobypay and
// possim: a recording handler, bounded waits on its channels, the run of a
// server or simulator for the length of a test, and raw loopback clients.
//
// It does not import mobypay, on purpose: mobypay's own tests are in
// package mobypay, and a package they import may not import mobypay back.
// The handler is therefore generic over the message and state types, and
// what needs mobypay's types (the server's constructor, the kiosk's
// frames) stays in each package's helpers_test.go. It is imported only
// from _test.go files; kioskd does not link it.
package mobypaytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// Wait bounds any single wait of a test; nothing waits this long when the
// code is right.
const Wait = 5 * time.Second

// Secret is the shared secret the harnesses sign with.
var Secret = []byte("server-test-secret")

// LateMsg is one call of a handler's Late.
type LateMsg[M any] struct {
	Msg M
	Err error
}

// StateEvent is one call of a handler's ConnState.
type StateEvent[S any] struct {
	State S
	Peer  string
}

// Recorder is a mobypay.Handler (as Recorder[mobypay.Message,
// mobypay.ConnState]) that puts every call on a channel, so that tests
// wait on the server's own events rather than on time.
type Recorder[M, S any] struct {
	Msgs   chan M
	Lates  chan LateMsg[M]
	States chan StateEvent[S]
}

// NewRecorder returns a recorder whose channels buffer n calls each.
func NewRecorder[M, S any](n int) *Recorder[M, S] {
	return &Recorder[M, S]{make(chan M, n), make(chan LateMsg[M], n), make(chan StateEvent[S], n)}
}

func (r *Recorder[M, S]) Message(m *M)            { r.Msgs <- *m }
func (r *Recorder[M, S]) Late(m *M, err error)    { r.Lates <- LateMsg[M]{*m, err} }
func (r *Recorder[M, S]) ConnState(s S, p string) { r.States <- StateEvent[S]{s, p} }

// AwaitState waits for the next state change and checks it is want.
func AwaitState[S interface {
	comparable
	fmt.Stringer
}](t *testing.T, ch <-chan StateEvent[S], want S) StateEvent[S] {
	t.Helper()
	ev := Await(t, ch, "ConnState "+want.String())
	if ev.State != want {
		t.Fatalf("ConnState %v (%s), want %v", ev.State, ev.Peer, want)
	}
	return ev
}

// RunUntilEnd runs run with the test's context, which ends as the test
// does, and fails the test if run then errs or has not returned within
// Wait. what names run in the failure.
func RunUntilEnd(t *testing.T, what string, run func(context.Context) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run(t.Context()) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(Wait):
			t.Errorf("%s did not return", what)
		}
	})
}

// Await returns the next value on ch, or fails the test after Wait.
func Await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// AwaitMatch skips values on ch until one matches; the whole search is
// bounded by Wait.
func AwaitMatch[T any](t *testing.T, ch <-chan T, what string, match func(T) bool) T {
	t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case v := <-ch:
			if match(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// ExpectNothing fails if anything is queued on ch now. Use it only after a
// later event proved that the code has passed the point where the
// unwanted value would have been delivered.
func ExpectNothing[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

// Dial opens a raw client connection to addr, closed when the test ends,
// from the loopback address local if it is not empty (the test is skipped
// where that address cannot be used).
func Dial(t *testing.T, addr net.Addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: Wait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.DialContext(t.Context(), "tcp", addr.String())
	if err != nil {
		if local != "" {
			t.Skipf("cannot dial from %s: %v", local, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ExpectClosed reads until the peer closes c, which must happen within
// Wait. It returns how long that took.
func ExpectClosed(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(Wait))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %s", Wait)
		}
		return time.Since(start)
	}
}

// ExpectOpen checks that the peer leaves c open, sending nothing, for d.
func ExpectOpen(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection closed early: %v", err)
	}
	c.SetReadDeadline(time.Time{})
}

// Write writes s to c within Wait.
func Write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(Wait))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}
