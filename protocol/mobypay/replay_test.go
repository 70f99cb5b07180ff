package mobypay

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func TestReplayGuardWindow(t *testing.T) {
	now := time.UnixMilli(1757482370549)
	g := NewReplayGuard(60*time.Second, 0)
	cases := []struct {
		ts   string
		want error
	}{
		{ms(now), nil},
		{ms(now.Add(-1100 * time.Millisecond)), nil}, // real POS clocks are ~1 s off
		{ms(now.Add(59999 * time.Millisecond)), nil},
		{ms(now.Add(-59999 * time.Millisecond)), nil},
		{ms(now.Add(60 * time.Second)), ErrStale},
		{ms(now.Add(-60 * time.Second)), ErrStale},
		{ms(now.Add(-time.Hour)), ErrStale},
	}
	for i, c := range cases {
		err := g.Check(now, c.ts, fmt.Sprint("n", i))
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("timestamp %s: got %v, want %v", c.ts, err, c.want)
		}
	}
	for _, bad := range []string{"", "abc", "-5", "1.5e12", "99999999999999999999"} {
		if err := g.Check(now, bad, "x"+bad); err == nil {
			t.Errorf("timestamp %q accepted", bad)
		}
	}
	// A stale message's nonce is not taken, so the same nonce may still
	// arrive fresh.
	if err := g.Check(now, ms(now), "n4"); err != nil {
		t.Errorf("nonce of a refused stale message: %v", err)
	}
}

func TestReplayGuardNonces(t *testing.T) {
	now := time.UnixMilli(1757482370549)
	g := NewReplayGuard(time.Minute, 0)
	if err := g.Check(now, ms(now), "joHQ83Mp9dWbFsREUHDRCg=="); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(now.Add(time.Second), ms(now), "joHQ83Mp9dWbFsREUHDRCg=="); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within window: %v", err)
	}
	if err := g.Check(now, ms(now), ""); !errors.Is(err, ErrNoNonce) || errors.Is(err, ErrReplay) {
		t.Fatalf("empty nonce: %v, want ErrNoNonce", err)
	}
	// Without a nonce the message is not replay-checked whatever its time:
	// the verdict names both.
	if err := g.Check(now, ms(now.Add(-time.Hour)), ""); !errors.Is(err, ErrNoNonce) || !errors.Is(err, ErrStale) {
		t.Fatalf("stale without nonce: %v, want ErrNoNonce and ErrStale", err)
	}
	// The nonce is still remembered at the last instant a message
	// timestamped up to a window ahead could pass...
	later := now.Add(2*time.Minute - time.Millisecond)
	if err := g.Check(later, ms(later), "joHQ83Mp9dWbFsREUHDRCg=="); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay just inside two windows: %v", err)
	}
	// ...and forgotten after, which is what bounds memory.
	later = now.Add(2 * time.Minute)
	if err := g.Check(later, ms(later), "fresh"); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1 {
		t.Fatalf("remembered %d nonces after expiry, want 1", g.Len())
	}
}

func TestReplayGuardCapFailsClosed(t *testing.T) {
	now := time.UnixMilli(1757482370549)
	g := NewReplayGuard(time.Minute, 100)
	for i := range 100 {
		if err := g.Check(now, ms(now), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Check(now, ms(now), "one more"); !errors.Is(err, ErrFull) {
		t.Fatalf("over the cap: %v, want ErrFull", err)
	}
	// Old nonces stay refused while the guard is full: nothing is wiped.
	if err := g.Check(now, ms(now), "7"); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay while full: %v", err)
	}
	later := now.Add(2 * time.Minute)
	if err := g.Check(later, ms(later), "one more"); err != nil {
		t.Fatalf("after expiry the guard takes nonces again: %v", err)
	}
}

// Memory stays bounded by the traffic of two windows in a long run.
func TestReplayGuardSteadyState(t *testing.T) {
	now := time.UnixMilli(1757482370549)
	g := NewReplayGuard(time.Minute, 1000)
	for i := range 100_000 {
		now = now.Add(time.Second)
		if err := g.Check(now, ms(now), fmt.Sprint(i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if g.Len() > 121 || len(g.fifo) > 2*121+64 {
		t.Fatalf("after 100k messages: %d nonces, fifo %d", g.Len(), len(g.fifo))
	}
}

// TestReplayGuardRemember: a guard loaded with the nonces of the last
// windows (as the kiosk does after a restart) refuses a replay of them as
// a replay, not as stale and not accepted, and forgets each at its own
// time whatever the order they were loaded in.
func TestReplayGuardRemember(t *testing.T) {
	now := time.UnixMilli(1757482370549)
	g := NewReplayGuard(time.Minute, 0)
	// Seen 30 s before the restart, so remembered until 90 s after it.
	g.Remember("before-restart", now.Add(90*time.Second))
	g.Remember("late-forget", now.Add(10*time.Minute)) // a clock stepped back
	g.Remember("early-forget", now.Add(time.Second))   // loaded out of order
	g.Remember("", now.Add(time.Minute))               // ignored
	ts := ms(now.Add(-30 * time.Second))
	if err := g.Check(now, ts, "before-restart"); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restart: %v, want ErrReplay", err)
	}
	if err := g.Check(now, ms(now), "early-forget"); !errors.Is(err, ErrReplay) {
		t.Fatalf("early-forget within its time: %v, want ErrReplay", err)
	}
	// The late entry does not hold back the expiry of the earlier ones.
	later := now.Add(2 * time.Second)
	if err := g.Check(later, ms(later), "early-forget"); err != nil {
		t.Fatalf("early-forget after its time: %v", err)
	}
	later = now.Add(91 * time.Second)
	if err := g.Check(later, ms(later), "before-restart"); err != nil {
		t.Fatalf("before-restart after its time: %v", err)
	}
	if err := g.Check(later, ms(later), "late-forget"); !errors.Is(err, ErrReplay) {
		t.Fatalf("late-forget: %v, want ErrReplay", err)
	}
	// Remembering a nonce again keeps the later forget time.
	g.Remember("twice", now.Add(100*time.Second))
	g.Remember("twice", now.Add(95*time.Second))
	later = now.Add(97 * time.Second)
	if err := g.Check(later, ms(later), "twice"); !errors.Is(err, ErrReplay) {
		t.Fatalf("re-remembered with an earlier time: %v, want ErrReplay", err)
	}
}
