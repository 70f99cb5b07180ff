package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// edge is one level written to the pin, at the bubble's time since start.
type edge struct {
	at time.Duration
	l  gpio.Level
}

// timedPin records every level written to it and when.
type timedPin struct {
	*gpiotest.Pin
	start time.Time
	mu    sync.Mutex
	edges []edge
	fail  int // the fail-th write (1-based) errors; 0 never
}

func (p *timedPin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.edges = append(p.edges, edge{time.Since(p.start), l})
	n := len(p.edges)
	p.mu.Unlock()
	if p.fail == n {
		return errors.New("line busy")
	}
	return p.Pin.Out(l)
}

func (p *timedPin) got() []edge {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]edge(nil), p.edges...)
}

func newTrainRelay(t *testing.T, activeLow bool) (*Relay, *timedPin) {
	t.Helper()
	pin := &timedPin{Pin: &gpiotest.Pin{N: "GPIO17"}, start: time.Now()}
	r, err := New(Config{Pin: pin, ActiveLow: activeLow, Pulse: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r, pin
}

// A train of 3 is on 50 ms, off 70 ms, three times, on the bubble's
// clock: the edges fall exactly where the config says, After runs for
// each pulse after its falling edge and before the next rising one, and
// status counts 3 pulses.
func TestTrainTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pin := newTrainRelay(t, true)
		var after []time.Duration
		done, err := r.Train(context.Background(), 3, 50*time.Millisecond, 70*time.Millisecond, TrainHooks{
			After: func(k int) error {
				after = append(after, time.Since(pin.start))
				if s := r.State(); s.On || s.Pulses != k {
					t.Errorf("after pulse %d: state %+v", k, s)
				}
				return nil
			},
		})
		if err != nil || done != 3 {
			t.Fatalf("train: done %d, %v", done, err)
		}
		ms := time.Millisecond
		// Active low: high is released. Safe at New, then three pulses,
		// then the final release.
		want := []edge{{0, gpio.High},
			{0, gpio.Low}, {50 * ms, gpio.High},
			{120 * ms, gpio.Low}, {170 * ms, gpio.High},
			{240 * ms, gpio.Low}, {290 * ms, gpio.High},
			{290 * ms, gpio.High}}
		if got := pin.got(); !equalEdges(got, want) {
			t.Fatalf("edges %v, want %v", got, want)
		}
		if !equalDurations(after, []time.Duration{50 * ms, 170 * ms, 290 * ms}) {
			t.Fatalf("After at %v", after)
		}
		if s := r.State(); s.On || s.Pulses != 3 || s.LastError != "" {
			t.Fatalf("state %+v", s)
		}
	})
}

// A slow After (a journal commit slower than the off time) lengthens the
// gap; it never lets the next pulse start before After returned.
func TestTrainWaitsForAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pin := newTrainRelay(t, false)
		_, err := r.Train(context.Background(), 2, 20*time.Millisecond, 20*time.Millisecond, TrainHooks{
			After: func(k int) error { <-time.After(100 * time.Millisecond); return nil }, // the bubble's clock
		})
		if err != nil {
			t.Fatal(err)
		}
		got := pin.got()
		if second := got[3]; second.l != gpio.High || second.at != 120*time.Millisecond {
			t.Fatalf("second pulse %v (edges %v)", second, got)
		}
	})
}

// An error from After (pulse 2 not journaled) stops the train there:
// no third pulse, the relay released, 1 pulse reported done.
func TestTrainStopsOnHookError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pin := newTrainRelay(t, false)
		boom := errors.New("journal full")
		done, err := r.Train(context.Background(), 5, 50*time.Millisecond, 50*time.Millisecond, TrainHooks{
			After: func(k int) error {
				if k == 2 {
					return boom
				}
				return nil
			},
		})
		if !errors.Is(err, boom) || done != 1 {
			t.Fatalf("done %d, %v", done, err)
		}
		if s := r.State(); s.On || s.Pulses != 2 || level(pin.Pin) != gpio.Low {
			t.Fatalf("state %+v level %v", s, level(pin.Pin))
		}
		before := 0
		_, err = r.Train(context.Background(), 3, 50*time.Millisecond, 50*time.Millisecond, TrainHooks{
			Before: func(k int) error { before = k; return errors.New("sim: disk full") },
		})
		if err == nil || before != 1 || r.State().Pulses != 2 {
			t.Fatalf("Before error: %v, before %d, state %+v", err, before, r.State())
		}
	})
}

// Cancelled mid-pulse, the coil is released at once; the cut pulse is
// counted in status (it may have registered) but not as done.
func TestTrainCutShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pin := newTrainRelay(t, false)
		ctx, cancel := context.WithTimeout(context.Background(), 175*time.Millisecond)
		defer cancel()
		done, err := r.Train(ctx, 5, 50*time.Millisecond, 50*time.Millisecond, TrainHooks{})
		if !errors.Is(err, context.DeadlineExceeded) || done != 2 || !strings.Contains(err.Error(), "pulse 2 of 5") {
			t.Fatalf("done %d, %v", done, err)
		}
		if s := r.State(); s.On || s.Pulses != 2 || s.LastError == "" || level(pin.Pin) != gpio.Low {
			t.Fatalf("state %+v", s)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 225*time.Millisecond)
		defer cancel2()
		done, err = r.Train(ctx2, 5, 50*time.Millisecond, 50*time.Millisecond, TrainHooks{})
		if !errors.Is(err, context.DeadlineExceeded) || done != 2 || !strings.Contains(err.Error(), "on time of pulse 3") {
			t.Fatalf("cut in the on time: done %d, %v", done, err)
		}
		if s := r.State(); s.On || s.Pulses != 5 || level(pin.Pin) != gpio.Low {
			t.Fatalf("state %+v", s)
		}
	})
}

// A pin that fails to energise stops the train with the relay released.
func TestTrainPinError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pin := newTrainRelay(t, false)
		pin.fail = 4 // New's release, pulse 1 on, off, pulse 2 on
		done, err := r.Train(context.Background(), 3, 10*time.Millisecond, 10*time.Millisecond, TrainHooks{})
		if err == nil || !strings.HasPrefix(err.Error(), "relay: GPIO17") || done != 1 {
			t.Fatalf("done %d, %v", done, err)
		}
		if got := pin.got(); got[len(got)-1].l != gpio.Low || level(pin.Pin) != gpio.Low {
			t.Fatalf("not released: %v", got)
		}
	})
}

func TestTrainConfigValidate(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		c    TrainConfig
		want string // "" for valid
	}{
		{TrainConfig{50 * ms, 50 * ms, 100}, ""},
		{TrainConfig{10 * ms, 5 * time.Second, 1}, ""},
		{TrainConfig{9 * ms, 50 * ms, 100}, "pulse_on 9ms: want 10ms to 5s"},
		{TrainConfig{50 * ms, 6 * time.Second, 100}, "pulse_off 6s: want 10ms to 5s"},
		{TrainConfig{50 * ms, 50 * ms, 0}, "max_pulses 0: want 1 to 10000"},
		{TrainConfig{50 * ms, 50 * ms, 10001}, "max_pulses 10001: want 1 to 10000"},
		{TrainConfig{5 * time.Second, 5 * time.Second, 61}, "max_pulses 61: a train of 61 pulses of 5s on and 5s off takes 10m10s, more than 10m0s"},
	} {
		err := c.c.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.c, err, c.want)
		}
	}
	err := TrainConfig{0, 0, 0}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("every problem at once: %v", err)
	}
}

func equalEdges(a, b []edge) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
