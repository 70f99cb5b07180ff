package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures a Supervisor.
type Option func(*Supervisor)

// WithNotifier sends systemd WATCHDOG=1 after every feed (and READY=1 and
// STOPPING=1 through Ready and a clean stop). A nil Notifier sends nothing.
// If systemd asked for a watchdog interval (WATCHDOG_USEC), the feeding
// keeps to half of it when that is shorter than a third of the device's.
func WithNotifier(n *Notifier) Option { return func(s *Supervisor) { s.notify = n } }

// Supervisor feeds a Device while every registered Heartbeat is fresh.
type Supervisor struct {
	dev     Device
	log     *slog.Logger
	notify  *Notifier
	epoch   time.Time
	stalled chan struct{}

	mu        sync.Mutex
	beats     []*Heartbeat
	state     runState
	every     time.Duration
	stalledOn string
	feeds     uint64
	lastFeed  time.Time
	feedErr   error
	notifyErr error
}

type runState int

const (
	idle runState = iota
	running
	stopped
)

// NewSupervisor returns a supervisor for dev; Run starts the feeding. A nil
// log discards.
func NewSupervisor(dev Device, log *slog.Logger, opts ...Option) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		dev:     dev,
		log:     log.With("component", "watchdog"),
		stalled: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.epoch = time.Now()
	return s
}

// Heartbeat is one critical loop's proof of life.
type Heartbeat struct {
	name       string
	maxSilence time.Duration
	epoch      time.Time
	// Stored as an offset from the supervisor's epoch: one atomic word,
	// and Sub keeps the monotonic reading of a real clock.
	last    atomic.Int64
	stopped atomic.Bool
}

// Register adds a loop that must call Beat at least every maxSilence for
// the feeding to go on; its silence is counted from now. It may be called
// before or during Run. A loop that waits on I/O should beat from a timer
// in the same select as its work, so that a beat proves the loop turns.
//
// Register panics on an empty name, a maxSilence that is not positive, or
// a name already registered and not stopped: all are wiring mistakes.
func (s *Supervisor) Register(name string, maxSilence time.Duration) *Heartbeat {
	if name == "" || maxSilence <= 0 {
		panic(fmt.Sprintf("watchdog: Register(%q, %v): need a name and a positive silence", name, maxSilence))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.beats, func(h *Heartbeat) bool { return h.name == name })
	if i >= 0 {
		if !s.beats[i].stopped.Load() {
			panic(fmt.Sprintf("watchdog: Register(%q): already registered", name))
		}
		s.beats = slices.Delete(s.beats, i, i+1)
	}
	h := &Heartbeat{name: name, maxSilence: maxSilence, epoch: s.epoch}
	h.Beat()
	s.beats = append(s.beats, h)
	return h
}

// Beat records that the loop is alive. It is safe from any goroutine and
// does not allocate; on a nil Heartbeat (no watchdog wired) it does nothing.
func (h *Heartbeat) Beat() {
	if h == nil {
		return
	}
	h.last.Store(int64(time.Since(h.epoch)))
}

// Stop takes the loop out of supervision for good, for a loop that ends on
// purpose. A stopped name may be registered again.
func (h *Heartbeat) Stop() {
	if h == nil {
		return
	}
	h.stopped.Store(true)
}

// Name is the name the loop was registered under.
func (h *Heartbeat) Name() string { return h.name }

func (h *Heartbeat) age(now time.Time) time.Duration {
	return now.Sub(h.epoch) - time.Duration(h.last.Load())
}

// Stalled is closed when a loop's silence has stopped the feeding.
func (s *Supervisor) Stalled() <-chan struct{} { return s.stalled }

// Ready tells systemd the service is up (READY=1). Call it once the
// listeners are serving. Without a notifier it does nothing.
func (s *Supervisor) Ready() error { return s.notify.Ready() }

// Run feeds the device at about a third of its timeout (or half systemd's
// interval, if shorter) while every heartbeat is fresh, until ctx ends.
//
// When a heartbeat has been silent for longer than its maxSilence, Run
// logs it once and never feeds again, so the hardware resets the board
// within the timeout; that decision is not withdrawn if the loop comes
// back, since a loop that hung once is not trusted with the money.
//
// When ctx ends, Run disarms the device with the magic close and returns
// nil. After a stall it leaves the device armed and returns an error: the
// reset stands, unless a restarted kioskd opens the device and feeds it.
// Run owns dev from the start; the caller closes dev only if Run is never
// called.
func (s *Supervisor) Run(ctx context.Context) error {
	timeout := s.dev.Timeout()
	if timeout <= 0 {
		return fmt.Errorf("watchdog: device timeout %v: must be positive", timeout)
	}
	every := timeout / 3
	if w := s.notify.WatchdogInterval(); w > 0 {
		every = min(every, w/2)
	}
	s.mu.Lock()
	if s.state != idle {
		s.mu.Unlock()
		return errors.New("watchdog: Run called twice")
	}
	s.state = running
	s.every = every
	names := make([]string, 0, len(s.beats))
	for _, h := range s.beats {
		names = append(names, h.name)
	}
	s.mu.Unlock()

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	attrs := []any{"timeout", timeout, "feed_every", every, "loops", strings.Join(names, ",")}
	if id, ok := s.dev.(identifier); ok {
		attrs = append(attrs, "device", id.Identity())
	}
	s.log.Info("watchdog armed", attrs...)
	s.tick()
	for {
		select {
		case <-ctx.Done():
			return s.stop()
		case <-ticker.C:
			s.tick()
		}
	}
}

