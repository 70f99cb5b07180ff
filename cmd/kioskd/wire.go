package main

import (
	// The simulated board registers itself as board kind "sim", the
	// default config's board, as periph's host drivers register theirs.
	_ "github.com/kioskd/kioskd/board/sim"
	"github.com/kioskd/kioskd/machine"
)

// machineConfig is the machine's part of the config: the machine
// package takes plain values and never sees the TOML shape.
func machineConfig(cfg *Config) machine.Config {
	return machine.Config{
		KioskID:         cfg.KioskID,
		DataDir:         cfg.DataDir,
		Pulse:           cfg.Relay.Pulse.Duration,
		WatchdogTimeout: cfg.Board.WatchdogTimeout.Duration,
		Printer: machine.PrinterConfig{
			Enabled:  cfg.Printer.Enabled,
			Merchant: cfg.Printer.Merchant,
			Footer:   cfg.Printer.Footer,
			Width:    cfg.Printer.Width,
			CodePage: cfg.Printer.CodePage,
		},
	}
}
