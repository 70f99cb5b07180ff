package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/device/watchdog"
)

// backoffHardware opens the sim board (no printer, so nothing outlives
// the bubble) and prepares a restart record of nine unclean starts: the
// next start waits the 5 min ceiling.
func backoffHardware(t *testing.T) (*hardware, *watchdog.Fake, crashGuard) {
	t.Helper()
	hw, dir := openSimHardware(t, "[printer]\nenabled = false\n")
	fake, ok := hw.wdDev.(*watchdog.Fake)
	if !ok {
		t.Fatalf("sim board watchdog is %T, want the fake", hw.wdDev)
	}
	guard := newCrashGuard(dir)
	for range 9 {
		if _, _, err := guard.begin(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return hw, fake, guard
}

// Defect 7: opening the watchdog arms it, and the crash-loop back-off
// used to wait up to 5 min with nothing feeding it, so a real board
// reset during every back-off and never started again. The 5 minutes
// pass in synctest's fake time; the fake is checked every second.
func TestCrashBackoffFeedsWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hw, fake, guard := backoffHardware(t)
		defer hw.Close()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // a failed check ends the back-off too
		start := time.Now()
		done := make(chan bool, 1)
		go func() { done <- crashBackoff(ctx, guard, hw, log) }()
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
				return
			case now := <-check.C:
				if fake.Expired(now) {
					t.Fatalf("watchdog expired %s into the back-off (last fed %s in, timeout %s): the board would reset",
						now.Sub(start), fake.LastFeed().Sub(start), fake.Timeout())
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
		hw, fake, guard := backoffHardware(t)
		defer hw.Close()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan bool, 1)
		go func() { done <- crashBackoff(ctx, guard, hw, log) }()
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
