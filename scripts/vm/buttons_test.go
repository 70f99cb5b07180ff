package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// qmpExec sends QEMU a command over QMP; its answer is not an event and
// the event reader drops it.
func (v *VM) qmpExec(cmd string) {
	v.t.Helper()
	if _, err := fmt.Fprintf(v.qmp, `{"execute":%q}`+"\n", cmd); err != nil {
		v.t.Fatalf("qmp %s: %v", cmd, err)
	}
}

// press presses the board's one input the host can drive, GPIO25 (the
// virt machine's power key, lineKey), and holds it for about hold.
// system_powerdown raises PL061 line 3 for 100 ms (QEMU's gpio-key); the
// rig's device tree leaves the line to userspace, so kioskd's price
// button reads it through the real PL061 driver and the GPIO character
// device. Each command sent again within the 100 ms keeps the
// line up, so the press lasts as a finger's does: a 100 ms tap can pass
// unseen by a debouncer whose goroutine TCG keeps from running for most
// of it. It returns when QEMU first pressed the key and the index after
// the last POWERDOWN event.
func (v *VM) press(from int, hold time.Duration) (time.Time, int) {
	v.t.Helper()
	const every = 50 * time.Millisecond // the key's own repeat, not a wait for anything
	n := int(hold/every) + 1
	var first time.Time
	for k := range n {
		if k > 0 {
			<-time.After(every)
		}
		v.qmpExec("system_powerdown")
		e, i, ok := v.events.wait(from, "POWERDOWN", 10*time.Second, v.done)
		if !ok {
			v.t.Fatalf("no POWERDOWN event after system_powerdown: %v", v.events.names())
		}
		if k == 0 {
			first = e.at()
		}
		from = i + 1
	}
	return first, from
}

// posDelay is how long the POS takes over each of TestVMButton's
// payments: room for the test to see one start and press again.
const posDelay = 15 * time.Second

// pressFor is how long TestVMButton holds the key: a firm press, and
// long enough that TCG, running both boards on two loaded cores, cannot
// keep the debouncer's goroutine off the CPU for all of it. At 300 ms an
// armv7 guest in CI once saw neither the press nor its release: the
// status counted no third press and none ignored.
const pressFor = time.Second

// txn is one payment, read back through kioskd journal.
func (v *VM) txn(id string) payment.Txn {
	v.t.Helper()
	for _, x := range v.journal() {
		if x.ID == id {
			return x
		}
	}
	v.t.Fatalf("payment %s not in the journal", id)
	return payment.Txn{}
}

// buttonStatus is the button's entry in `kioskd status -json`.
func (v *VM) buttonStatus() control.Button {
	v.t.Helper()
	out, rc := v.run("kioskd status -json", 20*time.Second)
	var st struct {
		Hardware struct {
			Buttons []control.Button `json:"buttons"`
		} `json:"hardware"`
	}
	if rc != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Hardware.Buttons) != 1 {
		v.t.Fatalf("kioskd status -json: exit %d, want one button: %s", rc, out)
	}
	return st.Hardware.Buttons[0]
}

// waitButton polls the status until ok holds.
func (v *VM) waitButton(what string, d time.Duration, ok func(control.Button) bool) control.Button {
	v.t.Helper()
	deadline := time.Now().Add(d)
	for {
		b := v.buttonStatus()
		if ok(b) {
			return b
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("button: %s not within %s: %+v", what, d, b)
		}
		select {
		case <-v.done:
			v.t.Fatal("QEMU exited")
		case <-time.After(500 * time.Millisecond): // polling the guest, not synchronising the test
		}
	}
}

// TestVMButton: a price button on the real kernel's GPIO. A press of the
// board's key starts a payment of the button's price; the POS approves
// and the relay pulses once. A second press while the POS holds the next
// payment is ignored, and the held payment still vends once.
func TestVMButton(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		image, err := os.ReadFile("guest/kioskd.toml")
		if err != nil {
			t.Fatal(err)
		}
		// The key reads high while pressed, and the PL061 has no bias to
		// set: QEMU's virt machine pulls its undriven lines down itself.
		cfg := fmt.Sprintf("%s\n[[buttons]]\nname = \"start\"\npin = \"GPIO25\"\npull = \"none\"\nactive_low = false\nprice = \"3.00\"\nmode = \"card\"\n", image)
		v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), map[string]string{"kioskd.toml": cfg}), name: "button"})
		v.ready(90 * time.Second)
		pos := newPOSSim()
		pos.behaviour, pos.delay = possim.Slow, posDelay
		startPOS(t, v, pos)
		v.waitLinked(30 * time.Second)
		if st := v.buttonStatus(); st.Pin != "GPIO25" || st.Pressed || st.Presses != 0 {
			t.Fatalf("button before a press: %+v", st)
		}

		// Each wait below also waits for the guest to see the key up
		// again: QEMU holds it 100 ms past the last command, and a press
		// made before the debouncer saw the release would be the same
		// press to it. (A status answered at once let the third press
		// follow the second's release by 22 ms, under the 30 ms debounce,
		// and it was never counted.)
		pressed, qi := v.press(0, pressFor)
		st := v.waitButton("a released vend", 90*time.Second, func(b control.Button) bool {
			return !b.Pressed && b.LastTxn != "" && v.txn(b.LastTxn).Vend == payment.VendReleased
		})
		txn := v.txn(st.LastTxn)
		if st.Presses != 1 || txn.Amount != 300 || txn.State != payment.Approved {
			t.Fatalf("after one press: %+v, payment %s", st, txn.Summary())
		}
		if ps := v.gpio.waitPulses(lineRelay, true, pressed, 1, 5*time.Second); len(ps) != 1 {
			t.Fatalf("relay pulses for the press: %v, want one", ps)
		}
		t.Logf("%s: press → %s", b.name, txn.Summary())

		// The POS takes posDelay over each payment (possim's slow): a
		// press while the second is at the POS is ignored.
		_, qi = v.press(qi, pressFor)
		st = v.waitButton("a second payment", 30*time.Second, func(b control.Button) bool { return b.Presses == 2 && !b.Pressed })
		second := st.LastTxn
		v.press(qi, pressFor)
		st = v.waitButton("the press during a payment ignored", 30*time.Second, func(b control.Button) bool { return b.Ignored == 1 })
		if st.Presses != 2 || v.txn(second).State.Final() {
			t.Fatalf("the press during a payment was not the one ignored: %+v, the payment %s", st, v.txn(second).Summary())
		}
		st = v.waitButton("the second payment vended", 90*time.Second, func(control.Button) bool {
			return v.txn(second).Vend == payment.VendReleased
		})
		if st.Presses != 2 || st.LastTxn != second {
			t.Fatalf("after the ignored press: %+v", st)
		}
		if n := len(v.journal()); n != 2 {
			t.Errorf("%d payments journaled for three presses, one ignored", n)
		}
		t.Logf("%s: presses %d ignored %d, last %s", b.name, st.Presses, st.Ignored, v.txn(second).Summary())
	})
}
