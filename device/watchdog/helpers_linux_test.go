package watchdog

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenNotify stands in for systemd: a unixgram socket at addr.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvNotify takes the next queued notification without waiting. A
// datagram to a local unix socket is queued before the sender's write
// returns, so what Notify (or a tick, after synctest.Wait) sent is there.
// Not waiting matters inside a bubble: a goroutine blocked in a socket
// read is not durably blocked, and a read deadline would be on the
// bubble's clock.
func recvNotify(t *testing.T, c *net.UnixConn) (string, bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if rerr == unix.EAGAIN {
		return "", false
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	return string(buf[:n]), true
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	got, ok := recvNotify(t, c)
	if !ok {
		t.Fatal("no notification")
	}
	return got
}

func noNotify(t *testing.T, c *net.UnixConn) {
	t.Helper()
	if got, ok := recvNotify(t, c); ok {
		t.Fatalf("unexpected notification %q", got)
	}
}

// notifyHarness is a harness whose supervisor notifies a listener that
// stands in for systemd.
func notifyHarness(t *testing.T, timeout time.Duration) (*harness, *net.UnixConn) {
	t.Helper()
	addr := socketPath(t)
	ln := listenNotify(t, addr)
	n, err := NewNotifier(addr)
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, timeout, WithNotifier(n)), ln
}

func socketPath(t *testing.T) string {
	// sun_path holds 108 bytes; t.TempDir's names can be long.
	dir, err := os.MkdirTemp("", "wd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "notify")
}
