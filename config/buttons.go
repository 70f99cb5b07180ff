package config

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Button is one [[buttons]] entry: a price button on a GPIO input that
// starts a payment of its price (docs/operations.md, "Standalone
// machines: price buttons").
type Button struct {
	Name string `toml:"name"`
	Pin  string `toml:"pin"`  // named as [board]'s pins are
	Pull string `toml:"pull"` // "up", "down" or "none"
	// ActiveLow is whether pressed reads low; absent, it follows pull (a
	// button to ground on a pull-up is active low), and with pull =
	// "none" it must be given.
	ActiveLow *bool     `toml:"active_low"`
	Debounce  *Duration `toml:"debounce"` // absent: DefaultDebounce
	Price     string    `toml:"price"`    // RM, as payment.ParseAmount reads it
	Mode      string    `toml:"mode"`
	Provider  string    `toml:"provider"` // "" for mobypay
}

// Bounds of [[buttons]].
const (
	// DefaultDebounce covers the bounce of ordinary push buttons
	// (typically under 10 ms) with room, and is far shorter than a press.
	DefaultDebounce = 30 * time.Millisecond
	minDebounce     = 5 * time.Millisecond // a few of the machine's polls
	maxDebounce     = time.Second          // longer and a quick press is lost
	maxButtons      = 16
	maxButtonName   = 32 // it goes into the payment's idempotency key
)

var pulls = map[string]gpio.Pull{"up": gpio.PullUp, "down": gpio.PullDown, "none": gpio.Float}

// validateButtons checks [[buttons]], every problem at once, each under
// its entry's key ("buttons[0].price"). Whether a pin exists is known
// only when the board opens it, which refuses the start if it does not;
// here a pin already given to the board or another button is refused,
// and on a strict board its syntax.
func (c *Config) validateButtons() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Buttons) > maxButtons {
		bad("buttons: %d entries, want at most %d", len(c.Buttons), maxButtons)
	}
	prof, perr := c.BoardProfile() // its own error is reported under board.kind
	used := map[string]string{}
	if perr == nil {
		for _, p := range []struct{ key, pin string }{{"relay_pin", prof.Relay}, {"relay_sense_pin", prof.RelaySense},
			{"led_green", prof.LEDGreen}, {"led_amber", prof.LEDAmber}, {"led_red", prof.LEDRed}} {
			if p.pin != "" {
				used[p.pin] = "board." + p.key
			}
		}
	}
	names := map[string]int{}
	for i, b := range c.Buttons {
		key := fmt.Sprintf("buttons[%d]", i)
		if !validButtonName(b.Name) {
			bad("%s.name %q: want 1 to %d of a-z, 0-9, - and _, starting with a letter or digit", key, b.Name, maxButtonName)
		} else if j, dup := names[b.Name]; dup {
			bad("%s.name %q: buttons[%d] has the same name", key, b.Name, j)
		} else {
			names[b.Name] = i
		}
		switch other, clash := used[b.Pin]; {
		case b.Pin == "":
			bad("%s.pin: required (a GPIO input, named as [board]'s pins are)", key)
		case clash:
			bad("%s.pin %q is also %s", key, b.Pin, other)
		default:
			used[b.Pin] = key + ".pin"
			if perr == nil && prof.Strict {
				if _, _, err := board.ParsePin(b.Pin); err != nil {
					bad("%s.pin %q: %v", key, b.Pin, err)
				}
			}
		}
		if _, ok := pulls[b.Pull]; !ok {
			bad("%s.pull %q: want up, down or none", key, b.Pull)
		}
		switch {
		case b.ActiveLow == nil && b.Pull == "none":
			bad("%s.active_low: required with pull = \"none\" (true when a press pulls the pin low)", key)
		case b.ActiveLow != nil && b.Pull == "up" && !*b.ActiveLow, b.ActiveLow != nil && b.Pull == "down" && *b.ActiveLow:
			// The pull holds the released pin at the level that would
			// read as pressed: the button would look stuck down for ever.
			bad("%s.active_low %v with pull = %q: the released button would read pressed", key, *b.ActiveLow, b.Pull)
		}
		if b.Debounce != nil && (b.Debounce.Duration < minDebounce || b.Debounce.Duration > maxDebounce) {
			bad("%s.debounce %s: want %s to %s", key, b.Debounce.Duration, minDebounce, maxDebounce)
		}
		errs = append(errs, c.validateButtonPrice(key, b.Price)...)
		if !mobypay.ValidMode(b.Mode) {
			bad("%s.mode %q: want card, bnpl, duitnow_qr or ipp", key, b.Mode)
		}
		switch b.Provider {
		case "", "mobypay":
		case "kpos":
			if !c.KPOS.Enabled {
				bad("%s.provider \"kpos\": kpos.enabled is false", key)
			}
		default:
			bad("%s.provider %q: want mobypay or kpos", key, b.Provider)
		}
	}
	return errs
}

// validateButtonPrice checks a price as the payment service would at
// each press, so that a button it would refuse is refused at start
// instead: more than 0.00, and in pulses mode a whole number of pulses,
// no more than max_pulses.
func (c *Config) validateButtonPrice(key, price string) []error {
	v, err := payment.ParseAmount(price)
	switch {
	case err != nil:
		return []error{fmt.Errorf("%s.price: %w", key, err)}
	case v <= 0:
		return []error{fmt.Errorf("%s.price %q: want more than 0.00", key, price)}
	}
	if c.Relay.Mode != RelayPulses {
		return nil
	}
	pv, err := payment.ParseAmount(c.Relay.PulseValue)
	if err != nil || pv <= 0 {
		return nil // relay.pulse_value's own error says why
	}
	if v%pv != 0 {
		return []error{fmt.Errorf("%s.price %s: not a whole number of relay.pulse_value %s", key, v, pv)}
	}
	if n := int64(v / pv); n > int64(c.Relay.MaxPulses) {
		return []error{fmt.Errorf("%s.price %s: %d pulses of %s, more than relay.max_pulses %d", key, v, n, pv, c.Relay.MaxPulses)}
	}
	return nil
}

func validButtonName(s string) bool {
	if s == "" || len(s) > maxButtonName || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// machineButtons maps [[buttons]] onto the machine's; the config was
// validated, so nothing here fails.
func (c *Config) machineButtons() []machine.ButtonConfig {
	out := make([]machine.ButtonConfig, len(c.Buttons))
	for i, b := range c.Buttons {
		price, _ := payment.ParseAmount(b.Price)
		activeLow := b.Pull == "up"
		if b.ActiveLow != nil {
			activeLow = *b.ActiveLow
		}
		debounce := DefaultDebounce
		if b.Debounce != nil {
			debounce = b.Debounce.Duration
		}
		out[i] = machine.ButtonConfig{Name: b.Name, Pin: b.Pin, Pull: pulls[b.Pull], ActiveLow: activeLow,
			Debounce: debounce, Price: price, Mode: b.Mode, Provider: b.Provider}
	}
	return out
}
