package vm

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// posSim is the host's POS terminal, connected to the guest through the
// forwarded port, approving every payment. seen holds the txn_id of every
// payment request it received, across the boots it served.
type posSim struct {
	seen *lines
	// behaviour and delay, when set, replace Approve (possim.Config).
	behaviour possim.Behaviour
	delay     time.Duration
}

func newPOSSim() *posSim { return &posSim{seen: newLines()} }

func (p *posSim) requests() []string { return p.seen.since(0) }

// waitRequest waits for a request after the first from, or d.
func (p *posSim) waitRequest(from int, d time.Duration, done <-chan struct{}) bool {
	_, _, ok := p.seen.wait(from, func(string) bool { return true }, d, done)
	return ok
}

// startPOS runs the simulator against v until the test ends or v is
// killed.
func startPOS(t *testing.T, v *VM, p *posSim) {
	t.Helper()
	b := possim.Approve
	if p.behaviour != "" {
		b = p.behaviour
	}
	sim, err := possim.New(possim.Config{
		Addr: v.pos, Secret: []byte(secret), Behaviour: b, Delay: p.delay,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		OnEvent: func(e possim.Event) {
			if e.Kind == possim.Received && e.Msg.Type == mobypay.TypeTransactionRequest {
				p.seen.add(e.Msg.TxnID, e.At)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Run(ctx) }()
	go func() {
		select {
		case <-v.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// status is the part of `kioskd status -json` the rig reads.
type status struct {
	POS      []payment.POSState `json:"pos"`
	Hardware struct {
		Watchdog struct {
			Device  string
			Timeout time.Duration
			Feeding bool
		} `json:"watchdog"`
	} `json:"hardware"`
}

func (v *VM) status() status {
	v.t.Helper()
	out, rc := v.run("kioskd status -json", 20*time.Second)
	var st status
	if rc != 0 || json.Unmarshal([]byte(out), &st) != nil {
		v.t.Fatalf("kioskd status -json: exit %d: %s", rc, out)
	}
	return st
}

// waitLinked waits until kioskd reports the POS connected.
func (v *VM) waitLinked(d time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := v.status()
		if len(st.POS) > 0 && st.POS[0].State == "connected" {
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("the POS is not connected within %s: %+v", d, st.POS)
		}
		select {
		case <-v.done:
			v.t.Fatal("QEMU exited")
		case <-time.After(200 * time.Millisecond): // polling the guest, not synchronising the test
		}
	}
}

// pay runs `kioskd pay` in the guest and returns the final transaction.
func (v *VM) pay(amount string) payment.Txn {
	v.t.Helper()
	out, rc := v.run("kioskd pay -amount "+amount+" -timeout 60s -json", 90*time.Second)
	var txn payment.Txn
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if rc != 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &txn) != nil {
		v.t.Fatalf("kioskd pay -amount %s: exit %d: %s", amount, rc, out)
	}
	return txn
}

// waitPage waits for the printer's n-th page.
func (v *VM) waitPage(n int, d time.Duration) printertest.Page {
	v.t.Helper()
	if _, _, ok := v.pages.wait(n-1, func(string) bool { return true }, d, v.done); !ok {
		v.t.Fatalf("no receipt %d within %s (printed so far: %q)", n, d, v.printer.Partial().Text())
	}
	return v.printer.Pages()[n-1]
}

// TestVMPayment: a payment from the host's POS simulator on the real
// kernel: approved, one relay pulse of the configured length on the GPIO
// line, the LEDs following, the receipt decoded from the UART.
func TestVMPayment(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "payment"})
		v.ready(90 * time.Second)
		pos := newPOSSim()
		startPOS(t, v, pos)
		v.waitLinked(30 * time.Second)
		if !v.gpio.level(lineGreen, false) {
			t.Error("green LED not on with the POS connected")
		}
		since := time.Now()
		txn := v.pay("1.50")
		if txn.State != payment.Approved || txn.Vend != payment.VendReleased || txn.Review != "" {
			t.Fatalf("payment: %s %s review %q, want approved, released", txn.State, txn.Vend, txn.Review)
		}
		ps := v.gpio.waitPulses(lineRelay, true, since, 1, 5*time.Second)
		if len(ps) != 1 || ps[0].off.IsZero() {
			t.Fatalf("relay pulses since the payment: %v, want exactly one", ps)
		}
		got := ps[0].off.Sub(ps[0].on)
		t.Logf("%s: relay pulse %s (configured %s)", b.name, got.Round(time.Millisecond), relayLen)
		if got < relayLen-20*time.Millisecond || got > relayLen+200*time.Millisecond {
			t.Errorf("relay pulse %s, want %s", got, relayLen)
		}
		// The LEDs: amber blinks while paying, green blinks the success.
		if n := len(v.gpio.pulses(lineAmber, false, since)); n < 1 {
			t.Errorf("amber LED: %d flashes during the payment, want some", n)
		}
		greens := v.gpio.waitPulses(lineGreen, false, ps[0].on, 2, 5*time.Second)
		if len(greens) < 2 {
			t.Errorf("green LED: %d flashes after the approval, want the fast blink", len(greens))
		}
		page := v.waitPage(1, 10*time.Second)
		text := page.Text()
		for _, want := range []string{"APPROVED", "RM 1.50", txn.ID} {
			if !strings.Contains(text, want) {
				t.Errorf("receipt lacks %q:\n%s", want, text)
			}
		}
		if got := pos.requests(); len(got) != 1 || got[0] != txn.ID {
			t.Errorf("the POS saw requests %v, want [%s]", got, txn.ID)
		}
		// No second pulse after the first.
		if ps := v.gpio.pulses(lineRelay, true, since); len(ps) != 1 {
			t.Errorf("relay pulses: %v, want one", ps)
		}
	})
}

// TestVMLatency: payment latency, host's pay command to the product
// released, on the plain virtual disk and on one throttled to an SD
// card's 100 operations a second, where each of the journal's fsyncs
// waits its turn. Reported, and held to a generous bound: a payment
// that waits seconds on its journal at this rate has grown fsyncs.
func TestVMLatency(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		for _, c := range []struct {
			name string
			iops int
		}{{"virtio", 0}, {"sd-like", 100}} {
			v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), iops: c.iops, name: "latency-" + c.name})
			v.ready(90 * time.Second)
			pos := newPOSSim()
			startPOS(t, v, pos)
			v.waitLinked(30 * time.Second)
			var lat []time.Duration
			for range 8 {
				start := time.Now()
				txn := v.pay("1.00")
				if txn.Vend != payment.VendReleased {
					t.Fatalf("%s: payment %s %s", c.name, txn.State, txn.Vend)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			t.Logf("%s: payment latency on the %s disk (iops %d), pay to released incl. the %s pulse: median %s, max %s",
				b.name, c.name, c.iops, relayLen, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
			if lat[len(lat)/2] > 5*time.Second {
				t.Errorf("%s: median payment latency %s", c.name, lat[len(lat)/2])
			}
			v.kill()
		}
	})
}
