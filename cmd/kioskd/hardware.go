package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/device/printer"
	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/device/relay"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/escpos"
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
	wdRan atomic.Bool      // run started the supervisor, which owns wdDev's close
	prn   *printer.Printer // nil when disabled
	pcfg  printerConfig
	sim   *simSink // nil on real boards
	log   *slog.Logger

	mu     sync.Mutex
	faults map[string]string
}

// openHardware opens the board of the provisioned profile and puts every
// output in its safe state.
func openHardware(cfg *config.Config, prof board.Profile, log *slog.Logger) (*hardware, error) {
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

	if h.wdDev, err = openWatchdog(prof, cfg.Board.WatchdogTimeout.Duration, h.log); err != nil {
		h.relay.Safe()
		return nil, err
	}
	if cfg.Printer.Enabled {
		if err := h.openPrinter(cfg, prof); err != nil {
			h.relay.Safe()
			h.wdDev.Close()
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

// openWatchdog opens the profile's watchdog device, or a fake on the sim
// board. A Pi whose kernel lacks its watchdog driver runs on a fake, with
// a warning, as it always has. A generic board's watchdog is one the
// config named explicitly: a missing one is a wrong path or a missing
// driver, and running unguarded would hide that, so the start is refused.
func openWatchdog(prof board.Profile, timeout time.Duration, log *slog.Logger) (watchdog.Device, error) {
	if prof.WatchdogDevice == "" {
		return watchdog.NewFake(timeout), nil
	}
	dev, err := watchdog.Open(prof.WatchdogDevice, timeout)
	if errors.Is(err, os.ErrNotExist) {
		if prof.Kind == "generic" {
			return nil, fmt.Errorf("board.watchdog_device: %w (board kind %q does not run without its watchdog)", err, prof.Kind)
		}
		log.Warn("no hardware watchdog; continuing without one", "device", prof.WatchdogDevice, "err", err)
		return watchdog.NewFake(timeout), nil
	}
	return dev, err
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

// Receipt implements payment.Printer: the receipt is queued, never
// waited for.
func (h *hardware) Receipt(t payment.Txn) {
	if h.prn == nil {
		return
	}
	outcome := printer.Approved
	switch {
	case t.State == payment.Approved && t.Vend == payment.VendReleased && t.Review == "":
	case t.State == payment.Approved:
		outcome = printer.Outcome("PAID - SEE ATTENDANT")
	default:
		outcome = printer.Declined
	}
	r := printer.Receipt{Merchant: h.pcfg.merchant, Footer: h.pcfg.footer, Time: t.UpdatedAt.Local(),
		KioskID: h.pcfg.kioskID, TxnID: t.ID, Amount: int64(t.Amount), Mode: t.Mode, CardLast4: t.CardLast4,
		POSTransactionID: t.POSTransactionID, AuthCode: t.AuthCode, Plan: t.PlanID, Outcome: outcome}
	if !h.prn.Receipt(r) {
		h.log.Warn("receipt dropped: printer queue full", "txn_id", t.ID)
	}
}

type printerConfig struct {
	kioskID          string
	merchant, footer []string
}

// openPrinter opens the receipt printer. A missing printer is not an
// error: it shows as no_printer in status and on the fault LED.
func (h *hardware) openPrinter(cfg *config.Config, prof board.Profile) error {
	cp, err := escpos.ParseCodePage(cfg.Printer.CodePage)
	if err != nil {
		return err
	}
	h.pcfg = printerConfig{kioskID: cfg.KioskID, merchant: cfg.Printer.Merchant, footer: cfg.Printer.Footer}
	pc := printer.Config{Layout: printer.Layout{Width: cfg.Printer.Width, CodePage: cp}, Log: h.log,
		OnChange: func(s printer.Status) {
			var err error
			if s.State.Fault() {
				err = fmt.Errorf("printer %s", s.State)
			}
			h.fault("printer", err)
		}}
	device := prof.PrinterDevice
	if device == "" && h.sim != nil {
		if device, err = h.sim.startPrinter(); err != nil {
			h.log.Warn("simulated printer not available", "err", err)
			return nil
		}
	}
	if device == "" {
		return nil
	}
	h.prn, err = printer.Open(serial.Config{Device: device, Baud: prof.PrinterBaud}, pc)
	return err
}

// testPage prints the selftest page.
func (h *hardware) testPage() error {
	if h.prn == nil {
		return errors.New("printer disabled or not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return h.prn.TestPage(ctx, "kioskd selftest", h.pcfg.kioskID)
}

// printPairing prints where the POS should connect, with a QR code.
func (h *hardware) printPairing(addrs []string) error {
	if h.prn == nil {
		return errors.New("printer disabled or not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	lines := []string{"POS PAIRING", "Kiosk " + h.pcfg.kioskID}
	for _, a := range addrs {
		lines = append(lines, "Connect to "+a)
	}
	qr := ""
	if len(addrs) > 0 {
		qr = pairText(addrs[0])
	}
	return h.prn.PrintLines(ctx, lines, qr)
}

// Close releases the devices: the printer (and the simulated one behind
// it), the relay, left in its safe state, and the watchdog unless its
// supervisor ran (the supervisor closes it itself): a kioskd that stops
// between arming the watchdog and feeding it, on a start-up error, must
// not leave it armed and unfed to reset the board.
func (h *hardware) Close() {
	if h.prn != nil {
		h.prn.Close()
	}
	if h.sim != nil && h.sim.printerDone != nil {
		select {
		case <-h.sim.printerDone:
		case <-time.After(5 * time.Second):
			h.log.Warn("simulated printer did not stop")
		}
	}
	h.relay.Safe()
	if !h.wdRan.Load() {
		// The crash-loop wait may have disarmed it already.
		if err := h.wdDev.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			h.log.Error("watchdog disarm failed", "err", err)
		}
	}
}

// startPrinter runs a simulated ESC/POS printer on a pseudo-terminal and
// writes what it prints to data_dir/sim/receipts.txt.
func (s *simSink) startPrinter() (string, error) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		return "", err
	}
	fake := &printertest.Fake{OnPage: func(p printertest.Page) {
		if err := s.appendLine("receipts.txt", p.Text()+"\n----"); err != nil {
			s.log.Warn("simulated receipt not written", "err", err)
		}
	}}
	s.printerDone = make(chan struct{})
	go func() {
		defer close(s.printerDone)
		fake.Serve(master) // ends when the printer side closes the tty
		master.Close()
	}()
	return slave, nil
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
	// A subscriber that fell behind is dropped and subscribes again
	// below: the deferred call must end the newest subscription.
	defer func() { unsub() }()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.leds.Run(ctx) }()
	go func() { defer wg.Done(); h.probe(ctx, svc, j) }()
	wdErr := make(chan error, 1)
	h.wdRan.Store(true)
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
	var wdDone bool // the supervisor has returned; its result is in wdResult
	var wdResult error
	for {
		select {
		case <-ctx.Done():
			if !wdDone {
				wdResult = <-wdErr
			}
			return wdResult
		case err := <-wdErr:
			// The supervisor ended before we were asked to stop: on a
			// stall the board is about to reset. Show it meanwhile.
			wdDone, wdResult, wdErr = true, err, nil
			if err == nil {
				err = errors.New("watchdog supervisor stopped")
			}
			h.fault("watchdog", err)
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
	defer loop.Stop()
	defer journal.Stop()
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

// state is the board section of `kioskd status` (and of the sim board's
// board.json), copied out of the devices' own states into control's
// mirror of them.
func (h *hardware) state() control.Hardware {
	h.mu.Lock()
	faults := make(map[string]string, len(h.faults))
	for k, v := range h.faults {
		faults[k] = v
	}
	h.mu.Unlock()
	ls := h.leds.State(time.Now())
	wd := h.wd.Status()
	s := control.Hardware{
		Board: h.board.Kind,
		Relay: control.Relay(h.relay.State()),
		LEDs: control.LEDs{Pattern: string(ls.Pattern), Green: ls.Green, Amber: ls.Amber, Red: ls.Red,
			Faults: ls.Faults, LastError: ls.LastError},
		Watchdog: control.Watchdog{Running: wd.Running, Feeding: wd.Feeding, Stalled: wd.Stalled,
			Device: wd.Device, Timeout: wd.Timeout, Interval: wd.Interval, Feeds: wd.Feeds,
			LastFeedAge: wd.LastFeedAge, FeedError: wd.FeedError},
		Faults: faults,
	}
	for _, hb := range wd.Heartbeats {
		s.Watchdog.Heartbeats = append(s.Watchdog.Heartbeats, control.Heartbeat(hb))
	}
	if h.board.Sim() {
		s.Pins = h.board.Levels()
	}
	if h.prn != nil {
		ps := h.prn.Status()
		s.Printer = &control.Printer{State: string(ps.State), Since: ps.Since, LastError: ps.LastError,
			Printed: ps.Printed, Failed: ps.Failed, Dropped: ps.Dropped, Queue: ps.Queue}
	}
	return s
}

// writeState keeps data_dir/sim/board.json: what a real board's pins,
// relay and watchdog would be doing now.
func (s *simSink) writeState(st control.Hardware) {
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
