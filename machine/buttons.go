package machine

// Price buttons: a standalone machine's own buttons, each starting a
// payment of its price.
//
// Each button is polled every pollEvery by a goroutine of its own rather
// than waited on with WaitForEdge: periph's edge waits differ by driver
// (the Pi 3's /dev/gpiomem has none, chardev needs the line requested
// with edge detection, gpiotest needs a channel), a missed or coalesced
// edge would leave the debouncer wrong until the next one, and a level
// read every few milliseconds is the same on every board and in tests.
// Reading a level costs one syscall or one memory read; a human press
// lasts a hundred milliseconds or more.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// pollEvery is how often a button's level is read: well under any
// debounce time worth configuring (5 ms at least, see config).
const pollEvery = 2 * time.Millisecond

// createTimeout bounds one press's Create: the service answers once the
// request is sent to the terminal or has failed, which its own ack
// deadline bounds; this only keeps a wedged loop from holding the
// button's goroutine for ever.
const createTimeout = 30 * time.Second

// ButtonConfig is one price button, as plain values.
type ButtonConfig struct {
	Name      string
	Pin       string // as the board names its pins
	Pull      gpio.Pull
	ActiveLow bool          // pressed reads low (a button to ground with a pull-up)
	Debounce  time.Duration // a level must hold this long to count
	Price     payment.Sen
	Mode      string
	Provider  string // "" for the service's default
}

// button is one price button's runtime state.
type button struct {
	cfg ButtonConfig
	pin gpio.PinIn

	mu        sync.Mutex // guards below, read by State
	pressed   bool       // the debounced level
	presses   int        // presses counted (each asked for a payment)
	ignored   int        // presses while a payment was in progress
	lastPress time.Time
	lastTxn   string
	lastErr   string
}

// openButtons sets each button's pin up as an input with its pull.
func openButtons(cfgs []ButtonConfig, pins []gpio.PinIn) ([]*button, error) {
	out := make([]*button, len(cfgs))
	for i, c := range cfgs {
		if err := pins[i].In(c.Pull, gpio.NoEdge); err != nil {
			return nil, fmt.Errorf("machine: button %s: pin %s%s: %w", c.Name, c.Pin, heldBy(pins[i], err), err)
		}
		out[i] = &button{cfg: c, pin: pins[i]}
	}
	return out, nil
}

// heldBy names who holds a line that is busy: a kernel driver the
// device tree bound to it (gpio-keys, a LED trigger) or another program.
// The pin's own description is multi-line JSON, no use in one log line.
func heldBy(p gpio.PinIn, err error) string {
	c, ok := p.(interface{ Consumer() string })
	if !errors.Is(err, syscall.EBUSY) || !ok || c.Consumer() == "" {
		return ""
	}
	return fmt.Sprintf(" (in use by %q)", c.Consumer())
}

func boardButtons(cfgs []ButtonConfig) []board.Button {
	out := make([]board.Button, len(cfgs))
	for i, c := range cfgs {
		out[i] = board.Button{Name: c.Name, Pin: c.Pin}
	}
	return out
}

// isPressed reads the raw (undebounced) level as pressed or not.
func (b *button) isPressed() bool {
	return (b.pin.Read() == gpio.High) != b.cfg.ActiveLow
}

// runButtons polls every button until ctx ends.
func (m *Machine) runButtons(ctx context.Context, svc *payment.Service) {
	var wg sync.WaitGroup
	for _, b := range m.buttons {
		wg.Add(1)
		go func() { defer wg.Done(); m.watchButton(ctx, svc, b) }()
	}
	wg.Wait()
}

// watchButton debounces one button: the debounced level changes only
// when the raw level has differed from it for the whole debounce time,
// so a bouncing contact changes it once. A press counts only on a change
// from released to pressed; the level it starts at is taken as it is,
// so a button stuck pressed at start counts only after it was seen
// released. Held down, it stays pressed and counts once.
func (m *Machine) watchButton(ctx context.Context, svc *payment.Service, b *button) {
	log := m.log.With("button", b.cfg.Name)
	stable := b.isPressed()
	b.setPressed(stable)
	if stable {
		log.Warn("button pressed at start; it counts once it has been released")
	}
	var since time.Time // when the raw level started to differ from stable; zero while it agrees
	var lastIgnored string
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		raw := b.isPressed()
		if raw == stable {
			since = time.Time{}
			continue
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		if now.Sub(since) < b.cfg.Debounce {
			continue
		}
		stable, since = raw, time.Time{}
		b.setPressed(stable)
		if !stable {
			continue
		}
		if cur := svc.Current(); cur != nil {
			// The LEDs already show the payment; one line per payment is
			// enough for a customer pressing again and again.
			b.count(func() { b.ignored++ })
			if cur.ID != lastIgnored {
				lastIgnored = cur.ID
				log.Info("button press ignored: a payment is in progress", "txn_id", cur.ID)
			}
			continue
		}
		m.press(ctx, svc, b, log, now)
	}
}

