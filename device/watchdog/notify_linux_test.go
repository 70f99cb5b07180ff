package watchdog

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

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
	synctest.Test(t, func(t *testing.T) {
		h, ln := notifyHarness(t, 9*time.Second)
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
			h.tick()
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
	})
}

func TestSupervisorStopsNotifyingAfterAStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, ln := notifyHarness(t, 9*time.Second)
		h.sup.Register("journal", 5*time.Second)
		h.start(t)
		if got := readNotify(t, ln); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
		h.tick()
		if got := readNotify(t, ln); got != "WATCHDOG=1" {
			t.Fatalf("got %q at 3s, 2s inside the limit", got)
		}
		h.tick()
		h.stalled(t)
		h.tick()
		noNotify(t, ln)
		if err := h.stop(t); err == nil {
			t.Fatal("clean return after a stall")
		}
		noNotify(t, ln)
	})
}

func TestSupervisorLogsNotifyFailuresOncePerStreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := NewNotifier(socketPath(t)) // nobody listens
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, 9*time.Second, WithNotifier(n))
		h.start(t)
		h.tick()
		h.tick()
		if got := h.logs.find("systemd notify failed"); len(got) != 1 || got[0]["state"] != "WATCHDOG=1" {
			t.Fatalf("logs %v", got)
		}
		if got := h.dev.Feeds(); got != 3 {
			t.Fatalf("%d feeds: a notify failure must not stop the hardware feeds", got)
		}
	})
}

func TestSupervisorFollowsSystemdInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &Notifier{addr: "@unused", watchdog: 2 * time.Second}
		h := newHarness(t, 15*time.Second, WithNotifier(n))
		h.start(t)
		if h.period != time.Second {
			t.Fatalf("feeds every %v, want half of systemd's 2s", h.period)
		}
		h.tick()
		if got := h.dev.Feeds(); got != 2 {
			t.Fatalf("%d feeds a second after the start, want 2", got)
		}
	})
}
