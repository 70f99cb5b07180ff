package watchdog

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait bounds every blocking step of a test; nothing waits this long when
// the code is right.
const wait = 5 * time.Second

// stepClock is a Clock the test moves by hand and ticks on demand.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	ticks  chan time.Time
	period chan time.Duration
}

func newStepClock() *stepClock {
	return &stepClock{
		now:    time.Unix(1_700_000_000, 0),
		ticks:  make(chan time.Time),
		period: make(chan time.Duration, 1),
	}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) NewTicker(d time.Duration) Ticker {
	c.period <- d
	return stepTicker{c.ticks}
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *stepClock) tick(t *testing.T) {
	t.Helper()
	select {
	case c.ticks <- c.Now():
	case <-time.After(wait):
		t.Fatal("supervisor did not take a tick")
	}
}

type stepTicker struct{ c chan time.Time }

func (s stepTicker) C() <-chan time.Time { return s.c }
func (s stepTicker) Stop()               {}

// recorder is a slog.Handler that keeps the records.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// find returns the records with msg, each as its attributes.
func (r *recorder) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// harness runs a supervisor on a stepClock and a Fake. Every tick is
// followed by a signal on ticked once Run has finished with it, so a test
// sees the whole effect of each tick without polling.
type harness struct {
	clk    *stepClock
	dev    *Fake
	sup    *Supervisor
	logs   *recorder
	ticked chan struct{}
	period time.Duration
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, timeout time.Duration, opts ...Option) *harness {
	t.Helper()
	h := &harness{clk: newStepClock(), dev: NewFake(timeout), logs: &recorder{}, ticked: make(chan struct{})}
	opts = append([]Option{WithClock(h.clk)}, opts...)
	h.sup = NewSupervisor(h.dev, slog.New(h.logs), opts...)
	h.sup.onTick = func() { h.ticked <- struct{}{} }
	return h
}

// start runs the supervisor through the tick it makes at once.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	h.waitTicked(t)
	h.period = <-h.clk.period
}

func (h *harness) waitTicked(t *testing.T) {
	t.Helper()
	select {
	case <-h.ticked:
	case <-time.After(wait):
		t.Fatal("tick not finished")
	}
}

// step moves the clock by d and has Run judge one tick.
func (h *harness) step(t *testing.T, d time.Duration) {
	t.Helper()
	h.clk.advance(d)
	h.clk.tick(t)
	h.waitTicked(t)
}

// fed checks that the last tick fed the device.
func (h *harness) fed(t *testing.T) {
	t.Helper()
	select {
	case <-h.dev.Fed():
	default:
		t.Fatal("not fed")
	}
}

func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func waitFeed(t *testing.T, f *Fake) time.Time {
	t.Helper()
	select {
	case at := <-f.Fed():
		return at
	case <-time.After(wait):
		t.Fatal("no feed")
		return time.Time{}
	}
}

func noFeed(t *testing.T, f *Fake) {
	t.Helper()
	select {
	case <-f.Fed():
		t.Fatal("fed after the stall")
	default:
	}
}

func waitStalled(t *testing.T, s *Supervisor) {
	t.Helper()
	select {
	case <-s.Stalled():
	case <-time.After(wait):
		t.Fatal("stall not detected")
	}
}

const stallMsg = "watchdog feeding stopped: loop stalled; the board will reset"

