// Package led shows the machine's state on three LEDs: green (link and
// success), amber (payment in progress) and red (decline and faults).
package led

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Pattern is what the panel shows.
type Pattern string

// Patterns, in the order the panel chooses them: a fault outranks
// everything, a fresh outcome outranks the payment and link states.
const (
	Fault        Pattern = "fault"        // red slow blink, until cleared
	Approved     Pattern = "approved"     // green fast blink, for Hold
	Declined     Pattern = "declined"     // red solid, for Hold
	Updating     Pattern = "updating"     // amber fast blink, green and red off: an update is installing, not selling
	InProgress   Pattern = "in_progress"  // green solid, amber fast blink
	Connected    Pattern = "connected"    // green solid
	Disconnected Pattern = "disconnected" // green slow blink
)

// Config wires the panel. Nil pins are skipped (a board may have fewer).
type Config struct {
	Green, Amber, Red gpio.PinOut
	ActiveLow         bool
	Hold              time.Duration // how long an outcome stays shown (3 s)
}

// Panel is safe for concurrent use.
type Panel struct {
	cfg Config

	mu        sync.Mutex
	connected bool
	paying    bool
	updating  bool
	outcome   Pattern
	until     time.Time
	faults    map[string]bool
	levels    [3]bool
	override  *[3]bool // selftest: fixed levels instead of the pattern
	err       error
}

// New switches every LED off and returns the panel.
func New(cfg Config) *Panel {
	if cfg.Hold <= 0 {
		cfg.Hold = 3 * time.Second
	}
	p := &Panel{cfg: cfg, faults: map[string]bool{}}
	p.write([3]bool{})
	return p
}

// SetLink records whether the payment terminal is connected.
func (p *Panel) SetLink(connected bool) {
	p.mu.Lock()
	p.connected = connected
	p.mu.Unlock()
}

// SetPaying records whether a payment is in progress.
func (p *Panel) SetPaying(paying bool) {
	p.mu.Lock()
	p.paying = paying
	p.mu.Unlock()
}

// SetUpdating records whether an update is being installed. It ranks
// below a fault and a fresh outcome (the last customer still sees theirs)
// and above everything else.
func (p *Panel) SetUpdating(on bool) {
	p.mu.Lock()
	p.updating = on
	p.mu.Unlock()
}

// Outcome shows Approved or Declined for Hold from now.
func (p *Panel) Outcome(o Pattern, now time.Time) {
	p.mu.Lock()
	p.outcome, p.until, p.paying = o, now.Add(p.cfg.Hold), false
	p.mu.Unlock()
}

// SetFault raises or clears a named fault (printer, vend, watchdog...).
func (p *Panel) SetFault(name string, on bool) {
	p.mu.Lock()
	if on {
		p.faults[name] = true
	} else {
		delete(p.faults, name)
	}
	p.mu.Unlock()
}

// Faults lists the raised faults.
func (p *Panel) Faults() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for f := range p.faults {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Pattern returns what the panel shows at now.
func (p *Panel) Pattern(now time.Time) Pattern {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pattern(now)
}

func (p *Panel) pattern(now time.Time) Pattern {
	switch {
	case len(p.faults) > 0:
		return Fault
	case p.outcome != "" && now.Before(p.until):
		return p.outcome
	case p.updating:
		return Updating
	case p.paying:
		return InProgress
	case p.connected:
		return Connected
	}
	return Disconnected
}

// blink is on for the first half of each period.
func blink(now time.Time, period time.Duration) bool {
	return now.UnixNano()%int64(period) < int64(period)/2
}

// Levels returns green, amber, red for a pattern at an instant.
func Levels(pt Pattern, now time.Time) [3]bool {
	slow, fast := blink(now, time.Second), blink(now, 250*time.Millisecond)
	switch pt {
	case Fault:
		return [3]bool{false, false, slow}
	case Approved:
		return [3]bool{fast, false, false}
	case Declined:
		return [3]bool{false, false, true}
	case InProgress:
		return [3]bool{true, fast, false}
	case Updating:
		return [3]bool{false, fast, false}
	case Connected:
		return [3]bool{true, false, false}
	}
	return [3]bool{slow, false, false}
}

// Apply sets the pins for now. Run calls it on a ticker; tests call it
// with chosen instants.
func (p *Panel) Apply(now time.Time) {
	p.mu.Lock()
	lv := Levels(p.pattern(now), now)
	if p.override != nil {
		lv = *p.override
	}
	p.mu.Unlock()
	p.write(lv)
}

// Cycle lights green, amber, red, all, then none, step apart, so a person
// can check every LED; it reports the first pin that could not be
// written. The pattern resumes afterwards.
func (p *Panel) Cycle(ctx context.Context, step time.Duration) error {
	defer func() {
		p.mu.Lock()
		p.override = nil
		p.mu.Unlock()
	}()
	var first error
	for _, lv := range [][3]bool{{true, false, false}, {false, true, false}, {false, false, true}, {true, true, true}, {}} {
		p.mu.Lock()
		p.override = &lv
		p.mu.Unlock()
		p.write(lv)
		p.mu.Lock()
		if p.err != nil && first == nil {
			first = p.err
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
	return first
}

func (p *Panel) write(lv [3]bool) {
	var err error
	for i, pin := range []gpio.PinOut{p.cfg.Green, p.cfg.Amber, p.cfg.Red} {
		if pin == nil {
			continue
		}
		if e := pin.Out(gpio.Level(lv[i] != p.cfg.ActiveLow)); e != nil && err == nil {
			err = fmt.Errorf("led: %s: %w", pin, e)
		}
	}
	p.mu.Lock()
	p.levels, p.err = lv, err
	p.mu.Unlock()
}

// Run drives the LEDs until ctx ends, then switches them off.
func (p *Panel) Run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.write([3]bool{})
			return
		case now := <-t.C:
			p.Apply(now)
		}
	}
}

// State is what status shows.
type State struct {
	Pattern   Pattern  `json:"pattern"`
	Green     bool     `json:"green"`
	Amber     bool     `json:"amber"`
	Red       bool     `json:"red"`
	Faults    []string `json:"faults,omitempty"`
	LastError string   `json:"last_error,omitempty"`
}

// State returns the pattern and the levels last written.
func (p *Panel) State(now time.Time) State {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := State{Pattern: p.pattern(now), Green: p.levels[0], Amber: p.levels[1], Red: p.levels[2]}
	for f := range p.faults {
		s.Faults = append(s.Faults, f)
	}
	slices.Sort(s.Faults)
	if p.err != nil {
		s.LastError = p.err.Error()
	}
	return s
}
