// Package board knows the machines kioskd runs on: which pins drive the
// relay and LEDs, where the printer and watchdog are, and, for real
// boards, the one call to periph's host.Init. Each kind of board is a
// Driver in one registry; the simulated board (board/sim) registers
// itself there like any other, so every kind goes through the same pin
// checks in Open.
package board

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
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
	PrinterDevice  string // serial device of the receipt printer ("" on sim: its Sidecar's)
	PrinterBaud    int
	WatchdogDevice string // "" on sim: simulated
	// Strict is a kind that defaults nothing it cannot know (generic):
	// the config must name its relay pin, its watchdog and, with
	// receipts on, its printer, and a watchdog that is not there refuses
	// the start instead of running on a fake as a Pi without the driver
	// does.
	Strict bool
}

// Driver is one kind of board: its default wiring and how its pins come
// to exist. Open runs the same slot checks, error messages and safe-level
// claim for every kind; only the lookup differs.
type Driver interface {
	// Profile is the kind's default wiring; config may override any of it.
	Profile() Profile
	// Open prepares one opening of a board of this kind.
	Open(p Profile, o Options) (Pins, error)
}

// Pins is the pin lookup of one opened board.
type Pins interface {
	// Resolve returns the pin of each spec in order, nil where the spec
	// names none, and an error for each pin that does not exist, naming
	// its role and pin (Open adds the board's kind).
	Resolve(specs []PinSpec) ([]gpio.PinIO, []error)
	// Sidecar is what the board adds beyond its pins: nil on a real one.
	Sidecar() Sidecar
}

// PinSpec is one configured pin and the role it plays, for messages.
type PinSpec struct{ Role, Pin string }

// Sidecar is what a board that is not real hardware offers besides its
// pins, so that the machine adapter can show what a real machine would
// have done without knowing which board it drives. Real boards have none.
type Sidecar interface {
	// VendOn records that the relay energises for a payment (the product
	// drops), VendOff that its pulse ended; amount is the payment's, and
	// in coin-pulse mode which pulse of the train it is ("3.00 pulse
	// 1/3"), one VendOn and VendOff per pulse. An error from VendOn stops
	// the vend: a simulated vend nobody can see is not a vend.
	VendOn(txnID, amount string) error
	VendOff(txnID string)
	// Printer starts the board's own receipt printer, for a profile that
	// names no printer device, and returns the serial device to open.
	Printer() (device string, err error)
	// Snapshot is given the machine's view of the board (its status, as
	// JSON-encodable), about once a second, to show where a person can
	// look at it.
	Snapshot(state any)
	// Levels are the pins' levels by name, for status.
	Levels() map[string]bool
	// Close waits for what the sidecar started (the printer, once the
	// machine closed its side of it).
	Close()
}

// Options are what a driver may need besides the profile.
type Options struct {
	DataDir string       // where a simulated board keeps what it records; "" for nowhere
	Log     *slog.Logger // never nil when a driver sees it
	Buttons []Button     // price buttons' inputs, see WithButtons
}

// Option sets one of the Options of Open.
type Option func(*Options)

// WithDataDir gives the board kioskd's data directory.
func WithDataDir(dir string) Option { return func(o *Options) { o.DataDir = dir } }

// WithLogger gives the board a logger for what it reports on its own.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Log = l } }

// The Pi profiles use BCM numbering on the 40-pin header: GPIO17 (pin 11)
// for the relay, GPIO22/23/24 (pins 15/16/18) for the LEDs, the primary
// UART for the printer. The Pi 5's RP1 UART0 on the header is ttyAMA0.
// generic is any other Linux board: nothing about its header, UARTs or
// watchdog is known, so the config names each (only the polarity that
// most relay modules share is assumed), and its pins resolve through the
// GPIO character devices alone.
var (
	mu      sync.Mutex
	drivers = map[string]Driver{
		"rpi3": periphBoard{Profile{Kind: "rpi3", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
			PrinterDevice: "/dev/serial0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"}},
		"rpi4": periphBoard{Profile{Kind: "rpi4", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
			PrinterDevice: "/dev/serial0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"}},
		"rpi5": periphBoard{Profile{Kind: "rpi5", Relay: "GPIO17", RelayActiveLow: true, LEDGreen: "GPIO22", LEDAmber: "GPIO23", LEDRed: "GPIO24",
			PrinterDevice: "/dev/ttyAMA0", PrinterBaud: 9600, WatchdogDevice: "/dev/watchdog"}},
		"generic": chardevBoard{Profile{Kind: "generic", RelayActiveLow: true, PrinterBaud: 9600, Strict: true}},
	}
)

// Register adds a kind of board, from an init function, as periph's host
// drivers do: a program has the kinds whose packages it links. A kind
// registered twice is a programming error and panics.
func Register(kind string, d Driver) {
	mu.Lock()
	defer mu.Unlock()
	if kind == "" || d == nil {
		panic("board: Register with an empty kind or a nil driver")
	}
	if _, dup := drivers[kind]; dup {
		panic("board: kind " + kind + " registered twice")
	}
	drivers[kind] = d
}

// Kinds lists the known boards.
func Kinds() []string {
	mu.Lock()
	defer mu.Unlock()
	k := make([]string, 0, len(drivers))
	for name := range drivers {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

// Lookup returns the default profile of a board kind.
func Lookup(kind string) (Profile, error) {
	d, err := driver(kind)
	if err != nil {
		return Profile{}, err
	}
	return d.Profile(), nil
}

func driver(kind string) (Driver, error) {
	mu.Lock()
	d, ok := drivers[kind]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("board: unknown kind %q (want %s)", kind, strings.Join(Kinds(), ", "))
	}
	return d, nil
}

// Board is an opened board: every configured pin resolved.
type Board struct {
	Profile
	Relay             gpio.PinOut
	Sense             gpio.PinIO // nil without a drop sensor
	Green, Amber, Red gpio.PinOut
	Buttons           []gpio.PinIn // WithButtons' pins, in the same order
	// Sidecar is what a simulated board adds beyond its pins; nil on a
	// real board.
	Sidecar Sidecar
}

// Open resolves every pin of the profile through its kind's driver. A
// driver's lookup can come back empty without failing (periph's
// host.Init returns no error when no driver loaded, on a PC or with
// /dev/gpiomem missing), so each pin is looked up and a board whose pins
// do not all resolve is refused, naming the pin.
func Open(p Profile, opts ...Option) (*Board, error) {
	d, err := driver(p.Kind)
	if err != nil {
		return nil, err
	}
	o := Options{Log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	b := &Board{Profile: p}
	out := func(dst *gpio.PinOut) func(gpio.PinIO) { return func(p gpio.PinIO) { *dst = p } }
	slots := []struct {
		PinSpec
		optional bool
		set      func(gpio.PinIO)
	}{
		{PinSpec{"relay", p.Relay}, false, out(&b.Relay)}, {PinSpec{"relay sense", p.RelaySense}, true, func(p gpio.PinIO) { b.Sense = p }},
		{PinSpec{"green LED", p.LEDGreen}, true, out(&b.Green)}, {PinSpec{"amber LED", p.LEDAmber}, true, out(&b.Amber)},
		{PinSpec{"red LED", p.LEDRed}, true, out(&b.Red)},
	}
	b.Buttons = make([]gpio.PinIn, len(o.Buttons))
	for i, btn := range o.Buttons {
		// Required: a button whose pin is missing would never start a
		// payment and nobody would know why.
		slots = append(slots, struct {
			PinSpec
			optional bool
			set      func(gpio.PinIO)
		}{PinSpec{btn.Role(), btn.Pin}, false, func(p gpio.PinIO) { b.Buttons[i] = p }})
	}
	var errs []error
	for _, s := range slots {
		if s.Pin == "" && !s.optional {
			errs = append(errs, fmt.Errorf("board %s: no %s pin configured", p.Kind, s.Role))
		}
	}
	pins, err := d.Open(p, o)
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", p.Kind, err)
	}
	specs := make([]PinSpec, len(slots))
	for i, s := range slots {
		specs[i] = s.PinSpec
	}
	got, rerrs := pins.Resolve(specs)
	for _, err := range rerrs {
		errs = append(errs, fmt.Errorf("board %s: %w", p.Kind, err))
	}
	sc := pins.Sidecar()
	if len(errs) > 0 {
		if sc != nil {
			sc.Close()
		}
		return nil, errors.Join(errs...)
	}
	for i, pin := range got {
		if pin != nil {
			slots[i].set(pin)
		}
	}
	if err := b.claimOutputs(); err != nil {
		if sc != nil {
			sc.Close()
		}
		return nil, err
	}
	b.Sidecar = sc
	return b, nil
}

// claimOutputs requests each output that is a character-device line
// again at its safe level (relay off, LEDs off) in one ioctl, through
// gpiocdev: periph's line would come up low first, which is a release
// pulse on an active-low relay (see package gpiocdev). Lines of other
// drivers (the Pi 3/4's memory-mapped one, the sim's fakes) are kept as
// they are.
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
