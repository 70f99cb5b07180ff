package qibixx

import (
	"sync"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// eventCap is the event ring's size; eventReserve slots are kept for the
// outcomes of vends already started, as in mdb.Device: a vend request is
// refused when fewer are free, so that a success, failure or unconfirmed
// vend is never lost to a payment side slow to drain.
const (
	eventCap     = 64
	eventReserve = 8
)

type eventRing struct {
	buf  [eventCap]mdb.Event
	head int
	n    int
	lost uint64
}

func (r *eventRing) free() int { return eventCap - r.n }

func (r *eventRing) push(e mdb.Event) {
	if r.n == eventCap {
		r.lost++
		return
	}
	r.buf[(r.head+r.n)%eventCap] = e
	r.n++
}

func (r *eventRing) drain(dst []mdb.Event) []mdb.Event {
	for r.n > 0 {
		dst = append(dst, r.buf[r.head])
		r.head = (r.head + 1) % eventCap
		r.n--
	}
	return dst
}

// limiter lets one log line through per window and counts the rest, so
// that a board spewing garbage costs a line every few seconds, not one
// per byte, and the count says how bad it was.
type limiter struct {
	mu         sync.Mutex
	window     time.Duration
	next       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were held back since
// the last line that was.
func (l *limiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.next = now.Add(l.window)
	return true, n
}
