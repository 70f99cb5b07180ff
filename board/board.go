// Package board knows the machines kioskd runs on: which pins drive the
// relay and LEDs, where the printer and watchdog are, and, for real
// boards, the one call to periph's host.Init. The sim board gives the
// same pins as periph gpiotest fakes, for development and tests.
package board

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"github.com/kioskd/kioskd/device/gpiocdev"
)

// Profile is a board's wiring. Every field can be overridden by config.
type Profile struct {
	Kind           string
	Relay          string // vend relay input: a BCM name on the Pis, see ParsePin on generic
	RelayActiveLow bool   // relay boards commonly switch on a low input
	RelaySense     string // optional drop sensor input, "" for none
	LEDGreen       string
	LEDAmber       string
	LEDRed         string
	LEDActiveLow   bool
	PrinterDevice  string // serial device of the receipt printer ("" on sim: simulated)
	PrinterBaud    int
	WatchdogDevice string // "" on sim: simulated
}

// The Pi profiles use BCM numbering on the 40-pin header: GPIO17 (pin 11)
// for the relay, GPIO22/23/24 (pins 15/16/18) for the LEDs, the primary
// UART for the printer. The Pi 5's RP1 UART0 on the header is ttyAMA0.
// generic is any other Linux board: nothing about its header, UARTs or
// watchdog is known, so the config names each (only the polarity that
// most relay modules share is assumed), and its pins resolve through the
// GPIO character devices alone.
var profiles = map[string]Profile{
	"rpi3": {Kind: "rpi3", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
		PrinterDevice: "/dev/serial0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"},
	"rpi4": {Kind: "rpi4", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
		PrinterDevice: "/dev/serial0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"},
	"rpi5": {Kind: "rpi5", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
		PrinterDevice: "/dev/ttyAMA0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"},
	"generic": {Kind: "generic", RelayActiveLow: true, PrinterBaud: 9600},
	"sim": {Kind: "sim", Relay: "SIM_RELAY", RelayActiveLow: true, LEDGreen: "SIM_LED_GREEN", LEDAmber: "SIM_LED_AMBER",
		LEDRed: "SIM_LED_RED", PrinterBaud: 9600},
}