// tick judges the heartbeats and feeds if they are all fresh.
func (s *Supervisor) tick() {
	now := time.Now()
	s.mu.Lock()
	if s.stalledOn != "" {
		s.mu.Unlock()
		return
	}
	var worst *Heartbeat
	var worstAge, worstOver time.Duration
	var others []string
	for _, h := range s.beats {
		if h.stopped.Load() {
			continue
		}
		age := h.age(now)
		over := age - h.maxSilence
		if over <= 0 {
			continue
		}
		if worst == nil || over > worstOver {
			if worst != nil {
				others = append(others, worst.name)
			}
			worst, worstAge, worstOver = h, age, over
		} else {
			others = append(others, h.name)
		}
	}
	if worst != nil {
		s.stalledOn = worst.name
		lastFeed := s.lastFeed
		close(s.stalled)
		s.mu.Unlock()
		attrs := []any{"loop", worst.name, "silent_for", worstAge, "max_silence", worst.maxSilence,
			"reset_within", max(0, s.dev.Timeout()-now.Sub(lastFeed))}
		if len(others) > 0 {
			attrs = append(attrs, "also_stalled", strings.Join(others, ","))
		}
		s.log.Error("watchdog feeding stopped: loop stalled; the board will reset", attrs...)
		return
	}
	s.mu.Unlock()

	err := s.dev.Feed()
	s.mu.Lock()
	prevErr := s.feedErr
	s.feedErr = err
	if err == nil {
		s.feeds++
		s.lastFeed = now
	}
	s.mu.Unlock()
	switch {
	case err != nil && prevErr == nil:
		s.log.Warn("watchdog feed failed", "err", err)
	case err == nil && prevErr != nil:
		s.log.Info("watchdog feed recovered")
	}
	if err == nil {
		s.sendNotify("WATCHDOG=1")
	}
}

func (s *Supervisor) sendNotify(state string) {
	if s.notify == nil {
		return
	}
	err := s.notify.Notify(state)
	s.mu.Lock()
	prev := s.notifyErr
	s.notifyErr = err
	s.mu.Unlock()
	if err != nil && prev == nil {
		s.log.Warn("systemd notify failed", "state", state, "err", err)
	}
}

func (s *Supervisor) stop() error {
	s.mu.Lock()
	s.state = stopped
	stalledOn := s.stalledOn
	s.mu.Unlock()
	if stalledOn != "" {
		s.log.Warn("watchdog left armed after a stall; the board will reset", "loop", stalledOn)
		return fmt.Errorf("watchdog: loop %q stalled: left armed so the board resets", stalledOn)
	}
	s.sendNotify("STOPPING=1")
	if err := s.dev.Close(); err != nil {
		s.log.Error("watchdog disarm failed", "err", err)
		return err
	}
	s.log.Info("watchdog disarmed")
	return nil
}

// Status is the supervisor's state for `kioskd status`.
type Status struct {
	Running     bool          // Run is judging the heartbeats
	Feeding     bool          // running and no loop has stalled
	Stalled     string        // the loop whose silence stopped the feeding, or ""
	Device      string        // the driver's name, when the device gives one
	Timeout     time.Duration // the device's, as its driver set it
	Interval    time.Duration // between feeds; zero before Run
	Feeds       uint64        // successful feeds
	LastFeedAge time.Duration // since the last successful feed; zero if none
	FeedError   string        // the last feed's error, or "" if it succeeded
	Heartbeats  []HeartbeatStatus
}

// HeartbeatStatus is one loop's state.
type HeartbeatStatus struct {
	Name       string
	MaxSilence time.Duration
	Age        time.Duration // since its last beat (or its registration)
	Healthy    bool          // Age within MaxSilence, or stopped
	Stopped    bool
}

// Status reports the current state.
func (s *Supervisor) Status() Status {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Running:  s.state == running,
		Feeding:  s.state == running && s.stalledOn == "",
		Stalled:  s.stalledOn,
		Timeout:  s.dev.Timeout(),
		Interval: s.every,
		Feeds:    s.feeds,
	}
	if id, ok := s.dev.(identifier); ok {
		st.Device = id.Identity()
	}
	if s.feeds > 0 {
		st.LastFeedAge = now.Sub(s.lastFeed)
	}
	if s.feedErr != nil {
		st.FeedError = s.feedErr.Error()
	}
	st.Heartbeats = make([]HeartbeatStatus, 0, len(s.beats))
	for _, h := range s.beats {
		age := h.age(now)
		stopped := h.stopped.Load()
		st.Heartbeats = append(st.Heartbeats, HeartbeatStatus{
			Name: h.name, MaxSilence: h.maxSilence, Age: age,
			Healthy: stopped || age <= h.maxSilence, Stopped: stopped,
		})
	}
	return st
}

// Check reports, for selftest, whether the watchdog is being fed and every
// loop is fresh; the error says what is wrong.
func (s *Supervisor) Check() error {
	st := s.Status()
	switch {
	case st.Stalled != "":
		return fmt.Errorf("watchdog: feeding stopped: loop %q stalled; the board will reset", st.Stalled)
	case !st.Running:
		return errors.New("watchdog: supervisor not running")
	}
	var errs []error
	for _, h := range st.Heartbeats {
		if !h.Healthy {
			errs = append(errs, fmt.Errorf("watchdog: loop %q silent for %v (limit %v)", h.Name, h.Age, h.MaxSilence))
		}
	}
	switch {
	case st.FeedError != "":
		errs = append(errs, fmt.Errorf("watchdog: last feed failed: %s", st.FeedError))
	case st.Feeds == 0:
		errs = append(errs, errors.New("watchdog: not fed yet"))
	case st.LastFeedAge > st.Timeout:
		errs = append(errs, fmt.Errorf("watchdog: not fed for %v, past the %v timeout", st.LastFeedAge, st.Timeout))
	}
	return errors.Join(errs...)
}
