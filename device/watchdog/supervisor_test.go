package watchdog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const stallMsg = "watchdog feeding stopped: loop stalled; the board will reset"

func TestSupervisorFeedsWhileHeartbeatsFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		pay := h.sup.Register("payment", 10*time.Second)
		jrn := h.sup.Register("journal", 10*time.Second)
		h.start(t)
		h.fed(t)
		if h.period != 3*time.Second {
			t.Fatalf("feeds every %v, want a third of the 9s timeout", h.period)
		}
		for range 5 {
			h.tick()
			h.fed(t)
			pay.Beat()
			jrn.Beat()
		}
		st := h.sup.Status()
		if !st.Running || !st.Feeding || st.Stalled != "" || st.Feeds != 6 || st.Timeout != 9*time.Second ||
			st.Interval != 3*time.Second || st.Device != "fake watchdog" || st.LastFeedAge != 0 || st.FeedError != "" {
			t.Fatalf("status %+v", st)
		}
		if len(st.Heartbeats) != 2 || st.Heartbeats[0] != (HeartbeatStatus{Name: "payment", MaxSilence: 10 * time.Second, Healthy: true}) {
			t.Fatalf("heartbeats %+v", st.Heartbeats)
		}
		if err := h.sup.Check(); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := h.logs.find("watchdog armed"); len(got) != 1 || got[0]["loops"] != "payment,journal" ||
			got[0]["timeout"] != "9s" || got[0]["feed_every"] != "3s" || got[0]["device"] != "fake watchdog" {
			t.Fatalf("armed log %v", got)
		}
	})
}

func TestSupervisorStopsFeedingWhenALoopStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		pos := h.sup.Register("pos-server", 10*time.Second)
		pay := h.sup.Register("payment", 9*time.Second)
		h.start(t)
		h.fed(t)

		// payment goes quiet; silent for exactly its limit is still fresh.
		for range 3 {
			h.tick()
			h.fed(t)
			pos.Beat()
		}
		fedBefore := h.dev.Feeds()
		lastFeed := h.dev.LastFeed()

		h.tick()
		h.stalled(t)
		h.noFeed(t)

		for range 3 {
			pos.Beat()
			pay.Beat() // coming back does not withdraw the reset
			h.tick()
			h.noFeed(t)
		}
		if got := h.dev.Feeds(); got != fedBefore {
			t.Fatalf("%d feeds after the stall", got-fedBefore)
		}

		logs := h.logs.find(stallMsg)
		if len(logs) != 1 {
			t.Fatalf("stall logged %d times, want once", len(logs))
		}
		if logs[0]["loop"] != "payment" || logs[0]["silent_for"] != "12s" || logs[0]["max_silence"] != "9s" ||
			logs[0]["reset_within"] != "6s" || logs[0]["also_stalled"] != "" {
			t.Fatalf("stall log %v", logs[0])
		}
		st := h.sup.Status()
		if st.Feeding || !st.Running || st.Stalled != "payment" || st.LastFeedAge != 12*time.Second {
			t.Fatalf("status %+v", st)
		}
		if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), `"payment" stalled`) {
			t.Fatalf("Check: %v", err)
		}

		err := h.stop(t)
		if err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") || !strings.Contains(err.Error(), "payment") {
			t.Fatalf("Run after a stall: %v", err)
		}
		if h.dev.MagicClosed() {
			t.Fatal("magic close after a stall: the reset would be cancelled")
		}
		if !h.dev.Expired(lastFeed.Add(h.dev.Timeout() + time.Nanosecond)) {
			t.Fatal("a real board would not reset")
		}
	})
}

func TestSupervisorReportsTheMostOverdueLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 3*time.Second) // ticks every second
		h.sup.Register("journal", 900*time.Millisecond)
		h.sup.Register("kpos-receiver", 500*time.Millisecond)
		h.start(t)
		h.fed(t)
		h.tick()
		h.stalled(t)
		h.noFeed(t)
		logs := h.logs.find(stallMsg)
		if len(logs) != 1 || logs[0]["loop"] != "kpos-receiver" || logs[0]["also_stalled"] != "journal" {
			t.Fatalf("stall log %v", logs)
		}
	})
}

