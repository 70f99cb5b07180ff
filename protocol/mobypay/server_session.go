package mobypay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// role is what a connection is to the server. It changes under Server.mu.
type role int

const (
	roleNew role = iota // not admitted yet
	// rolePending: held while a proven session from the same host is up;
	// read from, never written to, until it proves itself or the session
	// it waits on ends.
	rolePending
	roleCurrent // the session: Send writes to it
	roleRetired // replaced; reads what its peer sent until the drain bound
	roleClosed  // closed by the server (evicted, dropped); ends silently
)

// The probe set on a proven session when a newcomer from its host is
// held: a dead peer's kernel answers the first keepalive with RST, and a
// vanished one leaves the probes unanswered, so the session ends within
// about probeUserTimeout. A live peer's kernel answers the probes and
// nothing changes. The session's normal keepalive comes back once no
// connection is held pending.
const (
	probeIdle        = time.Second
	probeInterval    = time.Second
	probeCount       = 2
	probeUserTimeout = 3 * time.Second
)

type session struct {
	conn  net.Conn
	peer  string     // "ip:port"
	host  netip.Addr // unmapped
	since time.Time
	wmu   sync.Mutex // serialises writes

	// proven: the connection has sent a correctly signed, fresh, never
	// seen message. Written under Server.mu; read without it on the hot
	// path (a proven connection is never pending).
	proven atomic.Bool

	// Guarded by Server.mu.
	role       role
	wasSession bool   // it was the session at some point
	probed     bool   // the keepalive probe is set
	why        string // why the server closed it (roleClosed)

	// The read deadline is the earliest of three, ordered by dmu: own
	// (the reader's frame or idle bound), pending (a held connection must
	// prove itself by then) and drain (a retired session reads no later).
	dmu     sync.Mutex
	own     time.Time
	pending time.Time
	drain   time.Time
}

// applyDeadlineLocked sets the connection's read deadline; dmu held.
func (ss *session) applyDeadlineLocked() {
	var dl time.Time
	for _, t := range [...]time.Time{ss.own, ss.pending, ss.drain} {
		if !t.IsZero() && (dl.IsZero() || t.Before(dl)) {
			dl = t
		}
	}
	ss.conn.SetReadDeadline(dl)
}

func (ss *session) setOwnDeadline(t time.Time) {
	ss.dmu.Lock()
	ss.own = t
	ss.applyDeadlineLocked()
	ss.dmu.Unlock()
}

// hold gives a pending connection until t to prove itself.
func (ss *session) hold(t time.Time) {
	ss.dmu.Lock()
	ss.pending = t
	ss.applyDeadlineLocked()
	ss.dmu.Unlock()
}

// admitted lifts the pending bound of a promoted connection, even while
// its reader is blocked.
func (ss *session) admitted() {
	ss.dmu.Lock()
	ss.pending = time.Time{}
	ss.applyDeadlineLocked()
	ss.dmu.Unlock()
}

// retire ends a replaced session without losing what its POS sent before
// it left: closing the socket at once would discard frames still in the
// kernel buffer, such as a final result sent just before the drop. The
// peer gets a FIN (a live one sees EOF at once); the session reads on
// until EOF or the drain deadline.
func (ss *session) retire(until time.Time) {
	ss.dmu.Lock()
	ss.drain = until
	ss.pending = time.Time{}
	ss.applyDeadlineLocked()
	ss.dmu.Unlock()
	if tc, ok := ss.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		ss.conn.Close()
	}
}

// retired reports whether the session was replaced.
func (ss *session) retired() bool {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	return !ss.drain.IsZero()
}

// pendingExpired reports whether a held connection ran out of time.
func (ss *session) pendingExpired(now time.Time) bool {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	return !ss.pending.IsZero() && !now.Before(ss.pending)
}

// probe sets the short keepalive on a proven session whose host opened a
// new connection; unprobe restores the normal one. Errors are ignored: a
// connection that cannot take the options is closed or not TCP, and the
// normal keepalive still ends it in the end.
func (ss *session) probe() {
	if tc, ok := ss.conn.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: probeIdle, Interval: probeInterval, Count: probeCount})
	}
	setUserTimeout(ss.conn, probeUserTimeout)
}

func (ss *session) unprobe(keepAlive time.Duration) {
	if tc, ok := ss.conn.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: keepAlive, Interval: keepAlive, Count: 3})
	}
	setUserTimeout(ss.conn, 0)
}

// refusals judges the refusal limit per time window: more than max
// refused frames within window ends the connection, however many good
// frames came between. It keeps the times of the last max+1 refusals,
// allocated at the first one.
type refusals struct {
	at   []time.Time // ring
	next int
	n    int
}

// add records a refusal at now and reports whether the limit is passed.
func (r *refusals) add(now time.Time, max int, window time.Duration) bool {
	if r.at == nil {
		r.at = make([]time.Time, max+1)
	}
	r.at[r.next] = now
	r.next = (r.next + 1) % len(r.at)
	if r.n < len(r.at) {
		r.n++
	}
	// r.at[r.next] is now the oldest of the last max+1 refusals.
	return r.n == len(r.at) && now.Sub(r.at[r.next]) < window
}

// endReason is why a connection's reading ended: a class from a small
// fixed set (it keys the log aggregation) and the error behind it.
type endReason struct {
	class string
	err   error
}

// readErrorClass names a read error that is not one of the server's own.
func readErrorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "peer not answering (keepalive)"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "read error"
}
