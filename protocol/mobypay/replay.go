package mobypay

import (
	"sort"
	"strings"
	"time"
)

// Replay guard errors.
var (
	ErrStale  = newError("timestamp outside window")
	ErrReplay = newError("nonce already used")
	ErrFull   = newError("replay guard full")
	// ErrNoNonce: the message carries no nonce (or an empty one), so it
	// cannot be replay-checked. Such a message is evidence, never acted on.
	ErrNoNonce = newError("no nonce")
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
// Nonces seen before a restart are loaded with Remember, so that a
// byte-identical replay right after a restart is still refused as a
// replay.
//
// It is not safe for concurrent use; the POS session owns one.
type ReplayGuard struct {
	window time.Duration
	cap    int
	seen   map[string]time.Time // nonce -> when it may be forgotten
	fifo   []SeenNonce          // fifo[head:] sorted by Forget
	head   int
}

// SeenNonce is a nonce the guard must refuse until Forget: a message that
// carried it could pass the timestamp check until then.
type SeenNonce struct {
	Nonce  string
	Forget time.Time
}

// NewReplayGuard returns a guard; window <= 0 and max <= 0 take defaults.
func NewReplayGuard(window time.Duration, max int) *ReplayGuard {
	if window <= 0 {
		window = DefaultWindow
	}
	if max <= 0 {
		max = DefaultReplayCap
	}
	return &ReplayGuard{window: window, cap: max, seen: make(map[string]time.Time)}
}

// Remember makes the guard refuse nonce until forget, as if a message
// carrying it had been accepted; it is how nonces journaled before a
// restart are loaded. A nonce already remembered keeps the later of its
// two forget times. Remember ignores the cap: the nonces were accepted
// once, and forgetting one early would reopen its replay (a guard loaded
// over its cap refuses new messages as full until enough expire, which
// fails closed).
func (g *ReplayGuard) Remember(nonce string, forget time.Time) {
	if nonce == "" {
		return
	}
	if old, ok := g.seen[nonce]; ok && !forget.After(old) {
		return
	}
	nonce = strings.Clone(nonce)
	g.seen[nonce] = forget
	g.push(SeenNonce{nonce, forget})
}

// push inserts e into the expiry queue in Forget order. Live traffic
// appends (its forget times grow with the clock); loaded nonces and a
// clock stepped back land in place, so one entry with a late forget time
// never holds back the expiry of those behind it.
func (g *ReplayGuard) push(e SeenNonce) {
	q := g.fifo[g.head:]
	if len(q) == 0 || !e.Forget.Before(q[len(q)-1].Forget) {
		g.fifo = append(g.fifo, e)
		return
	}
	i := g.head + sort.Search(len(q), func(i int) bool { return e.Forget.Before(q[i].Forget) })
	g.fifo = append(g.fifo, SeenNonce{})
	copy(g.fifo[i+1:], g.fifo[i:])
	g.fifo[i] = e
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
		return errorf("%w: %s off the kiosk clock, window %s", ErrStale, skew.Round(time.Millisecond), g.window)
	}
	return nil
}

// Check validates the timestamp and records the nonce. A stale message's
// nonce is not recorded. A message without a nonce gets ErrNoNonce (with
// the timestamp's verdict too when that also fails): it cannot be
// replay-checked, so it must not be acted on.
func (g *ReplayGuard) Check(now time.Time, timestamp, nonce string) error {
	terr := g.CheckTime(now, timestamp)
	if nonce == "" {
		if terr != nil {
			return errorf("%w; %w", ErrNoNonce, terr)
		}
		return ErrNoNonce
	}
	if terr != nil {
		return terr
	}
	g.expire(now)
	if _, ok := g.seen[nonce]; ok {
		return ErrReplay
	}
	if len(g.seen) >= g.cap {
		return errorf("%w: %d nonces in the last %s", ErrFull, len(g.seen), 2*g.window)
	}
	// Clone so that a remembered nonce does not pin its whole message.
	nonce = strings.Clone(nonce)
	forget := now.Add(2 * g.window)
	g.seen[nonce] = forget
	g.push(SeenNonce{nonce, forget})
	return nil
}

func (g *ReplayGuard) expire(now time.Time) {
	for g.head < len(g.fifo) && !now.Before(g.fifo[g.head].Forget) {
		e := g.fifo[g.head]
		// Remember may have extended the nonce: the later entry forgets it.
		if f, ok := g.seen[e.Nonce]; ok && !now.Before(f) {
			delete(g.seen, e.Nonce)
		}
		g.fifo[g.head] = SeenNonce{}
		g.head++
	}
	if g.head > 64 && g.head*2 > len(g.fifo) {
		n := copy(g.fifo, g.fifo[g.head:])
		clear(g.fifo[n:])
		g.fifo, g.head = g.fifo[:n], 0
	}
}
