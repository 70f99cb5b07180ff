package watchdog

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifyTimeout bounds one notification: a write to a full datagram queue
// blocks, and the notifications are sent from the feeding loop.
const notifyTimeout = time.Second

// Notifier sends systemd service notifications (sd_notify(3)) over the
// unixgram socket systemd names in NOTIFY_SOCKET. A nil *Notifier is valid
// and sends nothing, which is what a service started outside systemd gets.
type Notifier struct {
	addr     string
	watchdog time.Duration
}

// NewNotifier returns a notifier for the socket address addr: a path, or
// an abstract name written with a leading '@'. An empty addr gives nil.
func NewNotifier(addr string) (*Notifier, error) {
	if addr == "" {
		return nil, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return nil, fmt.Errorf("watchdog: notify socket %q: want an absolute path or an @abstract name", addr)
	}
	return &Notifier{addr: addr}, nil
}

// NotifierFromEnv returns the notifier systemd's environment asks for:
// nil without NOTIFY_SOCKET. WATCHDOG_USEC (for this process, per
// WATCHDOG_PID) sets WatchdogInterval.
func NotifierFromEnv() (*Notifier, error) {
	n, err := NewNotifier(os.Getenv("NOTIFY_SOCKET"))
	if n == nil || err != nil {
		return n, err
	}
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		// Meant for another process (we were started by the service's
		// main process); systemd does not watch us.
		return n, nil
	}
	v, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || v <= 0 || v > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return nil, fmt.Errorf("watchdog: WATCHDOG_USEC %q: not a positive count of microseconds", usec)
	}
	n.watchdog = time.Duration(v) * time.Microsecond
	return n, nil
}

// WatchdogInterval is systemd's WatchdogSec for this service, or zero.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends one notification, such as "READY=1" or "STATUS=...".
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	// A fresh socket each time, as libsystemd does: nothing to keep open,
	// and a re-executed systemd is reached at its new socket.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("watchdog: notify systemd: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(notifyTimeout)); err != nil {
		return fmt.Errorf("watchdog: notify systemd: %w", err)
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("watchdog: notify systemd %q: %w", state, err)
	}
	return nil
}

// Ready sends READY=1.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Watchdog sends WATCHDOG=1. The Supervisor sends it with every feed.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Stopping sends STOPPING=1. The Supervisor sends it on a clean stop.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }
