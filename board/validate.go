package board

import (
	"errors"
	"fmt"
	"time"
)

// Validate checks a profile as the config makes it (a kind's defaults
// with the operator's overrides) without touching the hardware, every
// problem at once, each naming its key as the config file's [board]
// spells it so that the caller needs only to put the section before it:
// a pin given two roles, what a strict board (generic) cannot default,
// the syntax of its pins, the printer's baud. Whether the pins exist
// is known only when Open resolves them. printerEnabled says whether
// receipts are on, which is when a printer device is needed.
func (p Profile) Validate(printerEnabled bool) error {
	errs := p.validateClashes()
	if p.Strict {
		errs = append(errs, p.validateGeneric(printerEnabled)...)
	}
	if b := p.PrinterBaud; b < 1200 || b > 921600 {
		errs = append(errs, fmt.Errorf("printer_baud %d: want 1200 to 921600", b))
	}
	return errors.Join(errs...)
}

// Watchdog timeout bounds: under 2 s a busy board misses a feed and
// reboots for nothing; over a minute a hung kiosk stays hung that long.
const (
	MinWatchdogTimeout = 2 * time.Second
	MaxWatchdogTimeout = time.Minute
)

// ValidateWatchdogTimeout checks the [board] watchdog_timeout. It is not
// a Profile field: a kind's watchdog has no default timeout of its own.
func ValidateWatchdogTimeout(d time.Duration) error {
	if d < MinWatchdogTimeout || d > MaxWatchdogTimeout {
		return fmt.Errorf("watchdog_timeout %s: want 2s to 1m (the Pi caps it near 15s)", d)
	}
	return nil
}

// keyedPins are the profile's pins by their [board] key.
func (p Profile) keyedPins() []struct{ key, pin string } {
	return []struct{ key, pin string }{{"relay_pin", p.Relay}, {"relay_sense_pin", p.RelaySense},
		{"led_green", p.LEDGreen}, {"led_amber", p.LEDAmber}, {"led_red", p.LEDRed}}
}

// validateClashes reports a pin given two roles (relay, drop sensor, LEDs):
// periph would happily drive an LED pattern onto the relay input.
func (p Profile) validateClashes() []error {
	var errs []error
	keys := map[string]string{}
	for _, r := range p.keyedPins() {
		if r.pin == "" {
			continue
		}
		if other, ok := keys[r.pin]; ok {
			errs = append(errs, fmt.Errorf("%s %q is also %s", r.key, r.pin, other))
			continue
		}
		keys[r.pin] = r.key
	}
	return errs
}

// validateGeneric checks what a generic board cannot default: nothing of its
// header, UARTs or watchdog is known, so the relay pin and the watchdog
// must be named, and the printer when receipts are on.
func (p Profile) validateGeneric(printerEnabled bool) []error {
	var errs []error
	required := func(key, v, what string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required for board kind %q (%s)", key, p.Kind, what))
		}
	}
	required("relay_pin", p.Relay, `a GPIO line name such as "GPIO17", or "gpiochip0:17"`)
	required("watchdog_device", p.WatchdogDevice, `the hardware watchdog, such as "/dev/watchdog"`)
	if printerEnabled {
		required("printer_device", p.PrinterDevice, `the receipt printer's serial device, such as "/dev/ttyS0", or printer.enabled = false`)
	}
	for _, r := range p.keyedPins() {
		if r.pin == "" {
			continue
		}
		if _, _, err := ParsePin(r.pin); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", r.key, r.pin, err))
		}
	}
	return errs
}
