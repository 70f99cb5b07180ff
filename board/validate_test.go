package board

import (
	"strings"
	"testing"
	"time"
)

func TestProfileValidate(t *testing.T) {
	for _, kind := range []string{"rpi3", "rpi4", "rpi5", "sim"} {
		p, err := Lookup(kind)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(true); err != nil {
			t.Errorf("%s profile: %v", kind, err)
		}
	}
	generic, _ := Lookup("generic")
	complete := generic
	complete.Relay, complete.WatchdogDevice, complete.PrinterDevice = "GPIO17", "/dev/watchdog", "/dev/ttyS0"
	sim, _ := Lookup("sim")
	for _, c := range []struct {
		name    string
		p       Profile
		printer bool
		want    []string // every one, in the one error; none: valid
	}{
		{"generic, nothing named", generic, true, []string{
			`relay_pin: required for board kind "generic" (a GPIO line name such as "GPIO17", or "gpiochip0:17")`,
			`watchdog_device: required for board kind "generic" (the hardware watchdog, such as "/dev/watchdog")`,
			`printer_device: required for board kind "generic"`}},
		{"generic, no printer needed", withProfile(generic, func(p *Profile) { p.Relay, p.WatchdogDevice = "PA7", "/dev/watchdog0" }), false, nil},
		{"generic, complete", complete, true, nil},
		{"generic, pin syntax", withProfile(complete, func(p *Profile) { p.Relay, p.LEDGreen, p.RelaySense = ":17", "gpiochip0:x", " GPIO27" }), true, []string{
			`relay_pin ":17": no GPIO chip before ":"`, `led_green "gpiochip0:x": line offset "x"`,
			`relay_sense_pin " GPIO27": leading or trailing space`}},
		{"sim pins are not parsed", withProfile(sim, func(p *Profile) { p.LEDGreen = "not:a:pin" }), true, nil},
		{"a pin twice", withProfile(sim, func(p *Profile) { p.LEDRed = "SIM_RELAY" }), true, []string{`led_red "SIM_RELAY" is also relay_pin`}},
		{"three roles, one pin", withProfile(complete, func(p *Profile) { p.LEDGreen, p.LEDAmber = "GPIO17", "GPIO17" }), true, []string{
			`led_green "GPIO17" is also relay_pin`, `led_amber "GPIO17" is also relay_pin`}},
		{"baud 1200", withProfile(sim, func(p *Profile) { p.PrinterBaud = 1200 }), true, nil},
		{"baud 921600", withProfile(sim, func(p *Profile) { p.PrinterBaud = 921600 }), true, nil},
		{"baud 1199", withProfile(sim, func(p *Profile) { p.PrinterBaud = 1199 }), true, []string{"printer_baud 1199: want 1200 to 921600"}},
		{"baud 921601", withProfile(sim, func(p *Profile) { p.PrinterBaud = 921601 }), true, []string{"printer_baud 921601: want 1200 to 921600"}},
	} {
		err := c.p.Validate(c.printer)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: valid, want %q", c.name, c.want)
			continue
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != len(c.want) {
			t.Errorf("%s: %d problems, want %d:\n%v", c.name, n, len(c.want), err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: does not say %q:\n%v", c.name, w, err)
			}
		}
	}
}

func withProfile(p Profile, f func(*Profile)) Profile {
	f(&p)
	return p
}

func TestValidateWatchdogTimeout(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: false, 2*time.Second - 1: false, 2 * time.Second: true, 15 * time.Second: true,
		time.Minute: true, time.Minute + 1: false} {
		err := ValidateWatchdogTimeout(d)
		if (err == nil) != ok {
			t.Errorf("%s: %v, want ok %v", d, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "watchdog_timeout "+d.String()+": want 2s to 1m") {
			t.Errorf("%s: %q", d, err)
		}
	}
}
