package machine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/payment"
)

// snapshotEvery is how often a sidecar is shown the board's state: a
// person watching board.json sees a pulse or a blink within a second.
const snapshotEvery = time.Second

// Run drives the LEDs from service events, probes the critical loops for
// the watchdog, watches the data partition's free space, and keeps a
// board sidecar's snapshot current. It returns when ctx ends, with every
// output safe, and then the watchdog belongs to its supervisor, which
// disarms it.
func (m *Machine) Run(ctx context.Context, svc *payment.Service, j *payment.Journal) error {
	events, unsub := svc.Subscribe()
	// A subscriber that fell behind is dropped and subscribes again
	// below: the deferred call must end the newest subscription.
	defer func() { unsub() }()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); m.leds.Run(ctx) }()
	go func() { defer wg.Done(); m.runButtons(ctx, svc) }()
	go func() { defer wg.Done(); m.probe(ctx, svc, j) }()
	go func() { defer wg.Done(); m.watchDisk(ctx) }()
	wdErr := make(chan error, 1)
	m.wdRan.Store(true)
	go func() { wdErr <- m.wd.Run(ctx) }()
	if err := m.wd.Ready(); err != nil {
		m.log.Warn("service manager not told we are ready", "err", err)
	}
	var snap <-chan time.Time // nil, never ready, without a sidecar
	if m.board.Sidecar != nil {
		t := time.NewTicker(snapshotEvery)
		defer t.Stop()
		snap = t.C
	}
	defer func() {
		wg.Wait()
		m.relay.Safe()
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
			m.fault("watchdog", err)
		case <-snap:
			m.board.Sidecar.Snapshot(m.State())
		case e, ok := <-events:
			if !ok {
				events, unsub = svc.Subscribe()
				continue
			}
			m.follow(e)
		}
	}
}

// follow is the LED policy: the POS link on green, a payment under way
// on amber, its outcome shown for a while after.
func (m *Machine) follow(e payment.Event) {
	now := time.Now()
	if e.POS != nil {
		m.leds.SetLink(e.POS.State == "connected")
	}
	t := e.Txn
	if t == nil {
		return
	}
	switch {
	case t.State == payment.Approved && t.Vend == payment.VendReleased && t.Review == "":
		m.leds.Outcome(led.Approved, now)
	case t.State.Final() && t.Vend != payment.VendReleasing:
		m.leds.Outcome(led.Declined, now)
	case !t.State.Final():
		m.leds.SetPaying(true)
	}
}

// probe proves the payment loop and the journal alive to the watchdog: a
// loop that cannot run an empty command, or a journal that cannot be
// read, stops the feeding and the board resets.
func (m *Machine) probe(ctx context.Context, svc *payment.Service, j *payment.Journal) {
	limit := max(m.wdDev.Timeout(), 3*time.Second)
	loop := m.wd.Register("payment-loop", limit)
	journal := m.wd.Register("journal", limit)
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
