package watchdog

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func noNotify(t *testing.T, c *net.UnixConn) {
	t.Helper()
	// A non-blocking receive: a read deadline already past would fail
	// before looking at the queue.
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
	if rerr == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
	if rerr != unix.EAGAIN {
		t.Fatal(rerr)
	}
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

func TestNotifierPathSocket(t *testing.T) {
	addr := socketPath(t)
	ln := listenNotify(t, addr)
	n, err := NewNotifier(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, send := range []func() error{n.Ready, n.Watchdog, n.Stopping} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"READY=1", "WATCHDOG=1", "STOPPING=1"} {
		if got := readNotify(t, ln); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestNotifierAbstractSocket(t *testing.T) {
	addr := fmt.Sprintf("@kioskd-watchdog-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln := listenNotify(t, addr)
	n, err := NewNotifier(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, ln); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	n, err := NewNotifier("")
	if n != nil || err != nil {
		t.Fatalf("NewNotifier(\"\") = %v, %v", n, err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if n.WatchdogInterval() != 0 {
		t.Fatal("interval without systemd")
	}
}

func TestNotifierRejectsRelativeAddress(t *testing.T) {
	if _, err := NewNotifier("run/notify"); err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") {
		t.Fatalf("err %v", err)
	}
}

func TestNotifierReportsAMissingSocket(t *testing.T) {
	n, err := NewNotifier(socketPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") {
		t.Fatalf("err %v", err)
	}
}

func TestNotifierFromEnv(t *testing.T) {
	addr := socketPath(t)
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, socket, usec, pid string
		want                    time.Duration
		nilN, fails             bool
	}{
		{name: "outside systemd", nilN: true},
		{name: "no watchdog", socket: addr},
		{name: "watchdog for us", socket: addr, usec: "3000000", pid: pid, want: 3 * time.Second},
		{name: "watchdog without pid", socket: addr, usec: "500000", want: 500 * time.Millisecond},
		{name: "watchdog for another process", socket: addr, usec: "3000000", pid: "1"},
		{name: "bad usec", socket: addr, usec: "soon", fails: true},
		{name: "zero usec", socket: addr, usec: "0", fails: true},
		{name: "relative socket", socket: "notify", fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			n, err := NotifierFromEnv()
			if tc.fails {
				if err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (n == nil) != tc.nilN {
				t.Fatalf("notifier %v", n)
			}
			if got := n.WatchdogInterval(); got != tc.want {
				t.Fatalf("interval %v, want %v", got, tc.want)
			}
		})
	}
}

// The supervisor tells systemd what a service manager needs: READY=1 when
// the wiring says so, WATCHDOG=1 with every feed and none after a stall,
// STOPPING=1 on a clean stop.
func TestSupervisorNotifiesSystemd(t *testing.T) {
	addr := socketPath(t)
	ln := listenNotify(t, addr)
	n, err := NewNotifier(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 9*time.Second, WithNotifier(n))
	if err := h.sup.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, ln); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
	h.start(t)
	h.fed(t)
	if got := readNotify(t, ln); got != "WATCHDOG=1" {
		t.Fatalf("got %q after the first feed", got)
	}
	for range 3 {
		h.step(t, 3*time.Second)
		h.fed(t)
		if got := readNotify(t, ln); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, ln); got != "STOPPING=1" {
		t.Fatalf("got %q on stop", got)
	}
	noNotify(t, ln)
}

func TestSupervisorStopsNotifyingAfterAStall(t *testing.T) {
	addr := socketPath(t)
	ln := listenNotify(t, addr)
	n, err := NewNotifier(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 9*time.Second, WithNotifier(n))
	h.sup.Register("journal", 5*time.Second)
	h.start(t)
	if got := readNotify(t, ln); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	h.step(t, 6*time.Second)
	waitStalled(t, h.sup)
	h.step(t, 3*time.Second)
	noNotify(t, ln)
	if err := h.stop(t); err == nil {
		t.Fatal("clean return after a stall")
	}
	noNotify(t, ln)
}

func TestSupervisorLogsNotifyFailuresOncePerStreak(t *testing.T) {
	n, err := NewNotifier(socketPath(t)) // nobody listens
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 9*time.Second, WithNotifier(n))
	h.start(t)
	h.step(t, 3*time.Second)
	h.step(t, 3*time.Second)
	if got := h.logs.find("systemd notify failed"); len(got) != 1 || got[0]["state"] != "WATCHDOG=1" {
		t.Fatalf("logs %v", got)
	}
	if got := h.dev.Feeds(); got != 3 {
		t.Fatalf("%d feeds: a notify failure must not stop the hardware feeds", got)
	}
}

func TestSupervisorFollowsSystemdInterval(t *testing.T) {
	n := &Notifier{addr: "@unused", watchdog: 2 * time.Second}
	h := newHarness(t, 15*time.Second, WithNotifier(n))
	h.start(t)
	if h.period != time.Second {
		t.Fatalf("feeds every %v, want half of systemd's 2s", h.period)
	}
	if st := h.sup.Status(); st.Interval != time.Second {
		t.Fatalf("status interval %v", st.Interval)
	}
}
