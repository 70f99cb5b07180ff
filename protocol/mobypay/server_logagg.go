package mobypay

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// logAgg writes repeated events as one line per (event, reason, remote
// host) per window, so that a flood of connections or garbage frames
// costs a handful of log lines instead of one each: with stderr on a
// 115200-baud serial console every line is milliseconds of the service's
// time. The first event of a burst is written at once, with its details;
// the rest of the window is counted and summarised in one line when the
// window closes (on a timer, or on the next event, whichever comes
// first), and a key that keeps firing gets one summary per window. A key
// whose window closed with nothing to summarise is dropped, so the next
// event is written at once again.
//
// One timer serves all keys; there is no goroutine per host. The map is
// bounded: past aggMaxKeys, events from new hosts share one key per
// (event, reason) with no host ("peer_host=other"). Reasons must come
// from a small fixed set (error classes, not error texts), which bounds
// those keys too. Lines are written without holding the lock.
type logAgg struct {
	log    *slog.Logger
	window time.Duration
	now    func() time.Time // time.Now; tests step it

	mu      sync.Mutex
	m       map[aggKey]*aggEntry
	timer   *time.Timer
	due     time.Time // when the earliest window closes; zero if none
	stopped bool
}

// aggMaxKeys bounds the keys (hosts times reasons) aggregated at once.
const aggMaxKeys = 64

type aggKey struct {
	summary string     // the summary line's message, e.g. "pos connections refused"
	reason  string     // the class of the event
	host    netip.Addr // zero when the map was full
}

type aggEntry struct {
	level slog.Level
	start time.Time // the window began
	count int64     // events in this window not yet written
}

// aggLine is a line to write once the lock is released.
type aggLine struct {
	level slog.Level
	msg   string
	args  []any
}

func newLogAgg(log *slog.Logger, window time.Duration) *logAgg {
	return &logAgg{log: log, window: window, now: time.Now, m: make(map[aggKey]*aggEntry)}
}

// event records one event. If it starts a burst, msg and args are
// written now; otherwise it is counted towards the key's summary.
func (a *logAgg) event(level slog.Level, host netip.Addr, summary, reason, msg string, args ...any) {
	if !a.log.Enabled(context.Background(), level) {
		return
	}
	now := a.now()
	a.mu.Lock()
	var lines []aggLine
	if !a.due.IsZero() && !now.Before(a.due) {
		lines = a.flushLocked(now, false)
	}
	first := a.stopped
	if !a.stopped {
		k := aggKey{summary, reason, host}
		e := a.m[k]
		if e == nil && len(a.m) >= aggMaxKeys {
			k.host = netip.Addr{}
			e = a.m[k]
		}
		if e != nil {
			e.count++
		} else {
			a.m[k] = &aggEntry{level: level, start: now}
			first = true
			a.armLocked(now.Add(a.window))
		}
	}
	a.mu.Unlock()
	a.write(lines)
	if first {
		a.log.Log(context.Background(), level, msg, args...)
	}
}

// armLocked makes the timer fire at t if nothing fires earlier.
func (a *logAgg) armLocked(t time.Time) {
	if !a.due.IsZero() && !t.Before(a.due) {
		return
	}
	a.due = t
	d := t.Sub(a.now())
	if a.timer == nil {
		a.timer = time.AfterFunc(d, a.tick)
	} else {
		a.timer.Reset(d)
	}
}

func (a *logAgg) tick() {
	a.mu.Lock()
	var lines []aggLine
	if !a.stopped {
		lines = a.flushLocked(a.now(), false)
	}
	a.mu.Unlock()
	a.write(lines)
}

// flushLocked summarises every key whose window has closed (every key if
// all) and re-arms the timer for the next window to close.
func (a *logAgg) flushLocked(now time.Time, all bool) []aggLine {
	var lines []aggLine
	a.due = time.Time{}
	var next time.Time
	for k, e := range a.m {
		end := e.start.Add(a.window)
		if !all && now.Before(end) {
			if next.IsZero() || end.Before(next) {
				next = end
			}
			continue
		}
		if e.count == 0 {
			delete(a.m, k)
			continue
		}
		host := "other"
		if k.host.IsValid() {
			host = k.host.String()
		}
		lines = append(lines, aggLine{e.level, k.summary, []any{
			"peer_host", host, "count", e.count, "window", now.Sub(e.start).Round(time.Millisecond).String(), "reason", k.reason,
		}})
		// The key keeps firing: a new window starts, written at its end.
		e.start, e.count = now, 0
		if end := now.Add(a.window); next.IsZero() || end.Before(next) {
			next = end
		}
	}
	if all {
		clear(a.m)
		return lines
	}
	if !next.IsZero() {
		a.armLocked(next)
	}
	return lines
}

// close writes what is still counted and stops aggregating: later events
// are written as they come.
func (a *logAgg) close() {
	a.mu.Lock()
	lines := a.flushLocked(a.now(), true)
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
	a.write(lines)
}

func (a *logAgg) write(lines []aggLine) {
	for _, l := range lines {
		a.log.Log(context.Background(), l.level, l.msg, l.args...)
	}
}
