package machine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/device/watchdog"
)

// crashLooping opens the sim board (no printer, so nothing outlives the
// bubble) and leaves a restart record of nine unclean starts: the next
// start waits the 5 min ceiling.
func crashLooping(t *testing.T) (*Machine, *watchdog.Fake, CrashGuard) {
	t.Helper()
	cfg := testConfig(t)
	m := openSim(t, cfg, nil)
	guard := NewCrashGuard(cfg.DataDir, "v1", "A")
	for range 9 {
		if _, _, err := guard.begin(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return m, fakeWatchdog(t, m), guard
}

// Defect 7: opening the watchdog arms it, and the crash-loop back-off
// used to wait up to 5 min with nothing feeding it, so a real board
// reset during every back-off and never started again. The 5 minutes
// pass in synctest's fake time; the fake is checked every second.
func TestCrashBackoffFeedsWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, fake, guard := crashLooping(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // a failed check ends the back-off too
		start := time.Now()
		done := make(chan bool, 1)
		go func() { done <- m.CrashBackoff(ctx, guard, discard) }()
		check := time.NewTicker(time.Second)
		defer check.Stop()
		for {
			select {
			case stop := <-done:
				if stop {
					t.Fatal("back-off reported a stop nobody asked for")
				}
				if waited := time.Since(start); waited != 5*time.Minute {
					t.Fatalf("back-off waited %s, want the 5m ceiling", waited)
				}
				if n := fake.Feeds(); n < int(5*time.Minute/(fake.Timeout()/3)) {
					t.Fatalf("%d feeds in 5m with a %s timeout", n, fake.Timeout())
				}
				if fake.Expired(time.Now()) || fake.MagicClosed() {
					t.Fatalf("after the back-off: expired %v, disarmed %v", fake.Expired(time.Now()), fake.MagicClosed())
				}
				if faults := m.leds.Faults(); len(faults) != 0 {
					t.Fatalf("faults after the back-off: %v", faults)
				}
				return
			case now := <-check.C:
				if fake.Expired(now) {
					t.Fatalf("watchdog expired %s into the back-off (last fed %s in, timeout %s): the board would reset",
						now.Sub(start), fake.LastFeed().Sub(start), fake.Timeout())
				}
				// At 5m the wait ends in the same instant as this check.
				if faults := m.leds.Faults(); now.Sub(start) < 5*time.Minute && (len(faults) != 1 || faults[0] != "crash-loop") {
					t.Fatalf("faults during the back-off: %v, want crash-loop", faults)
				}
			}
		}
	})
}

// Asked to stop while it waits, kioskd stops cleanly: the watchdog it
// armed is disarmed with the magic close, as on any clean stop, instead
// of being left to reset the board after the process exits.
func TestCrashBackoffStopDisarmsWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, fake, guard := crashLooping(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan bool, 1)
		go func() { done <- m.CrashBackoff(ctx, guard, discard) }()
		time.Sleep(time.Minute) // fake time: one minute into the wait
		synctest.Wait()         // and the feeds due by then have run
		if fake.Expired(time.Now()) {
			t.Fatal("watchdog expired during the back-off")
		}
		cancel()
		if stop := <-done; !stop {
			t.Fatal("back-off did not report the stop")
		}
		if !fake.MagicClosed() {
			t.Fatal("watchdog left armed after a clean stop during the back-off")
		}
	})
}

// Below the threshold there is no wait at all.
func TestCrashBackoffFirstStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		guard := NewCrashGuard(cfg.DataDir, "v1", "A")
		start := time.Now()
		for i := range 3 {
			if m.CrashBackoff(context.Background(), guard, discard) || time.Since(start) != 0 {
				t.Fatalf("start %d waited %s", i, time.Since(start))
			}
		}
	})
}

// A kioskd whose board cannot be opened waits, past the threshold,
// before it exits (doubling like the crash back-off), and a stop request
// ends the wait at once.
func TestRefusalBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		guard := NewCrashGuard(t.TempDir(), "v1", "A")
		cause := errors.New("relay pin missing")
		waits := []time.Duration{0, 0, 0, 5 * time.Second, 10 * time.Second}
		for i, want := range waits {
			start := time.Now()
			RefusalBackoff(context.Background(), guard, cause, discard)
			if got := time.Since(start); got != want {
				t.Fatalf("refusal %d waited %s, want %s", i, got, want)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		go func() { defer close(done); RefusalBackoff(ctx, guard, cause, discard) }()
		time.Sleep(time.Second)
		cancel()
		<-done
		if got := time.Since(start); got != time.Second {
			t.Fatalf("stopped after %s, want at once (1s in)", got)
		}
	})
}
