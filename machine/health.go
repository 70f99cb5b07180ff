package machine

import (
	"fmt"
	"strings"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// HealthChecks judges this boot for the health gate: the journal reads,
// the board's pins answer, the watchdog is armed and fed with every
// heartbeat fresh, and kioskd has been up for minUp. It asks nothing of a
// POS: a kiosk whose terminal is away is still a good boot.
//
// On the sim board the watchdog is the in-memory fake (no device): it is
// "armed" when its supervisor runs and feeds it, as a real one would be,
// and its heartbeats are judged the same way.
func HealthChecks(j *payment.Journal, hw control.Hardware, up, minUp time.Duration) []control.Check {
	var out []control.Check
	add := func(name string, err error, detail string) {
		c := control.Check{Name: name, OK: err == nil, Detail: detail}
		if err != nil {
			c.Detail = err.Error()
		}
		out = append(out, c)
	}
	if _, err := j.List(1); err != nil {
		add("journal", fmt.Errorf("read failed: %w", err), "")
	} else {
		add("journal", nil, "a read transaction succeeded")
	}
	add("pins", pinFault(hw), "every pin resolved and written")
	add("watchdog", watchdogFault(hw.Watchdog), fmt.Sprintf("fed %d times, every %d heartbeats fresh", hw.Watchdog.Feeds, len(hw.Watchdog.Heartbeats)))
	if up < minUp {
		add("uptime", fmt.Errorf("up %s, less than %s", up.Truncate(time.Second), minUp), "")
	} else {
		add("uptime", nil, fmt.Sprintf("up %s, at least %s", up.Truncate(time.Second), minUp))
	}
	return out
}

// pinFault is a pin that did not take a level: the relay's or an LED's
// last write failed. A pin that could not be resolved at all refused
// the start (board.Open), so a running kioskd has every pin.
func pinFault(hw control.Hardware) error {
	var bad []string
	if hw.Relay.LastError != "" {
		bad = append(bad, "relay: "+hw.Relay.LastError)
	}
	if hw.LEDs.LastError != "" {
		bad = append(bad, "leds: "+hw.LEDs.LastError)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

func watchdogFault(wd control.Watchdog) error {
	switch {
	case !wd.Running:
		return fmt.Errorf("watchdog supervisor not running")
	case wd.Stalled != "":
		return fmt.Errorf("stalled: %s", wd.Stalled)
	case !wd.Feeding:
		return fmt.Errorf("not fed")
	case wd.FeedError != "":
		return fmt.Errorf("feed failed: %s", wd.FeedError)
	case len(wd.Heartbeats) == 0:
		return fmt.Errorf("no heartbeats registered yet")
	}
	var stale []string
	for _, hb := range wd.Heartbeats {
		if !hb.Healthy && !hb.Stopped {
			stale = append(stale, fmt.Sprintf("%s silent %s (max %s)", hb.Name, hb.Age.Truncate(time.Millisecond), hb.MaxSilence))
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("stale heartbeat: %s", strings.Join(stale, ", "))
	}
	return nil
}
