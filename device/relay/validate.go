package relay

import (
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
