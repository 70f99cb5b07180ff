package mobypay

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

func sockopt(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// TestServerProbesSessionWhileNewcomerHeld: a newcomer from the proven
// session's host sets the short keepalive and TCP_USER_TIMEOUT on the
// session, so that a dead POS (its kernel answers RST, or nothing) ends
// within seconds; once nothing is pending the normal keepalive is back.
func TestServerProbesSessionWhileNewcomerHeld(t *testing.T) {
	const pendingTimeout = 200 * time.Millisecond
	srv, rec := startServer(t, ServerConfig{PendingTimeout: pendingTimeout})
	provenPOS(t, srv, rec)
	srv.mu.Lock()
	sc := srv.sess.conn
	srv.mu.Unlock()
	check := func(when string, userTimeout, idle int) {
		t.Helper()
		if ut, ki := sockopt(t, sc, tcpUserTimeout), sockopt(t, sc, syscall.TCP_KEEPIDLE); ut != userTimeout || ki != idle {
			t.Errorf("%s: TCP_USER_TIMEOUT %d ms, TCP_KEEPIDLE %d s; want %d, %d", when, ut, ki, userTimeout, idle)
		}
	}
	check("before", 0, 10)
	nc := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	barrier(t, srv)
	check("newcomer held", int(probeUserTimeout/time.Millisecond), int(probeIdle/time.Second))
	mobypaytest.ExpectClosed(t, nc) // not proven in time; closed after the server forgot it
	check("nothing pending", 0, 10)
}
