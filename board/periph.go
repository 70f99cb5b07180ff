package board

import (
	"errors"
	"fmt"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
)

// periphBoard is a Raspberry Pi: its pins are periph's, by BCM name,
// from whichever GPIO driver host.Init loaded (chardev on the Pi 4/5,
// /dev/gpiomem on the Pi 3).
type periphBoard struct{ p Profile }

func (d periphBoard) Profile() Profile { return d.p }

func (periphBoard) Open(Profile, Options) (Pins, error) {
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("periph host init: %w", err)
	}
	return periphPins{state}, nil
}

type periphPins struct{ state *driverreg.State }

func (periphPins) Sidecar() Sidecar { return nil }

func (r periphPins) Resolve(specs []PinSpec) ([]gpio.PinIO, []error) {
	out := make([]gpio.PinIO, len(specs))
	var errs []error
	for i, s := range specs {
		if s.Pin == "" {
			continue
		}
		pin := gpioreg.ByName(s.Pin)
		if pin == nil {
			errs = append(errs, fmt.Errorf("%s pin %q does not exist (%s)", s.Role, s.Pin, gpioregWhy(r.state)))
			continue
		}
		out[i] = pin
	}
	return out, withDriverFailures(errs, r.state)
}

// chardevBoard is a generic Linux board: only the chardev driver's
// lines. periph's sysfs-gpio driver registers the same lines in gpioreg
// under global numbers, and touching one of those exports it through
// sysfs, after which the chardev request for it fails "busy".
type chardevBoard struct{ p Profile }

func (d chardevBoard) Profile() Profile { return d.p }

func (chardevBoard) Open(Profile, Options) (Pins, error) {
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("periph host init: %w", err)
	}
	return chardevPins{state}, nil
}

type chardevPins struct{ state *driverreg.State }

func (chardevPins) Sidecar() Sidecar { return nil }

func (r chardevPins) Resolve(specs []PinSpec) ([]gpio.PinIO, []error) {
	out := make([]gpio.PinIO, len(specs))
	refs, errs := resolveLines(chardevChips(gpioioctl.Chips), specs)
	for i, ref := range refs {
		if ref.chip >= 0 {
			out[i] = gpioioctl.Chips[ref.chip].Lines()[ref.offset]
		}
	}
	return out, withDriverFailures(errs, r.state)
}

// withDriverFailures adds, after pins that did not resolve, what periph's
// drivers said when they failed to load: the real cause behind them,
// where there is one.
func withDriverFailures(errs []error, state *driverreg.State) []error {
	if len(errs) == 0 {
		return nil
	}
	if f := driverFailures(state); f != "" {
		errs = append(errs, errors.New(f))
	}
	return errs
}

// gpioregWhy says what periph loaded, for a Pi pin that did not resolve.
func gpioregWhy(state *driverreg.State) string {
	loaded := make([]string, 0, len(state.Loaded))
	for _, d := range state.Loaded {
		loaded = append(loaded, d.String())
	}
	if len(loaded) == 0 {
		return "no GPIO driver loaded: is this a Raspberry Pi, and can kioskd open /dev/gpiochip* or /dev/gpiomem?"
	}
	return "GPIO drivers loaded: " + strings.Join(loaded, ", ")
}

// driverFailures is what periph's drivers said when they failed to load
// (a chip that cannot be opened, a missing /dev/gpiomem), bounded to a
// console line.
func driverFailures(state *driverreg.State) string {
	if state == nil || len(state.Failed) == 0 {
		return ""
	}
	const most = 5
	var fs []string
	for i, f := range state.Failed {
		if i == most {
			fs = append(fs, fmt.Sprintf("and %d more", len(state.Failed)-most))
			break
		}
		fs = append(fs, f.String())
	}
	return "periph drivers that failed to load: " + strings.Join(fs, "; ")
}
