package mobypay

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Replay guard errors.
var (
	ErrStale  = errors.New("mobypay: timestamp outside window")
	ErrReplay = errors.New("mobypay: nonce already used")
	ErrFull   = errors.New("mobypay: replay guard full")
)

// DefaultWindow is the seed's 60 s timestamp window.
const DefaultWindow = 60 * time.Second

// DefaultReplayCap bounds remembered nonces. A POS sends a few messages
// per payment; 4096 in two minutes is far past any real traffic.
const DefaultReplayCap = 4096

// ReplayGuard enforces the timestamp window and nonce uniqueness.
//
// A nonce needs remembering only while a message carrying it could still
// pass the timestamp check: until its timestamp plus the window, which is
// at most the time it was seen plus twice the window. Entries are kept
// that long in arrival order, so memory is bounded by the traffic of two
// windows, and by a hard cap. When the cap is reached the guard refuses
// new messages rather than forget nonces early: the reference kiosk wipes
// its set at 1000 entries, which reopens every replay. Only messages with
// a valid signature reach the guard, so filling it takes the secret.
//
// It is not safe for concurrent use; the POS session owns one.
type ReplayGuard struct {
	window time.Duration
	cap    int
	seen   map[string]struct{}
	fifo   []seenNonce
	head   int
}

type seenNonce struct {
	nonce  string
	forget time.Time
}

// NewReplayGuard returns a guard; window <= 0 and max <= 0 take defaults.
func NewReplayGuard(window time.Duration, max int) *ReplayGuard {
	if window <= 0 {
		window = DefaultWindow
	}
	if max <= 0 {
		max = DefaultReplayCap
	}
	return &ReplayGuard{window: window, cap: max, seen: make(map[string]struct{})}
}

// Window returns the timestamp window.
func (g *ReplayGuard) Window() time.Duration { return g.window }

// Len reports how many nonces are remembered.
func (g *ReplayGuard) Len() int { return len(g.seen) }

// CheckTime reports whether a message with this timestamp may be acted on
// at now: |now - ts| < window, as the seed specifies.
func (g *ReplayGuard) CheckTime(now time.Time, timestamp string) error {
	ms, err := parseMillis(timestamp)
	if err != nil {
		return err
	}
	skew := now.Sub(time.UnixMilli(ms))
	if skew < 0 {
		skew = -skew
	}
	if skew >= g.window {
		return fmt.Errorf("%w: %s off the kiosk clock, window %s", ErrStale, skew.Round(time.Millisecond), g.window)
	}
	return nil
}

// Check validates the timestamp and records the nonce. A stale message's
// nonce is not recorded.
func (g *ReplayGuard) Check(now time.Time, timestamp, nonce string) error {
	if err := g.CheckTime(now, timestamp); err != nil {
		return err
	}
	if nonce == "" {
		return fmt.Errorf("%w: empty nonce", ErrReplay)
	}
	g.expire(now)
	if _, ok := g.seen[nonce]; ok {
		return ErrReplay
	}
	if len(g.seen) >= g.cap {
		return fmt.Errorf("%w: %d nonces in the last %s", ErrFull, len(g.seen), 2*g.window)
	}
	// Clone so that a remembered nonce does not pin its whole message.
	nonce = strings.Clone(nonce)
	g.seen[nonce] = struct{}{}
	g.fifo = append(g.fifo, seenNonce{nonce, now.Add(2 * g.window)})
	return nil
}

func (g *ReplayGuard) expire(now time.Time) {
	for g.head < len(g.fifo) && !now.Before(g.fifo[g.head].forget) {
		delete(g.seen, g.fifo[g.head].nonce)
		g.fifo[g.head] = seenNonce{}
		g.head++
	}
	if g.head > 64 && g.head*2 > len(g.fifo) {
		n := copy(g.fifo, g.fifo[g.head:])
		clear(g.fifo[n:])
		g.fifo, g.head = g.fifo[:n], 0
	}
}
