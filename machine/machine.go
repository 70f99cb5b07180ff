// Package machine adapts the payment service to the vending machine: it
// owns the board's devices, is the service's payment.Vender (one relay
// pulse) and payment.Printer (receipts), follows the service's events on
// the LEDs, proves the service alive to the watchdog, runs the selftest,
// and keeps kioskd from hammering the machine in a crash loop.
//
// Nothing here can block a payment decision: the vend is bounded by the
// relay pulse, receipts are queued, LEDs are best effort. It knows no
// board kind by name: what a simulated board adds reaches it through
// board.Sidecar.
package machine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/device/printer"
	"github.com/kioskd/kioskd/device/relay"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/internal/diskspace"
	"github.com/kioskd/kioskd/payment"
)

// Config is what the machine needs of kioskd's config, as plain values:
// the TOML shape and its checks stay with the command.
type Config struct {
	KioskID string
	// DataDir holds the crash guard's record and what a simulated board
	// records.
	DataDir string
	Pulse   time.Duration // one vend's relay pulse
	// Pulses is coin-pulse mode: a vend is the payment's train
	// (Txn.PulsesTotal pulses, PulseOn on and PulseOff off), not Pulse.
	Pulses            bool
	PulseOn, PulseOff time.Duration
	WatchdogTimeout   time.Duration
	Printer           PrinterConfig
	// MinFree is how many bytes DataDir's file system must have free,
	// below which the "disk" fault shows; 0 does not look.
	MinFree uint64
	Buttons []ButtonConfig // price buttons, see buttons.go
}

// PrinterConfig is the receipt printer's part of Config.
type PrinterConfig struct {
	Enabled          bool
	Merchant, Footer []string // lines above and below each receipt
	Width            int      // characters per line, 0 for the printer package's default
	CodePage         string   // escpos.ParseCodePage's names
}

// Machine is an opened machine: every output in its safe state.
type Machine struct {
	board *board.Board
	relay *relay.Relay
	leds  *led.Panel
	wd    *watchdog.Supervisor
	wdDev watchdog.Device
	wdRan atomic.Bool      // Run started the supervisor, which owns wdDev's close
	prn   *printer.Printer // nil when disabled or not found
	pcfg  PrinterConfig
	kiosk string
	log   *slog.Logger
	// pulses is coin-pulse mode, each pulse on for on and off for off.
	pulses  bool
	on, off time.Duration

	dataDir string
	minFree uint64                                // Config.MinFree
	usage   func(string) (diskspace.Usage, error) // diskspace.Of; a fake in tests

	mu     sync.Mutex
	faults map[string]string
	disk   *control.Disk // the data partition at the last look, nil before one

	buttons []*button
}

// Open opens the board of the provisioned profile and puts every output
// in its safe state. The watchdog is armed from here on: Close disarms it
// unless Run handed it to its supervisor.
func Open(cfg Config, prof board.Profile, log *slog.Logger) (*Machine, error) {
	b, err := board.Open(prof, board.WithDataDir(cfg.DataDir), board.WithLogger(log), board.WithButtons(boardButtons(cfg.Buttons)))
	if err != nil {
		return nil, err
	}
	m := &Machine{board: b, kiosk: cfg.KioskID, pcfg: cfg.Printer, log: log.With("component", "machine"),
		dataDir: cfg.DataDir, minFree: cfg.MinFree, usage: diskspace.Of, faults: map[string]string{}}
	m.pulses, m.on, m.off = cfg.Pulses, cfg.PulseOn, cfg.PulseOff
	rc := relay.Config{Pin: b.Relay, ActiveLow: prof.RelayActiveLow, Pulse: cfg.Pulse}
	if b.Sense != nil {
		rc.Sense = b.Sense
	}
	if m.relay, err = relay.New(rc); err != nil {
		return nil, fmt.Errorf("machine: %w", err)
	}
	if m.buttons, err = openButtons(cfg.Buttons, b.Buttons); err != nil {
		m.relay.Safe()
		return nil, err
	}
	m.leds = led.New(led.Config{Green: b.Green, Amber: b.Amber, Red: b.Red, ActiveLow: prof.LEDActiveLow})
	if m.wdDev, err = openWatchdog(prof, cfg.WatchdogTimeout, m.log); err != nil {
		m.relay.Safe()
		return nil, err
	}
	if cfg.Printer.Enabled {
		if err := m.openPrinter(prof); err != nil {
			m.relay.Safe()
			m.wdDev.Close()
			return nil, err
		}
	}
	notifier, err := watchdog.NotifierFromEnv()
	if err != nil {
		m.log.Warn("NOTIFY_SOCKET unusable; not notifying the service manager", "err", err)
	}
	m.wd = watchdog.NewSupervisor(m.wdDev, log, watchdog.WithNotifier(notifier))
	return m, nil
}

// openWatchdog opens the profile's watchdog device, or a fake where the
// profile names none (the sim board). A Pi whose kernel lacks its
// watchdog driver runs on a fake, with a warning, as it always has. A
// strict board's watchdog (generic) is one the config named explicitly:
// a missing one is a wrong path or a missing driver, and running
// unguarded would hide that, so the start is refused.
func openWatchdog(prof board.Profile, timeout time.Duration, log *slog.Logger) (watchdog.Device, error) {
	if prof.WatchdogDevice == "" {
		return watchdog.NewFake(timeout), nil
	}
	dev, err := watchdog.Open(prof.WatchdogDevice, timeout)
	if errors.Is(err, os.ErrNotExist) {
		if prof.Strict {
			return nil, fmt.Errorf("board.watchdog_device: %w (board kind %q does not run without its watchdog)", err, prof.Kind)
		}
		log.Warn("no hardware watchdog; continuing without one", "device", prof.WatchdogDevice, "err", err)
		return watchdog.NewFake(timeout), nil
	}
	return dev, err
}

