package relay

import (
	"errors"
	"fmt"
	"time"
)

// Pulse bounds: below 10 ms many relay coils do not pull in; above 30 s
// a pulse is a stuck relay, not a release.
const (
	MinPulse = 10 * time.Millisecond
	MaxPulse = 30 * time.Second
)

// Validate checks what an operator sets, naming the key as the config
// file spells it (pulse) so the caller needs only to put its section
// before it. The pins are not checked: they are the board's, and New
// refuses a missing one.
func (c Config) Validate() error {
	if c.Pulse < MinPulse || c.Pulse > MaxPulse {
		return fmt.Errorf("pulse %s: want %s to %s", c.Pulse, MinPulse, MaxPulse)
	}
	return nil
}

// Train bounds. A coin acceptor's pulse is typically 20 to 150 ms with a
// gap alike; below 10 ms a relay may not pull in and a coin-op machine's
// counter may not see it, above 5 s it is no coin pulse. The longest
// train (MaxPulses pulses, each on and off) must end within MaxTrain: a
// credit that takes longer is a misconfiguration, and kioskd's config
// holds it to a tighter bound still, the watchdog's (config.validate).
const (
	MinPulseEdge = 10 * time.Millisecond
	MaxPulseEdge = 5 * time.Second
	MaxTrain     = 10 * time.Minute
	MaxPulses    = 10000
)

// TrainConfig is a pulse train as an operator sets it: pulse_on,
// pulse_off and max_pulses, the most pulses one payment may give.
type TrainConfig struct {
	On, Off time.Duration
	Max     int
}

// Longest is how long a train of Max pulses takes.
func (c TrainConfig) Longest() time.Duration {
	return time.Duration(c.Max) * (c.On + c.Off)
}

// Validate checks the train's keys, named as the [relay] section spells
// them, and reports every problem at once.
func (c TrainConfig) Validate() error {
	var errs []error
	for _, e := range []struct {
		key string
		d   time.Duration
	}{{"pulse_on", c.On}, {"pulse_off", c.Off}} {
		if e.d < MinPulseEdge || e.d > MaxPulseEdge {
			errs = append(errs, fmt.Errorf("%s %s: want %s to %s", e.key, e.d, MinPulseEdge, MaxPulseEdge))
		}
	}
	switch {
	case c.Max < 1 || c.Max > MaxPulses:
		errs = append(errs, fmt.Errorf("max_pulses %d: want 1 to %d", c.Max, MaxPulses))
	case len(errs) == 0 && c.Longest() > MaxTrain:
		errs = append(errs, fmt.Errorf("max_pulses %d: a train of %d pulses of %s on and %s off takes %s, more than %s",
			c.Max, c.Max, c.On, c.Off, c.Longest(), MaxTrain))
	}
	return errors.Join(errs...)
}
