package config

import (
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/kioskd/kioskd/machine"
)

const twoButtons = `
[[buttons]]
name = "coffee"
pin = "SIM_BTN_1"
pull = "up"
price = "2.00"
mode = "card"

[[buttons]]
name = "tea"
pin = "SIM_BTN_2"
pull = "none"
active_low = false
debounce = "50ms"
price = "1.50"
mode = "duitnow_qr"
provider = "mobypay"
`

// [[buttons]] maps onto the machine's buttons: active_low follows a
// pull-up when absent, debounce defaults to 30 ms.
func TestButtonsMapped(t *testing.T) {
	cfg, err := Parse([]byte(twoButtons))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.MachineConfig().Buttons
	want := []machine.ButtonConfig{
		{Name: "coffee", Pin: "SIM_BTN_1", Pull: gpio.PullUp, ActiveLow: true, Debounce: 30 * time.Millisecond, Price: 200, Mode: "card"},
		{Name: "tea", Pin: "SIM_BTN_2", Pull: gpio.Float, ActiveLow: false, Debounce: 50 * time.Millisecond, Price: 150, Mode: "duitnow_qr", Provider: "mobypay"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("buttons\n%+v\nwant\n%+v", got, want)
	}
}

// Every problem of [[buttons]] under its entry's key, at once.
func TestButtonsRefused(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       []string
	}{
		{"empty", "[[buttons]]\n", []string{
			`buttons[0].name "": want 1 to 32`, "buttons[0].pin: required", `buttons[0].pull "": want up, down or none`,
			`buttons[0].price: amount ""`, `buttons[0].mode "": want card`}},
		{"same name and pin", twoButtons + "[[buttons]]\nname = \"tea\"\npin = \"SIM_BTN_1\"\npull = \"up\"\nprice = \"1.00\"\nmode = \"card\"\n", []string{
			`buttons[2].name "tea": buttons[1] has the same name`, `buttons[2].pin "SIM_BTN_1" is also buttons[0].pin`}},
		{"board's pin", "[[buttons]]\nname = \"a\"\npin = \"SIM_RELAY\"\npull = \"up\"\nprice = \"1.00\"\nmode = \"card\"\n", []string{
			`buttons[0].pin "SIM_RELAY" is also board.relay_pin`}},
		{"bad values", "[[buttons]]\nname = \"A b\"\npin = \"P\"\npull = \"up\"\nactive_low = false\ndebounce = \"1ms\"\nprice = \"0.00\"\nmode = \"cash\"\nprovider = \"kpos\"\n", []string{
			`buttons[0].name "A b"`, `buttons[0].active_low false with pull = "up"`, "buttons[0].debounce 1ms: want 5ms to 1s",
			`buttons[0].price "0.00": want more than 0.00`, `buttons[0].mode "cash"`, `buttons[0].provider "kpos": kpos.enabled is false`}},
		{"float needs polarity", "[[buttons]]\nname = \"a\"\npin = \"P\"\npull = \"none\"\nprice = \"1.00\"\nmode = \"card\"\n", []string{
			`buttons[0].active_low: required with pull = "none"`}},
		{"pulses", "[relay]\nmode = \"pulses\"\npulse_value = \"1.00\"\nmax_pulses = 5\n" +
			"[[buttons]]\nname = \"a\"\npin = \"P\"\npull = \"up\"\nprice = \"1.50\"\nmode = \"card\"\n" +
			"[[buttons]]\nname = \"b\"\npin = \"Q\"\npull = \"up\"\nprice = \"6.00\"\nmode = \"card\"\n", []string{
			"buttons[0].price 1.50: not a whole number of relay.pulse_value 1.00",
			"buttons[1].price 6.00: 6 pulses of 1.00, more than relay.max_pulses 5"}},
		{"unknown key", "[[buttons]]\nname = \"a\"\npin = \"P\"\npull = \"up\"\nprice = \"1.00\"\nmode = \"card\"\nprise = \"2.00\"\n", []string{
			"unknown keys: buttons.prise"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.toml))
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// A generic board checks a button pin's syntax as it checks its own.
func TestButtonsGenericPinSyntax(t *testing.T) {
	_, err := Parse([]byte("[board]\nkind = \"generic\"\nrelay_pin = \"GPIO17\"\nwatchdog_device = \"/dev/watchdog\"\n[printer]\nenabled = false\n" +
		"[[buttons]]\nname = \"a\"\npin = \"gpiochip0:x\"\npull = \"up\"\nprice = \"1.00\"\nmode = \"card\"\n"))
	if err == nil || !strings.Contains(err.Error(), `buttons[0].pin "gpiochip0:x": line offset "x"`) {
		t.Fatalf("err %v", err)
	}
}

// default.toml's commented [[buttons]] example is a config run accepts
// (on the sim board, whose pins have names of their own).
func TestButtonsExampleInDefault(t *testing.T) {
	def := string(Default())
	i := strings.Index(def, "# [[buttons]]\n")
	if i < 0 {
		t.Fatal("default.toml has no [[buttons]] example")
	}
	var ex []string
	for _, l := range strings.Split(def[i:], "\n") {
		if !strings.HasPrefix(l, "# ") {
			break
		}
		ex = append(ex, strings.ReplaceAll(strings.TrimPrefix(l, "# "), "GPIO5", "SIM_BTN"))
	}
	cfg, err := Parse([]byte(strings.Join(ex, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.MachineConfig().Buttons; len(b) != 1 || b[0].Name != "coffee" || b[0].Price != 200 {
		t.Fatalf("buttons %+v", b)
	}
}
