package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/device/relay"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/payment"
)

// hardware owns the board's devices and adapts them to the service: it is
// the payment.Vender and payment.Printer, and follows service events on
// the LEDs. Nothing here can block a payment decision: the vend is
// bounded by the relay pulse, receipts are queued, LEDs are best effort.
type hardware struct {
	board *board.Board
	relay *relay.Relay
	leds  *led.Panel
	wd    *watchdog.Supervisor
	wdDev watchdog.Device
	sim   *simSink // nil on real boards
	log   *slog.Logger

	mu     sync.Mutex
	faults map[string]string
}

// openHardware opens the board and puts every output in its safe state.
func openHardware(cfg *Config, log *slog.Logger) (*hardware, error) {
	prof, err := cfg.boardProfile()
	if err != nil {
		return nil, err
	}
	b, err := board.Open(prof)
	if err != nil {
		return nil, err
	}
	h := &hardware{board: b, log: log.With("component", "hardware"), faults: map[string]string{}}
	var sense = b.Sense
	rc := relay.Config{Pin: b.Relay, ActiveLow: prof.RelayActiveLow, Pulse: cfg.Relay.Pulse.Duration}
	if sense != nil {
		rc.Sense = sense
	}
	if h.relay, err = relay.New(rc); err != nil {
		return nil, err
	}
	h.leds = led.New(led.Config{Green: b.Green, Amber: b.Amber, Red: b.Red, ActiveLow: prof.LEDActiveLow})
	if b.Sim() {
		h.sim = newSimSink(cfg.DataDir, cfg.Relay.Pulse.Duration, log)
	}

	timeout := cfg.Board.WatchdogTimeout.Duration
	switch {
	case prof.WatchdogDevice == "":
		h.wdDev = watchdog.NewFake(timeout)
	default:
		h.wdDev, err = watchdog.Open(prof.WatchdogDevice, timeout)
		if errors.Is(err, os.ErrNotExist) {
			h.log.Warn("no hardware watchdog; continuing without one", "device", prof.WatchdogDevice, "err", err)
			h.wdDev, err = watchdog.NewFake(timeout), nil
		}
		if err != nil {
			h.relay.Safe()
			return nil, err
		}
	}
	notifier, err := watchdog.NotifierFromEnv()
	if err != nil {
		h.log.Warn("NOTIFY_SOCKET unusable; not notifying the service manager", "err", err)
	}
	h.wd = watchdog.NewSupervisor(h.wdDev, log, watchdog.WithNotifier(notifier))
	return h, nil
}

// Vend implements payment.Vender: one relay pulse.
func (h *hardware) Vend(ctx context.Context, t payment.Txn) error {
	if h.sim != nil {
		if err := h.sim.recordOn(t); err != nil {
			return err
		}
	}
	err := h.relay.Pulse(ctx)
	if h.sim != nil && err == nil {
		h.sim.recordOff(t)
	}
	h.fault("vend", err)
	return err
}

// Receipt implements payment.Printer.
func (h *hardware) Receipt(t payment.Txn) {
	if h.sim != nil {
		h.sim.Receipt(t)
	}
}

// fault raises (err != nil) or clears a named fault on the red LED.
func (h *hardware) fault(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.faults, name)
	} else {
		h.faults[name] = err.Error()
	}
	h.leds.SetFault(name, err != nil)
}

// run drives the LEDs from service events, probes the critical loops for
// the watchdog, and on the sim board keeps data_dir/sim/board.json
// current. It returns when ctx ends, with every output safe.
func (h *hardware) run(ctx context.Context, svc *payment.Service, j *payment.Journal) error {
	events, unsub := svc.Subscribe()
	defer unsub()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.leds.Run(ctx) }()
	go func() { defer wg.Done(); h.probe(ctx, svc, j) }()
	wdErr := make(chan error, 1)
	go func() { wdErr <- h.wd.Run(ctx) }()
	if err := h.wd.Ready(); err != nil {
		h.log.Warn("service manager not told we are ready", "err", err)
	}
	snap := time.NewTicker(time.Second)
	defer snap.Stop()
	defer func() {
		wg.Wait()
		h.relay.Safe()
	}()
	for {
		select {
		case <-ctx.Done():
			return <-wdErr
		case err := <-wdErr:
			// A stall: the board will reset. Show it meanwhile.
			h.fault("watchdog", err)
			wdErr = nil
		case <-snap.C:
			if h.sim != nil {
				h.sim.writeState(h.state())
			}
		case e, ok := <-events:
			if !ok {
				events, unsub = svc.Subscribe()
				continue
			}
			h.follow(e)
		}
	}
}

func (h *hardware) follow(e payment.Event) {
	now := time.Now()
	if e.POS != nil {
		h.leds.SetLink(e.POS.State == "connected")
	}
	t := e.Txn
	if t == nil {
		return
	}
	switch {
	case t.State == payment.Approved && t.Vend == payment.VendReleased && t.Review == "":
		h.leds.Outcome(led.Approved, now)
	case t.State.Final() && t.Vend != payment.VendReleasing:
		h.leds.Outcome(led.Declined, now)
	case !t.State.Final():
		h.leds.SetPaying(true)
	}
}

// probe proves the payment loop and the journal alive to the watchdog: a
// loop that cannot run an empty command, or a journal that cannot be
// read, stops the feeding and the board resets.
func (h *hardware) probe(ctx context.Context, svc *payment.Service, j *payment.Journal) {
	limit := max(h.wdDev.Timeout(), 3*time.Second)
	loop := h.wd.Register("payment-loop", limit)
	journal := h.wd.Register("journal", limit)
	t := time.NewTicker(limit / 4)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, limit)
		if svc.Ping(pctx) == nil {
			loop.Beat()
		}
		cancel()
		if _, err := j.List(1); err == nil {
			journal.Beat()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hwState is the board section of `kioskd status`.
type hwState struct {
	Board    string            `json:"board"`
	Relay    relay.State       `json:"relay"`
	LEDs     led.State         `json:"leds"`
	Pins     map[string]bool   `json:"pins,omitempty"`
	Watchdog watchdog.Status   `json:"watchdog"`
	Faults   map[string]string `json:"faults,omitempty"`
}

func (h *hardware) state() hwState {
	h.mu.Lock()
	faults := make(map[string]string, len(h.faults))
	for k, v := range h.faults {
		faults[k] = v
	}
	h.mu.Unlock()
	s := hwState{Board: h.board.Kind, Relay: h.relay.State(), LEDs: h.leds.State(time.Now()), Watchdog: h.wd.Status(), Faults: faults}
	if h.board.Sim() {
		s.Pins = h.board.Levels()
	}
	return s
}

// writeState keeps data_dir/sim/board.json: what a real board's pins,
// relay and watchdog would be doing now.
func (s *simSink) writeState(st hwState) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(s.dir, "board.json.tmp")
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return
	}
	if os.WriteFile(tmp, append(b, '\n'), 0o640) == nil {
		os.Rename(tmp, filepath.Join(s.dir, "board.json"))
	}
}
