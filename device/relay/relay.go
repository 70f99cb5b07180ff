// Package relay drives the vend relay: one pulse releases one product,
// or a train of pulses gives a coin-op machine its credit as a coin
// acceptor would.
package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// ErrNoDispense is returned when a drop sensor is fitted and saw nothing.
var ErrNoDispense = errors.New("relay: no dispense detected")

// Config describes the relay wiring.
type Config struct {
	Pin       gpio.PinOut
	ActiveLow bool          // most relay boards switch on a low input
	Pulse     time.Duration // how long the coil is energised
	// Sense is an optional drop sensor. When set, a pulse counts only if
	// the sensor sees an edge within SenseWait after the pulse starts.
	Sense     gpio.PinIn
	SenseWait time.Duration
}

// Relay is safe for concurrent use; pulses never overlap.
type Relay struct {
	cfg Config

	// pulse serialises pulses; mu guards the state below and is never held
	// across a pulse, so status can be read while the coil is energised.
	pulse  sync.Mutex
	mu     sync.Mutex
	on     bool
	pulses int
	last   time.Time
	err    error
}

// New puts the relay in its safe state (off) before returning it.
func New(cfg Config) (*Relay, error) {
	if cfg.Pin == nil {
		return nil, errors.New("relay: no pin")
	}
	if cfg.Pulse <= 0 {
		return nil, errors.New("relay: pulse must be positive")
	}
	if cfg.Sense != nil {
		if cfg.SenseWait <= 0 {
			cfg.SenseWait = 2 * time.Second
		}
		if err := cfg.Sense.In(gpio.PullUp, gpio.BothEdges); err != nil {
			return nil, fmt.Errorf("relay: drop sensor %s: %w", cfg.Sense, err)
		}
	}
	r := &Relay{cfg: cfg}
	if err := r.Safe(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Relay) level(on bool) gpio.Level {
	return gpio.Level(on != r.cfg.ActiveLow)
}

func (r *Relay) set(on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cfg.Pin.Out(r.level(on)); err != nil {
		return fmt.Errorf("relay: %s: %w", r.cfg.Pin, err)
	}
	r.on = on
	if on {
		r.pulses++
		r.last = time.Now()
	}
	return nil
}

// Safe switches the relay off. It is called at start and at halt, and
// after every pulse whatever happened.
func (r *Relay) Safe() error { return r.set(false) }

// Pulse energises the relay for the configured time. If ctx ends first
// the coil is released at once; the pulse has still happened and is
// counted, because the product may already have dropped.
func (r *Relay) Pulse(ctx context.Context) error {
	r.pulse.Lock()
	defer r.pulse.Unlock()
	if err := r.set(true); err != nil {
		r.set(false)
		r.setErr(err)
		return err
	}
	sensed := make(chan bool, 1)
	if r.cfg.Sense != nil {
		go func() { sensed <- r.cfg.Sense.WaitForEdge(r.cfg.SenseWait) }()
	}
	timer := time.NewTimer(r.cfg.Pulse)
	var err error
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		err = fmt.Errorf("relay: pulse cut short: %w", ctx.Err())
	}
	if offErr := r.set(false); offErr != nil && err == nil {
		err = offErr
	}
	if r.cfg.Sense != nil && err == nil && !<-sensed {
		err = ErrNoDispense
	}
	r.setErr(err)
	return err
}

// TrainHooks are called around each pulse of a train, k counting from 1.
// Before runs just before pulse k energises the coil; After runs once
// pulse k has ended (the coil released) and before pulse k+1 may start,
// while the off time runs. An error from either stops the train with the
// relay released: After is how the caller journals each pulse before the
// next, so a pulse never follows one that is not on record.
type TrainHooks struct {
	Before func(k int) error
	After  func(k int) error
}

// Train emits n pulses: the coil energised for on, released for off
// between pulses. It returns how many pulses completed (After returned
// nil for them) and the first error. Whatever happens the relay is
// released before Train returns; a pulse cut short by ctx has still
// happened and is counted in State, as for Pulse, but not in done.
func (r *Relay) Train(ctx context.Context, n int, on, off time.Duration, h TrainHooks) (done int, err error) {
	r.pulse.Lock()
	defer r.pulse.Unlock()
	defer func() {
		if offErr := r.set(false); offErr != nil && err == nil {
			err = offErr
		}
		r.setErr(err)
	}()
	wait := func(t *time.Timer, what string, k int) error {
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("relay: train cut short in %s of pulse %d of %d: %w", what, k, n, ctx.Err())
		}
	}
	for k := 1; k <= n; k++ {
		if h.Before != nil {
			if err := h.Before(k); err != nil {
				return done, err
			}
		}
		if err := r.set(true); err != nil {
			return done, err
		}
		if err := wait(time.NewTimer(on), "the on time", k); err != nil {
			return done, err
		}
		if err := r.set(false); err != nil {
			return done, err
		}
		// The off time runs while After journals the pulse: a commit
		// slower than off lengthens the gap, never shortens it.
		gap := time.NewTimer(off)
		if h.After != nil {
			if err := h.After(k); err != nil {
				gap.Stop()
				return done, err
			}
		}
		done = k
		if k == n {
			gap.Stop()
			break
		}
		if err := wait(gap, "the off time after", k); err != nil {
			return done, err
		}
	}
	return done, nil
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// State is what status and selftest show.
type State struct {
	On        bool      `json:"on"`
	Pulses    int       `json:"pulses"`
	LastPulse time.Time `json:"last_pulse,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// State returns the relay's state.
func (r *Relay) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := State{On: r.on, Pulses: r.pulses, LastPulse: r.last}
	if r.err != nil {
		s.LastError = r.err.Error()
	}
	return s
}