// Vend implements payment.Vender: one relay pulse, or in pulses mode the
// payment's train. A board's sidecar records each pulse first, and a
// pulse it cannot record is not made.
func (m *Machine) Vend(ctx context.Context, t payment.Txn, progress func(done int) error) error {
	if m.pulses != (t.PulsesTotal > 0) {
		// Both come from one config: this is a wiring mistake, and a
		// coin-op machine given one long pulse (or a vending machine a
		// train) would credit the wrong amount.
		err := fmt.Errorf("machine: payment %s has a train of %d pulses, relay in pulses mode %v", t.ID, t.PulsesTotal, m.pulses)
		m.fault("vend", err)
		return err
	}
	if m.pulses {
		return m.vendTrain(ctx, t, progress)
	}
	sc := m.board.Sidecar
	if sc != nil {
		if err := sc.VendOn(t.ID, t.Amount.String()); err != nil {
			return err
		}
	}
	err := m.relay.Pulse(ctx)
	if sc != nil && err == nil {
		sc.VendOff(t.ID)
	}
	m.fault("vend", err)
	return err
}

// vendTrain gives t's credit as coin pulses. Each pulse's end is handed
// to progress (the journal) before the next may start; whatever stops
// the train, the relay is left released and the fault shown.
func (m *Machine) vendTrain(ctx context.Context, t payment.Txn, progress func(done int) error) error {
	sc := m.board.Sidecar
	hooks := relay.TrainHooks{
		Before: func(k int) error {
			if sc == nil {
				return nil
			}
			return sc.VendOn(t.ID, fmt.Sprintf("%s pulse %d/%d", t.Amount, k, t.PulsesTotal))
		},
		After: func(k int) error {
			if sc != nil {
				sc.VendOff(t.ID)
			}
			return progress(k)
		},
	}
	_, err := m.relay.Train(ctx, t.PulsesTotal, m.on, m.off, hooks)
	m.fault("vend", err)
	return err
}

// Close releases the devices: the printer (and the sidecar's model of
// it), the relay, left in its safe state, and the watchdog unless its
// supervisor ran (the supervisor closes it itself): a kioskd that stops
// between arming the watchdog and feeding it, on a start-up error, must
// not leave it armed and unfed to reset the board.
func (m *Machine) Close() {
	if m.prn != nil {
		m.prn.Close()
	}
	if m.board.Sidecar != nil {
		m.board.Sidecar.Close()
	}
	m.relay.Safe()
	if !m.wdRan.Load() {
		// The crash-loop wait may have disarmed it already.
		if err := m.wdDev.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			m.log.Error("watchdog disarm failed", "err", err)
		}
	}
}

// Fault raises (err != nil) or clears a named fault of a part of the
// machine that cmd wires beside it (the MDB bus): the red LED, the
// status's faults and the fleet status, as for the machine's own.
func (m *Machine) Fault(name string, err error) { m.fault(name, err) }

// fault raises (err != nil) or clears a named fault on the red LED.
func (m *Machine) fault(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.faults, name)
	} else {
		m.faults[name] = err.Error()
	}
	m.leds.SetFault(name, err != nil)
}

// State is the board section of `kioskd status` (and of a simulated
// board's snapshot), copied out of the devices' own states into
// control's mirror of them.
func (m *Machine) State() control.Hardware {
	m.mu.Lock()
	faults := make(map[string]string, len(m.faults))
	for k, v := range m.faults {
		faults[k] = v
	}
	var disk *control.Disk
	if m.disk != nil {
		d := *m.disk
		disk = &d
	}
	m.mu.Unlock()
	ls := m.leds.State(time.Now())
	wd := m.wd.Status()
	s := control.Hardware{
		Board: m.board.Kind,
		Relay: control.Relay(m.relay.State()),
		LEDs: control.LEDs{Pattern: string(ls.Pattern), Green: ls.Green, Amber: ls.Amber, Red: ls.Red,
			Faults: ls.Faults, LastError: ls.LastError},
		Watchdog: control.Watchdog{Running: wd.Running, Feeding: wd.Feeding, Stalled: wd.Stalled,
			Device: wd.Device, Timeout: wd.Timeout, Interval: wd.Interval, Feeds: wd.Feeds,
			LastFeedAge: wd.LastFeedAge, FeedError: wd.FeedError},
		Faults:  faults,
		Disk:    disk,
		Buttons: m.buttonStates(),
	}
	for _, hb := range wd.Heartbeats {
		s.Watchdog.Heartbeats = append(s.Watchdog.Heartbeats, control.Heartbeat(hb))
	}
	if m.board.Sidecar != nil {
		s.Pins = m.board.Sidecar.Levels()
	}
	if m.prn != nil {
		ps := m.prn.Status()
		s.Printer = &control.Printer{State: string(ps.State), Since: ps.Since, LastError: ps.LastError,
			Printed: ps.Printed, Failed: ps.Failed, Dropped: ps.Dropped, Queue: ps.Queue}
	}
	return s
}