// Kinds lists the known boards.
func Kinds() []string {
	var k []string
	for name := range profiles {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

// Lookup returns the default profile of a board kind.
func Lookup(kind string) (Profile, error) {
	p, ok := profiles[kind]
	if !ok {
		return Profile{}, fmt.Errorf("board: unknown kind %q (want %s)", kind, strings.Join(Kinds(), ", "))
	}
	return p, nil
}

// Board is an opened board: every configured pin resolved.
type Board struct {
	Profile
	Relay             gpio.PinOut
	Sense             gpio.PinIO // nil without a drop sensor
	Green, Amber, Red gpio.PinOut
	// SimPins are the fake pins of the sim board, by name, so that tests
	// and the simulator's display can read and drive them.
	SimPins map[string]*gpiotest.Pin
}

// Sim reports the simulated board.
func (b *Board) Sim() bool { return b.Kind == "sim" }

// Open resolves every pin of the profile. periph's host.Init returns no
// error when no driver loaded (on a PC, or with /dev/gpiomem missing), so
// each pin is looked up and a board whose pins do not all resolve is
// refused, naming the pin.
func Open(p Profile) (*Board, error) {
	if p.Kind == "sim" {
		return openSim(p), nil
	}
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("board: periph host init: %w", err)
	}
	b := &Board{Profile: p}
	out := func(dst *gpio.PinOut) func(gpio.PinIO) { return func(p gpio.PinIO) { *dst = p } }
	slots := []struct {
		pinSpec
		optional bool
		set      func(gpio.PinIO)
	}{
		{pinSpec{"relay", p.Relay}, false, out(&b.Relay)}, {pinSpec{"relay sense", p.RelaySense}, true, func(p gpio.PinIO) { b.Sense = p }},
		{pinSpec{"green LED", p.LEDGreen}, true, out(&b.Green)}, {pinSpec{"amber LED", p.LEDAmber}, true, out(&b.Amber)},
		{pinSpec{"red LED", p.LEDRed}, true, out(&b.Red)},
	}
	var errs []error
	for _, s := range slots {
		if s.pin == "" && !s.optional {
			errs = append(errs, fmt.Errorf("board %s: no %s pin configured", p.Kind, s.role))
		}
	}
	if p.Kind == "generic" {
		// Only the chardev driver's lines: periph's sysfs-gpio driver
		// registers the same lines in gpioreg under global numbers, and
		// touching one of those exports it through sysfs, after which
		// the chardev request for it fails "busy".
		specs := make([]pinSpec, len(slots))
		for i, s := range slots {
			specs[i] = s.pinSpec
		}
		refs, rerrs := resolveLines(chardevChips(gpioioctl.Chips), specs)
		for _, err := range rerrs {
			errs = append(errs, fmt.Errorf("board %s: %w", p.Kind, err))
		}
		for i, r := range refs {
			if r.chip >= 0 {
				slots[i].set(gpioioctl.Chips[r.chip].Lines()[r.offset])
			}
		}
	} else {
		for _, s := range slots {
			if s.pin == "" {
				continue
			}
			pin := gpioreg.ByName(s.pin)
			if pin == nil {
				errs = append(errs, fmt.Errorf("board %s: %s pin %q does not exist (%s)", p.Kind, s.role, s.pin, gpioregWhy(state)))
				continue
			}
			s.set(pin)
		}
	}
	if len(errs) > 0 {
		if f := driverFailures(state); f != "" {
			errs = append(errs, fmt.Errorf("board %s: %s", p.Kind, f))
		}
		return nil, errors.Join(errs...)
	}
	if err := b.claimOutputs(); err != nil {
		return nil, err
	}
	return b, nil
}

// claimOutputs requests each output that is a character-device line
// again at its safe level (relay off, LEDs off) in one ioctl, through
// gpiocdev: periph's line would come up low first, which is a release
// pulse on an active-low relay (see package gpiocdev). Lines of other
// drivers (the Pi 3/4's memory-mapped one) are kept as they are.
func (b *Board) claimOutputs() error {
	outs := []struct {
		role string
		pin  *gpio.PinOut
		safe gpio.Level
	}{
		{"relay", &b.Relay, gpio.Level(b.RelayActiveLow)}, {"green LED", &b.Green, gpio.Level(b.LEDActiveLow)},
		{"amber LED", &b.Amber, gpio.Level(b.LEDActiveLow)}, {"red LED", &b.Red, gpio.Level(b.LEDActiveLow)},
	}
	var claimed []*gpiocdev.Line
	for _, o := range outs {
		line, ok := (*o.pin).(*gpioioctl.GPIOLine)
		if !ok {
			continue
		}
		path, offset, found := chardevPath(line)
		if !found {
			continue
		}
		l, err := gpiocdev.RequestOutput(path, offset, line.Name(), o.safe, "kioskd")
		if err != nil {
			for _, c := range claimed {
				c.Close()
			}
			return fmt.Errorf("board %s: %s pin %q: %w", b.Kind, o.role, line.Name(), err)
		}
		claimed = append(claimed, l)
		*o.pin = l
	}
	return nil
}

// chardevPath finds the chip and offset of one of gpioioctl's lines.
func chardevPath(line *gpioioctl.GPIOLine) (string, int, bool) {
	for _, c := range gpioioctl.Chips {
		for i, l := range c.Lines() {
			if l == line {
				return c.Path(), i, true
			}
		}
	}
	return "", 0, false
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
// (a chip that cannot be opened, a missing /dev/gpiomem): the real cause
// behind a pin that does not exist, where there is one.
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

func openSim(p Profile) *Board {
	b := &Board{Profile: p, SimPins: map[string]*gpiotest.Pin{}}
	pin := func(name string, num int) gpio.PinIO {
		if name == "" {
			return nil
		}
		tp := &gpiotest.Pin{N: name, Num: num, EdgesChan: make(chan gpio.Level, 1)}
		b.SimPins[name] = tp
		return tp
	}
	b.Relay = pin(p.Relay, 17)
	b.Sense = pin(p.RelaySense, 27)
	b.Green = pin(p.LEDGreen, 22)
	b.Amber = pin(p.LEDAmber, 23)
	b.Red = pin(p.LEDRed, 24)
	return b
}

// Levels returns the sim board's pin levels, for status.
func (b *Board) Levels() map[string]bool {
	out := map[string]bool{}
	for name, p := range b.SimPins {
		p.Lock()
		out[name] = p.L == gpio.High
		p.Unlock()
	}
	return out
}
