package machine

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/kioskd/kioskd/board/sim"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// requests is a provider that is always ready and hands each request it
// is given to the test.
type requests chan payment.Txn

func (requests) Name() string                          { return "mobypay" }
func (requests) Ready() error                          { return nil }
func (r requests) Request(t *payment.Txn) error        { r <- *t; return nil }
func (requests) SelectPlan(*payment.Txn, string) error { return nil }
func (requests) Cancel(*payment.Txn) error             { return nil }

// syncBuffer is a log sink the buttons' goroutines write to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buttonRig is a running machine on the sim board with price buttons
// "a" (RM 2.00, card) and "b" (RM 5.00, DuitNow QR), each a button to
// ground on a pull-up, debounced 30 ms.
type buttonRig struct {
	t    *testing.T
	m    *Machine
	svc  *payment.Service
	reqs requests
	pins map[string]*gpiotest.Pin
	logs *syncBuffer
}

var rigButtons = []ButtonConfig{
	{Name: "a", Pin: "SIM_BTN_A", Pull: gpio.PullUp, ActiveLow: true, Debounce: 30 * time.Millisecond, Price: 200, Mode: "card"},
	{Name: "b", Pin: "SIM_BTN_B", Pull: gpio.PullUp, ActiveLow: true, Debounce: 30 * time.Millisecond, Price: 500, Mode: "duitnow_qr"},
}

// newButtonRig starts the rig; before, if set, runs after the machine
// opened and before it runs (a button held down at start).
func newButtonRig(t *testing.T, before func(map[string]*gpiotest.Pin)) *buttonRig {
	cfg := testConfig(t)
	cfg.Buttons = rigButtons
	m := openSim(t, cfg, nil)
	r := &buttonRig{t: t, m: m, reqs: make(requests, 16), pins: sim.Pins(m.board), logs: &syncBuffer{}}
	m.log = slog.New(slog.NewTextHandler(r.logs, nil)).With("component", "machine")
	j, err := payment.OpenJournal(filepath.Join(cfg.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	r.svc = payment.NewService(payment.Config{}, j, m, m, r.reqs)
	if before != nil {
		before(r.pins)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svcDone, mDone := make(chan struct{}), make(chan error, 1)
	go func() { defer close(svcDone); r.svc.Run(ctx) }()
	go func() { mDone <- m.Run(ctx, r.svc, j) }()
	t.Cleanup(func() {
		cancel()
		<-mDone
		<-svcDone
		j.Close()
	})
	synctest.Wait()
	return r
}

// set puts a button's pin at the pressed or released level, then lets d
// pass.
func (r *buttonRig) set(name string, pressed bool, d time.Duration) {
	r.pins["SIM_BTN_"+strings.ToUpper(name)].Out(gpio.Level(!pressed)) // active low
	time.Sleep(d)
	synctest.Wait()
}

// requested returns the payments asked for since the last look.
func (r *buttonRig) requested() []payment.Txn {
	var out []payment.Txn
	for {
		select {
		case t := <-r.reqs:
			out = append(out, t)
		default:
			return out
		}
	}
}

func (r *buttonRig) one(what string) payment.Txn {
	r.t.Helper()
	got := r.requested()
	if len(got) != 1 {
		r.t.Fatalf("%s: %d payments asked for, want 1: %+v", what, len(got), got)
	}
	return got[0]
}

func (r *buttonRig) none(what string) {
	r.t.Helper()
	if got := r.requested(); len(got) != 0 {
		r.t.Fatalf("%s: %d payments asked for, want none: %+v", what, len(got), got)
	}
}

// approve acks and approves t and lets the vend run.
func (r *buttonRig) approve(t payment.Txn) {
	r.svc.Report(payment.Report{TxnID: t.ID, Kind: payment.ReportAck, Status: "processing",
		Evidence: payment.Evidence{Type: "ack", Status: "processing"}})
	amount := t.Amount
	r.svc.Report(payment.Report{TxnID: t.ID, Kind: payment.ReportApproved, Amount: &amount, POSTxnID: "000410", AuthCode: "A1",
		Evidence: payment.Evidence{Type: "transaction_result", Status: "success"}})
	time.Sleep(time.Second)
	synctest.Wait()
}

// A clean press asks for one payment of the button's price and mode,
// with a key naming the press; approved, it vends once, and the button's
// status says so. Releasing it asks for nothing.
func TestButtonPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, nil)
		r.none("idle")
		r.set("a", true, 100*time.Millisecond)
		tx := r.one("pressed")
		if tx.Amount != 200 || tx.Mode != "card" || tx.Provider != "mobypay" || !strings.HasPrefix(tx.Key, "button:a:") {
			t.Fatalf("payment %+v", tx)
		}
		r.set("a", false, 100*time.Millisecond)
		r.none("released")
		r.approve(tx)
		if p := r.m.relay.State().Pulses; p != 1 {
			t.Fatalf("%d relay pulses, want 1", p)
		}
		st := r.m.State().Buttons
		if len(st) != 2 || st[0].Presses != 1 || st[0].LastTxn != tx.ID || st[0].Pressed || st[1].Presses != 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

// A contact that bounces for less than the debounce time, on the press
// and on the release, is one press.
func TestButtonBounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, nil)
		for range 5 {
			r.set("a", true, 5*time.Millisecond)
			r.set("a", false, 7*time.Millisecond)
		}
		r.none("bouncing, never 30 ms down")
		r.set("a", true, 100*time.Millisecond)
		tx := r.one("settled down")
		for range 5 {
			r.set("a", false, 6*time.Millisecond)
			r.set("a", true, 4*time.Millisecond)
		}
		r.set("a", false, 100*time.Millisecond)
		r.approve(tx)
		r.none("bounced on release")
		if p := r.m.relay.State().Pulses; p != 1 {
			t.Fatalf("%d relay pulses, want 1", p)
		}
	})
}

