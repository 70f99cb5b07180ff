package board

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"periph.io/x/conn/v3/driver/driverreg"
)

func TestProfiles(t *testing.T) {
	for _, k := range []string{"rpi3", "rpi4", "rpi5"} {
		p, err := Lookup(k)
		if err != nil || p.Relay == "" || p.LEDGreen == "" || p.PrinterBaud == 0 || p.Kind != k {
			t.Errorf("%s: %+v %v", k, p, err)
		}
		if p.PrinterDevice == "" || p.WatchdogDevice == "" || !p.RelayActiveLow {
			t.Errorf("%s lacks printer, watchdog or relay polarity: %+v", k, p)
		}
	}
	if _, err := Lookup("pi"); err == nil || !strings.Contains(err.Error(), "rpi4") {
		t.Errorf("unknown kind: %v", err)
	}
}

// A kind registered twice is a programming error, caught at init.
func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second rpi4 was registered")
		}
	}()
	Register("rpi4", periphBoard{})
}

// A profile of a kind nobody registered is refused by Open as by Lookup.
func TestOpenUnknownKind(t *testing.T) {
	if _, err := Open(Profile{Kind: "pi", Relay: "GPIO17"}); err == nil || !strings.Contains(err.Error(), `board: unknown kind "pi"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

// On a machine without the Pi's GPIO (this one, CI), host.Init succeeds
// with nothing loaded; Open must refuse and name the pins.
func TestRealBoardWithoutGPIORefuses(t *testing.T) {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "arm64" {
		t.Skip("might be a real Pi")
	}
	p, _ := Lookup("rpi4")
	p.RelaySense = "GPIO27"
	_, err := Open(p)
	if err == nil {
		t.Fatal("opened a Pi profile on a PC")
	}
	for _, want := range []string{`relay pin "GPIO17" does not exist`, `green LED pin "GPIO22"`, `relay sense pin "GPIO27"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	p.Relay = ""
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "no relay pin configured") {
		t.Errorf("no relay: %v", err)
	}
}

type failingDriver string

func (d failingDriver) String() string          { return string(d) }
func (d failingDriver) Prerequisites() []string { return nil }
func (d failingDriver) After() []string         { return nil }
func (d failingDriver) Init() (bool, error)     { return true, errors.New("unused") }

// A pin that does not resolve comes with periph's own reason, when a
// driver failed, bounded in length.
func TestDriverFailures(t *testing.T) {
	if got := driverFailures(&driverreg.State{}); got != "" {
		t.Errorf("no failures: %q", got)
	}
	st := &driverreg.State{}
	for i := range 7 {
		st.Failed = append(st.Failed, driverreg.DriverFailure{D: failingDriver(fmt.Sprintf("drv%d", i)), Err: errors.New("open /dev/gpiochip0: permission denied")})
	}
	got := driverFailures(st)
	if !strings.HasPrefix(got, "periph drivers that failed to load: drv0: open /dev/gpiochip0: permission denied; drv1:") ||
		!strings.HasSuffix(got, "; and 2 more") || strings.Contains(got, "drv5") {
		t.Errorf("failures: %q", got)
	}
}