// The evidence asked for in issue 5, with the loop beating from a ticker
// of its own as it does in kioskd: once the loop stops, the feeds stop
// at the first tick past its limit, so the board resets within the
// timeout.
func TestSupervisorStallStopsFeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			timeout    = 15 * time.Second // feeds every 5s
			maxSilence = 10 * time.Second
		)
		dev := NewFake(timeout)
		sup := NewSupervisor(dev, nil)
		pay := sup.Register("payment", maxSilence)
		sup.Register("journal", time.Hour)

		stop := make(chan struct{})
		lastBeat := make(chan time.Time, 1)
		go func() {
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			last := time.Now()
			for {
				select {
				case <-stop:
					lastBeat <- last
					return
				case <-tk.C:
					pay.Beat()
					last = time.Now()
				}
			}
		}()

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sup.Run(ctx) }()
		defer func() {
			cancel()
			<-done
		}()

		time.Sleep(4*timeout + time.Second/2) // off the beats, so the stop is not racing one
		synctest.Wait()
		if got := dev.Feeds(); got != 13 {
			t.Fatalf("%d feeds in a minute, want one at once and one every 5s", got)
		}
		select {
		case <-sup.Stalled():
			t.Fatal("stalled while the loop beats")
		default:
		}
		close(stop)
		beat := <-lastBeat
		select {
		case <-sup.Stalled():
		case <-time.After(timeout):
			t.Fatal("stall not detected")
		}
		detected := time.Now()
		fed := dev.Feeds()
		lastFeed := dev.LastFeed()

		// Ticks come every 5s: the first one past the limit declares it.
		if d := detected.Sub(beat); d <= maxSilence || d > maxSilence+timeout/3 {
			t.Fatalf("stall declared %v after the last beat, want within one feed past its %v limit", d, maxSilence)
		}
		if d := lastFeed.Sub(beat); d > maxSilence {
			t.Fatalf("last feed %v after the last beat, past its %v limit", d, maxSilence)
		}

		time.Sleep(3 * timeout)
		if got := dev.Feeds(); got != fed {
			t.Fatalf("%d feeds after the stall", got-fed)
		}
		if !dev.Expired(time.Now()) {
			t.Fatal("a real board would still be running")
		}
	})
}

func TestSupervisorCleanStopDisarms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		h.sup.Register("payment", 10*time.Second)
		h.start(t)
		h.fed(t)
		if err := h.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		select {
		case <-h.dev.Closed():
		default:
			t.Fatal("no magic close on a clean stop")
		}
		if err := h.dev.Feed(); err == nil {
			t.Fatal("fed after the magic close")
		}
		if st := h.sup.Status(); st.Running || st.Feeding {
			t.Fatalf("status after stop %+v", st)
		}
		if err := h.sup.Check(); err == nil {
			t.Fatal("Check passed after stop")
		}
		if len(h.logs.find("watchdog disarmed")) != 1 {
			t.Fatal("disarm not logged")
		}
		if err := h.sup.Run(context.Background()); err == nil {
			t.Fatal("second Run accepted")
		}
	})
}

func TestSupervisorStoppedHeartbeatIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		kpos := h.sup.Register("kpos-receiver", time.Second)
		kpos.Stop()
		h.start(t)
		h.fed(t)
		h.tick()
		h.fed(t)
		if st := h.sup.Status(); !st.Heartbeats[0].Stopped || !st.Heartbeats[0].Healthy {
			t.Fatalf("status %+v", st.Heartbeats)
		}

		// Registered again, it counts from now.
		h.sup.Register("kpos-receiver", 4*time.Second)
		h.tick()
		h.fed(t)
		h.tick()
		h.stalled(t)
		h.noFeed(t)
		if st := h.sup.Status(); len(st.Heartbeats) != 1 || st.Stalled != "kpos-receiver" {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestSupervisorLogsFeedFailuresOncePerStreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		h.start(t)
		h.fed(t)
		boom := errors.New("watchdog: feed fake: boom")
		h.dev.SetFeedError(boom)
		for range 3 {
			h.tick()
		}
		if got := h.logs.find("watchdog feed failed"); len(got) != 1 || got[0]["err"] != boom.Error() {
			t.Fatalf("feed failure logs %v", got)
		}
		if st := h.sup.Status(); st.FeedError != boom.Error() || st.Feeds != 1 || st.LastFeedAge != 9*time.Second {
			t.Fatalf("status %+v", st)
		}
		if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("Check: %v", err)
		}
		h.dev.SetFeedError(nil)
		h.tick()
		h.fed(t)
		if len(h.logs.find("watchdog feed recovered")) != 1 {
			t.Fatal("recovery not logged")
		}
		if err := h.sup.Check(); err != nil {
			t.Fatalf("Check after recovery: %v", err)
		}
	})
}

func TestSupervisorCheckBeforeRunAndOnSilentLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 9*time.Second)
		h.sup.Register("journal", 10*time.Second)
		if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), "not running") {
			t.Fatalf("Check before Run: %v", err)
		}
		h.start(t)
		// Silent past its limit but not yet judged: the ticks at 3, 6
		// and 9 s found it fresh, the next is at 12 s.
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), `"journal" silent for 11s`) {
			t.Fatalf("Check: %v", err)
		}
	})
}

func TestSupervisorRejectsZeroTimeout(t *testing.T) {
	sup := NewSupervisor(NewFake(0), nil)
	if err := sup.Run(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") {
		t.Fatalf("Run: %v", err)
	}
}

func TestRegisterRejectsWiringMistakes(t *testing.T) {
	sup := NewSupervisor(NewFake(time.Second), nil)
	sup.Register("payment", time.Second)
	for name, f := range map[string]func(){
		"empty name":   func() { sup.Register("", time.Second) },
		"zero silence": func() { sup.Register("journal", 0) },
		"duplicate":    func() { sup.Register("payment", time.Second) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestNilHeartbeatIsANoOp(t *testing.T) {
	var hb *Heartbeat
	hb.Beat()
	hb.Stop()
}

func TestBeatDoesNotAllocate(t *testing.T) {
	hb := NewSupervisor(NewFake(time.Second), nil).Register("payment", time.Second)
	if n := testing.AllocsPerRun(100, hb.Beat); n != 0 {
		t.Fatalf("Beat allocates %v times", n)
	}
}