// A button held down (stuck, or a customer leaning on it) is one press,
// however long, even after its payment ended.
func TestButtonHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, nil)
		r.set("a", true, 100*time.Millisecond)
		r.approve(r.one("pressed"))
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		r.none("held for 10 minutes")
		if p := r.m.relay.State().Pulses; p != 1 {
			t.Fatalf("%d relay pulses, want 1", p)
		}
	})
}

// Presses while a payment is in progress, of the same button or
// another, are ignored and logged once per payment; after it ends a
// press counts again.
func TestButtonPressDuringPayment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, nil)
		r.set("a", true, 100*time.Millisecond)
		r.set("a", false, 100*time.Millisecond)
		tx := r.one("first press")
		for range 3 {
			r.set("a", true, 100*time.Millisecond)
			r.set("a", false, 100*time.Millisecond)
		}
		r.set("b", true, 100*time.Millisecond)
		r.set("b", false, 100*time.Millisecond)
		r.none("pressed during the payment")
		logs := r.logs.String()
		if n := strings.Count(logs, "button press ignored"); n != 2 { // once for a, once for b
			t.Fatalf("%d ignored lines, want one per button:\n%s", n, logs)
		}
		if !strings.Contains(logs, "txn_id="+tx.ID) {
			t.Fatalf("logs do not name the payment:\n%s", logs)
		}
		if st := r.m.State().Buttons; st[0].Ignored != 3 || st[1].Ignored != 1 || st[0].Presses != 1 {
			t.Fatalf("status %+v", st)
		}
		r.approve(tx)
		r.set("b", true, 100*time.Millisecond)
		if tx := r.one("after the payment"); tx.Amount != 500 || tx.Mode != "duitnow_qr" {
			t.Fatalf("button b: %+v", tx)
		}
	})
}

// A button already down when kioskd starts counts only once it has been
// seen released and is pressed again.
func TestButtonStuckAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, func(pins map[string]*gpiotest.Pin) { pins["SIM_BTN_A"].Out(gpio.Low) })
		time.Sleep(time.Minute)
		synctest.Wait()
		r.none("stuck at start")
		if st := r.m.State().Buttons; !st[0].Pressed {
			t.Fatalf("status %+v", st)
		}
		if !strings.Contains(r.logs.String(), "button pressed at start") {
			t.Fatalf("logs:\n%s", r.logs)
		}
		r.set("a", false, 100*time.Millisecond)
		r.none("released")
		r.set("a", true, 100*time.Millisecond)
		r.one("pressed again")
	})
}

// On the sim board, POST /v1/sim/buttons/{name}/press presses and
// releases the button as a finger would: one payment; an unknown button
// is a 404.
func TestSimPressRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, nil)
		press := route(t, r.m, r.svc, nil, "POST /v1/sim/buttons/{name}/press")
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/sim/buttons/b/press", nil)
		req.SetPathValue("name", "b")
		press(w, req)
		var got control.Button
		if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != 200 || err != nil || got.Presses != 1 || got.Pressed {
			t.Fatalf("press: %d %s %v", w.Code, w.Body.Bytes(), err)
		}
		if tx := r.one("sim press"); tx.Amount != 500 || got.LastTxn != tx.ID {
			t.Fatalf("payment %+v, button %+v", tx, got)
		}
		w = httptest.NewRecorder()
		req = httptest.NewRequest("POST", "/v1/sim/buttons/nope/press", nil)
		req.SetPathValue("name", "nope")
		press(w, req)
		if w.Code != 404 {
			t.Fatalf("unknown button: %d %s", w.Code, w.Body.Bytes())
		}
	})
}
