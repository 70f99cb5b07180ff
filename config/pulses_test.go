package config

import (
	"strings"
	"testing"
	"time"
)

// [relay]'s coin-pulse keys: every problem under its key, at once.
func TestPulsesRefused(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       []string
	}{
		{"mode", "[relay]\nmode = \"coins\"", []string{`relay.mode "coins": want pulse or pulses`}},
		{"value not money", "[relay]\npulse_value = \"1.005\"", []string{`relay.pulse_value: amount "1.005": want RM with at most two decimals`}},
		{"value zero", "[relay]\nmode = \"pulses\"\npulse_value = \"0.00\"", []string{`relay.pulse_value "0.00": want more than 0.00`}},
		{"on and off", "[relay]\npulse_on = \"5ms\"\npulse_off = \"6s\"", []string{
			"relay.pulse_on 5ms: want 10ms to 5s", "relay.pulse_off 6s: want 10ms to 5s"}},
		{"max", "[relay]\nmax_pulses = 0", []string{"relay.max_pulses 0: want 1 to 10000"}},
		{"ten minutes", "[relay]\npulse_on = \"5s\"\npulse_off = \"5s\"\nmax_pulses = 100", []string{
			"relay.max_pulses 100: a train of 100 pulses of 5s on and 5s off takes 16m40s, more than 10m0s"}},
		{"watchdog", "[relay]\nmode = \"pulses\"\nmax_pulses = 100\n[board]\nwatchdog_timeout = \"15s\"", []string{
			"relay.max_pulses 100: the longest train, 100 × (50ms + 50ms) = 10s, must end within half of board.watchdog_timeout (15s)"}},
		{"drop sensor", "[relay]\nmode = \"pulses\"\n[board]\nrelay_sense_pin = \"SIM_SENSE\"", []string{
			`relay.mode "pulses": board.relay_sense_pin is set`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.toml + "\n"))
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
	// The watchdog bound is pulses mode's: the same train in pulse mode
	// is never run.
	if _, err := Parse([]byte("[relay]\nmax_pulses = 100\n")); err != nil {
		t.Errorf("pulse mode: %v", err)
	}
}

// Pulses mode reaches the payment service (the value, the most pulses,
// a vend timeout that covers the longest train) and the machine.
func TestPulsesMapping(t *testing.T) {
	cfg, err := Parse([]byte("[relay]\nmode = \"pulses\"\npulse_value = \"0.50\"\npulse_on = \"40ms\"\npulse_off = \"60ms\"\nmax_pulses = 20\n"))
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.PaymentConfig(nil)
	if pc.PulseValue != 50 || pc.MaxPulses != 20 || pc.VendTimeout != 2*time.Second+vendSlack {
		t.Errorf("payment config %+v", pc)
	}
	mc := cfg.MachineConfig()
	if !mc.Pulses || mc.PulseOn != 40*time.Millisecond || mc.PulseOff != 60*time.Millisecond {
		t.Errorf("machine config %+v", mc)
	}
	def, err := Parse(Default())
	if err != nil {
		t.Fatal(err)
	}
	// payment's zero pulse value is one pulse a vend: default.toml's mode.
	if def.Relay.Mode != RelayPulse || def.PaymentConfig(nil).PulseValue != 0 || def.MachineConfig().Pulses {
		t.Errorf("default relay %+v", def.Relay)
	}
	// And the default train, switched on, fits the default watchdog.
	if _, err := Parse([]byte("[relay]\nmode = \"pulses\"\n")); err != nil {
		t.Errorf("default train in pulses mode: %v", err)
	}
}