func (b *button) setPressed(p bool) { b.count(func() { b.pressed = p }) }

func (b *button) count(f func()) {
	b.mu.Lock()
	f()
	b.mu.Unlock()
}

// press asks for one payment of the button's price. The idempotency key
// names this press (button and time), so that the attempt made again
// after the service did not answer in time returns the payment the first
// one may have started instead of a second one.
func (m *Machine) press(ctx context.Context, svc *payment.Service, b *button, log *slog.Logger, at time.Time) {
	key := "button:" + b.cfg.Name + ":" + strconv.FormatInt(at.UnixNano(), 10)
	req := payment.CreateRequest{Provider: b.cfg.Provider, Mode: b.cfg.Mode, Amount: b.cfg.Price, Key: key}
	var t payment.Txn
	var err error
	for range 2 {
		cctx, cancel := context.WithTimeout(ctx, createTimeout)
		t, err = svc.Create(cctx, req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	b.count(func() {
		b.presses++
		b.lastPress, b.lastTxn, b.lastErr = at, t.ID, ""
		if err != nil {
			b.lastErr = err.Error()
		}
	})
	if err != nil {
		// ErrBusy here is a payment started between the look and the
		// ask (another button, the controller): ignored like any other.
		log.Warn("button press started no payment", "price", b.cfg.Price.String(), "mode", b.cfg.Mode, "err", err)
		return
	}
	log.Info("button press started a payment", "txn_id", t.ID, "price", b.cfg.Price.String(), "mode", b.cfg.Mode)
}

// buttonStates is the buttons' part of State.
func (m *Machine) buttonStates() []control.Button {
	var out []control.Button
	for _, b := range m.buttons {
		b.mu.Lock()
		out = append(out, control.Button{Name: b.cfg.Name, Pin: b.cfg.Pin, Price: b.cfg.Price.String(), Mode: b.cfg.Mode,
			Provider: b.cfg.Provider, Pressed: b.pressed, Presses: b.presses, Ignored: b.ignored,
			LastPress: b.lastPress, LastTxn: b.lastTxn, LastError: b.lastErr})
		b.mu.Unlock()
	}
	return out
}

// simPressRoute is POST /v1/sim/buttons/{name}/press, served only on a
// board whose sidecar can drive inputs (the sim): it holds the button
// down for twice its debounce time and releases it for as long, as a
// finger would, and answers when the button is back up.
func (m *Machine) simPressRoute() []control.Route {
	drv, ok := m.board.Sidecar.(board.InputDriver)
	if !ok {
		return nil
	}
	return []control.Route{{Pattern: "POST /v1/sim/buttons/{name}/press", Handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		name := r.PathValue("name")
		var b *button
		for _, c := range m.buttons {
			if c.cfg.Name == name {
				b = c
			}
		}
		if b == nil {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(control.Error{Error: fmt.Sprintf("no button %q", name)})
			return
		}
		if err := m.simPress(r.Context(), drv, b); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(control.Error{Error: err.Error()})
			return
		}
		json.NewEncoder(w).Encode(m.buttonState(b))
	}}}
}

func (m *Machine) buttonState(b *button) control.Button {
	for _, s := range m.buttonStates() {
		if s.Name == b.cfg.Name {
			return s
		}
	}
	return control.Button{}
}

// simPress drives one press and release, each held for twice the
// debounce time and a few polls, so that the watcher counts both.
func (m *Machine) simPress(ctx context.Context, drv board.InputDriver, b *button) error {
	hold := 2*b.cfg.Debounce + 5*pollEvery
	down, up := gpio.Level(!b.cfg.ActiveLow), gpio.Level(b.cfg.ActiveLow)
	if err := drv.DriveInput(b.cfg.Pin, down); err != nil {
		return err
	}
	err := wait(ctx, hold)
	// Released whatever happened: a request that ends early must not
	// leave a simulated button stuck down.
	if uerr := drv.DriveInput(b.cfg.Pin, up); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	return wait(ctx, hold)
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