func TestSupervisorFeedsWhileHeartbeatsFresh(t *testing.T) {
	h := newHarness(t, 9*time.Second)
	pay := h.sup.Register("payment", 10*time.Second)
	jrn := h.sup.Register("journal", 10*time.Second)
	h.start(t)
	h.fed(t)
	if h.period != 3*time.Second {
		t.Fatalf("feeds every %v, want a third of the 9s timeout", h.period)
	}
	for range 5 {
		h.clk.advance(h.period)
		pay.Beat()
		jrn.Beat()
		h.step(t, 0)
		h.fed(t)
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
}

func TestSupervisorStopsFeedingWhenALoopStalls(t *testing.T) {
	h := newHarness(t, 9*time.Second)
	pos := h.sup.Register("pos-server", 10*time.Second)
	pay := h.sup.Register("payment", 9*time.Second)
	h.start(t)
	h.fed(t)

	// payment goes quiet; silent for exactly its limit is still fresh.
	for range 3 {
		h.clk.advance(3 * time.Second)
		pos.Beat()
		h.step(t, 0)
		h.fed(t)
	}
	fedBefore := h.dev.Feeds()
	lastFeed := h.dev.LastFeed()

	h.clk.advance(3 * time.Second)
	pos.Beat()
	h.step(t, 0)
	waitStalled(t, h.sup)
	noFeed(t, h.dev)

	for range 3 {
		h.clk.advance(3 * time.Second)
		pos.Beat()
		pay.Beat() // coming back does not withdraw the reset
		h.step(t, 0)
		noFeed(t, h.dev)
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
}

func TestSupervisorReportsTheMostOverdueLoop(t *testing.T) {
	h := newHarness(t, 3*time.Second)
	h.sup.Register("journal", 2*time.Second)
	h.sup.Register("kpos-receiver", 500*time.Millisecond)
	h.start(t)
	h.fed(t)
	h.step(t, 3*time.Second)
	waitStalled(t, h.sup)
	noFeed(t, h.dev)
	logs := h.logs.find(stallMsg)
	if len(logs) != 1 || logs[0]["loop"] != "kpos-receiver" || logs[0]["also_stalled"] != "journal" {
		t.Fatalf("stall log %v", logs)
	}
}

// The evidence asked for in issue 5, on real time: with a loop stalled,
// the feeds stop, so the board resets within the timeout.
func TestSupervisorStallStopsFeedsInRealTime(t *testing.T) {
	const (
		timeout    = 60 * time.Millisecond // feeds every 20ms
		maxSilence = 30 * time.Millisecond
	)
	dev := NewFake(timeout)
	sup := NewSupervisor(dev, nil)
	pay := sup.Register("payment", maxSilence)
	sup.Register("journal", time.Hour)

	stop := make(chan struct{})
	lastBeat := make(chan [2]time.Time, 1)
	go func() {
		tk := time.NewTicker(maxSilence / 6)
		defer tk.Stop()
		before, after := time.Now(), time.Now()
		for {
			select {
			case <-stop:
				lastBeat <- [2]time.Time{before, after}
				return
			case <-tk.C:
				before = time.Now()
				pay.Beat()
				after = time.Now()
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

	for range 4 {
		waitFeed(t, dev)
	}
	select {
	case <-sup.Stalled():
		t.Fatal("stalled while the loop beats")
	default:
	}
	close(stop)
	beat := <-lastBeat
	waitStalled(t, sup)
	detected := time.Now()
	fed := dev.Feeds()
	lastFeed := dev.LastFeed()

	if d := detected.Sub(beat[0]); d < maxSilence {
		t.Fatalf("stall declared %v after the last beat, before its %v limit", d, maxSilence)
	}
	// A feed is only made while the loop is fresh, so the last one comes
	// at most maxSilence after the last beat, plus scheduling slack.
	if d := lastFeed.Sub(beat[1]); d > maxSilence+timeout {
		t.Fatalf("last feed %v after the last beat", d)
	}

	window := time.NewTimer(3 * timeout)
	defer window.Stop()
	for open := true; open; {
		select {
		case at := <-dev.Fed():
			if at.After(lastFeed) {
				t.Fatalf("fed %v after the stall was detected", at.Sub(detected))
			}
		case <-window.C:
			open = false
		}
	}
	if got := dev.Feeds(); got != fed {
		t.Fatalf("%d feeds after the stall", got-fed)
	}
	if !dev.Expired(time.Now()) {
		t.Fatal("a real board would still be running")
	}
}

func TestSupervisorCleanStopDisarms(t *testing.T) {
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
}

func TestSupervisorStoppedHeartbeatIsIgnored(t *testing.T) {
	h := newHarness(t, 9*time.Second)
	kpos := h.sup.Register("kpos-receiver", time.Second)
	kpos.Stop()
	h.start(t)
	h.fed(t)
	h.step(t, 3*time.Second)
	h.fed(t)
	if st := h.sup.Status(); !st.Heartbeats[0].Stopped || !st.Heartbeats[0].Healthy {
		t.Fatalf("status %+v", st.Heartbeats)
	}

	// Registered again, it counts from now.
	h.sup.Register("kpos-receiver", 4*time.Second)
	h.step(t, 3*time.Second)
	h.fed(t)
	h.step(t, 3*time.Second)
	waitStalled(t, h.sup)
	noFeed(t, h.dev)
	if st := h.sup.Status(); len(st.Heartbeats) != 1 || st.Stalled != "kpos-receiver" {
		t.Fatalf("status %+v", st)
	}
}

func TestSupervisorLogsFeedFailuresOncePerStreak(t *testing.T) {
	h := newHarness(t, 9*time.Second)
	h.start(t)
	h.fed(t)
	boom := errors.New("watchdog: feed fake: boom")
	h.dev.SetFeedError(boom)
	for range 3 {
		h.step(t, 3*time.Second)
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
	h.step(t, 3*time.Second)
	h.fed(t)
	if len(h.logs.find("watchdog feed recovered")) != 1 {
		t.Fatal("recovery not logged")
	}
	if err := h.sup.Check(); err != nil {
		t.Fatalf("Check after recovery: %v", err)
	}
}

func TestSupervisorCheckBeforeRunAndOnSilentLoop(t *testing.T) {
	h := newHarness(t, 9*time.Second)
	h.sup.Register("journal", 10*time.Second)
	if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Check before Run: %v", err)
	}
	h.start(t)
	// Silent past its limit but not yet judged by a tick.
	h.clk.advance(11 * time.Second)
	if err := h.sup.Check(); err == nil || !strings.Contains(err.Error(), `"journal" silent for 11s`) {
		t.Fatalf("Check: %v", err)
	}
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
