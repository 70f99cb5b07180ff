package main

import (
	"strings"
	"testing"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// testButton is a price button on the sim board, for the config the
// tests start kioskd with (after its [relay]).
const testButton = `
[[buttons]]
name = "coffee"
pin = "SIM_BTN_COFFEE"
pull = "up"
debounce = "20ms"
price = "2.00"
mode = "card"
`

// kioskd sim press on a sim-board kiosk with a price button: the press
// starts one RM 2.00 card payment, the POS approves it and the relay
// pulses once; status lists the button and its press. An unknown button
// is refused.
func TestE2EButtonPress(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	k := startKioskConfig(t, testButton, nil)
	k.sim(t, possim.Approve)
	events, stop := k.follow(t)
	defer stop()

	code, out, errs := kioskd(t, "", "sim", "press", "-config", k.cfgPath, "coffee")
	if code != exitOK || !strings.HasPrefix(out, "pressed coffee: 1 presses, 0 ignored") {
		t.Fatalf("sim press: exit %d %q %s", code, out, errs)
	}
	var tx payment.Txn
	for e := range events {
		if e.Txn != nil && e.Txn.State == payment.Approved && e.Txn.Vend == payment.VendReleased {
			tx = *e.Txn
			break
		}
	}
	if tx.Amount != 200 || tx.Mode != "card" || !strings.HasPrefix(tx.Key, "button:coffee:") {
		t.Fatalf("payment %+v", tx)
	}
	// One press, one payment, one pulse (vends.log has it before the
	// vend is journaled released).
	if n := k.pulses(t); n != 1 {
		t.Fatalf("%d relay pulses, want 1", n)
	}
	_, jl, _ := kioskd(t, "", "journal", "-json", "-config", k.cfgPath)
	if n := strings.Count(jl, `"txn_id":"TXN`); n != 1 {
		t.Fatalf("%d payments in the journal, want 1:\n%s", n, jl)
	}
	_, st, _ := kioskd(t, "", "status", "-json", "-config", k.cfgPath)
	if !strings.Contains(st, `"name":"coffee"`) || !strings.Contains(st, `"last_txn":"`+tx.ID+`"`) {
		t.Fatalf("status:\n%s", st)
	}
	_, st, _ = kioskd(t, "", "status", "-config", k.cfgPath)
	if !strings.Contains(st, "button coffee on SIM_BTN_COFFEE: RM 2.00 card, released; 1 presses, 0 ignored, last ") {
		t.Fatalf("status:\n%s", st)
	}

	code, _, errs = kioskd(t, "", "sim", "press", "-config", k.cfgPath, "tea")
	if code != exitFail || !strings.Contains(errs, `no button "tea"`) {
		t.Fatalf("unknown button: exit %d %s", code, errs)
	}
}
