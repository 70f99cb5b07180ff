package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
)

// dial opens the network connection for autopaho. We dial ourselves
// rather than let autopaho do it: the connection must be a turnConn
// (see below), and autopaho's own dialer would follow an all_proxy
// variable a kiosk has no business following.
func dial(ctx context.Context, u *url.URL, t *tls.Config) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if u.Scheme == "mqtts" {
		return (&tls.Dialer{NetDialer: d, Config: t}).DialContext(ctx, "tcp", u.Host)
	}
	return d.DialContext(ctx, "tcp", u.Host)
}

// turn is one publisher's place in the write order.
type turn struct {
	ch   chan struct{}
	once sync.Once
}

func newTurn() *turn { return &turn{ch: make(chan struct{})} }

func (t *turn) pass() { t.once.Do(func() { close(t.ch) }) }

// turnConn keeps the PUBLISH packets of the shipper's concurrent
// publishers on the wire in seq order. paho's Publish blocks until the
// PUBACK, so up to W of them run in goroutines; left alone, the
// goroutines would reach the socket in any order and a consumer would see
// seq 7 before 6. Each publisher waits for its predecessor's turn, arms
// its own, and the first PUBLISH byte written passes it on: paho writes a
// packet under the conn's lock (sync.Locker, which the embedded mutex
// provides), so the successor's packet can only follow it.
type turnConn struct {
	net.Conn
	sync.Mutex
	armed *atomic.Pointer[turn]
}

func (c *turnConn) Write(b []byte) (int, error) {
	// 0x3_ is the fixed header of a PUBLISH; paho writes the header
	// first, by itself. Pings and acks pass nobody's turn.
	if len(b) > 0 && b[0]>>4 == 3 {
		if t := c.armed.Swap(nil); t != nil {
			t.pass()
		}
	}
	return c.Conn.Write(b)
}

// pahoBackoff is the reconnect back-off: quick at first (a broker
// restart takes seconds), then up to two minutes, jittered by autopaho
// so that a fleet does not reconnect in step after a broker outage.
func pahoBackoff(c *Config) func(int) time.Duration {
	if c.backoff != nil {
		return c.backoff
	}
	return autopaho.NewExponentialBackoff(time.Second, 2*time.Minute, 3*time.Second, 1.6)
}

// rateLog bounds the log lines of one repeated failure: the first at
// once, then one per period carrying how many were held back. A kiosk
// offline for weeks would otherwise write a line every reconnect.
type rateLog struct {
	mu     sync.Mutex
	period time.Duration
	next   time.Time
	held   int
}

func (r *rateLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Before(r.next) {
		r.held++
		r.mu.Unlock()
		return
	}
	n := r.held
	r.held, r.next = 0, now.Add(r.period)
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "held_back", n)
	}
	l.Log(context.Background(), level, msg, args...)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
