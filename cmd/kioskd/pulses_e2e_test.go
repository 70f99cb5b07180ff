package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// A coin-op kiosk on the sim board: an approved RM 3.00 is 3 coin pulses
// of RM 1.00, each in vends.log and counted in status, journaled as they
// went; RM 2.50 is refused before anything reaches the POS.
func TestPayInPulses(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	// The test config ends in [relay]: these keys join it.
	k := startKioskConfig(t, "mode = \"pulses\"\npulse_value = \"1.00\"\npulse_on = \"10ms\"\npulse_off = \"10ms\"\n", nil)
	k.sim(t, possim.Approve)

	code, out, errs := kioskd(t, "", "pay", "-amount", "2.50", "-json", "-config", k.cfgPath)
	if code == exitOK || !strings.Contains(errs, "amount 2.50 is not a whole number of pulses of RM 1.00") {
		t.Fatalf("RM 2.50 in RM 1.00 pulses: exit %d %q %s", code, out, errs)
	}

	code, out, errs = kioskd(t, "", "pay", "-amount", "3.00", "-json", "-config", k.cfgPath)
	var tx payment.Txn
	if err := json.Unmarshal([]byte(out), &tx); err != nil || code != exitOK {
		t.Fatalf("pay: exit %d %q %v\n%s", code, out, err, errs)
	}
	if tx.State != payment.Approved || tx.Vend != payment.VendReleased || tx.PulsesTotal != 3 || tx.PulsesDone != 3 || tx.Review != "" {
		t.Fatalf("paid %+v", tx)
	}
	// The train's fields are in the control API's document.
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	v, err := decodeJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if problems := doc.check("payment", map[string]any{"$ref": "#/components/schemas/Txn"}, v); len(problems) > 0 {
		t.Errorf("pay -json against docs/control-api.json: %s", strings.Join(problems, "\n"))
	}
	if n := k.pulses(t); n != 3 {
		t.Fatalf("%d pulses in vends.log, want 3", n)
	}
	log, _ := os.ReadFile(filepath.Join(k.dir, "data", "sim", "vends.log"))
	for _, want := range []string{" on " + tx.ID + " 3.00 pulse 1/3\n", " on " + tx.ID + " 3.00 pulse 3/3\n"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("vends.log lacks %q:\n%s", want, log)
		}
	}
	_, st, _ := kioskd(t, "", "status", "-json", "-config", k.cfgPath)
	if !strings.Contains(st, `"pulses":3`) {
		t.Errorf("status after a train of 3:\n%s", st)
	}
	_, jl, _ := kioskd(t, "", "journal", "-config", k.cfgPath)
	if !strings.Contains(jl, tx.ID) || !strings.Contains(jl, "pulses=3/3") {
		t.Errorf("journal:\n%s", jl)
	}
}

// SIGKILL inside the second pulse of an RM 3.00 train: after the restart
// the payment is vend_unknown with 1 of 3 pulses on record, the relay
// gave 2 (the one in doubt included), and nothing is pulsed again, not
// even for a late success.
func TestCrashMidTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	dir := t.TempDir()
	// Long pulses to kill inside one; the train (3 × 2.5 s) fits half of
	// the 15 s watchdog.
	cfg := writeTestConfig(t, dir, strings.Replace(crashConfig(50*time.Millisecond), "[relay]\n",
		"[relay]\nmode = \"pulses\"\npulse_value = \"1.00\"\npulse_on = \"2s\"\npulse_off = \"500ms\"\nmax_pulses = 3\n", 1))
	d := startDaemon(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := d.watch(ctx)
	p := dialPOS(t, d.posAddr)
	w.connected()
	tx := d.pay("card", "3.00")
	p.expect(mobypay.TypeTransactionRequest)
	p.send(`"type":"transaction_result","status":"success","txn_id":"` + tx.ID + `","amount":3.0,"transaction_id":"000410"`)
	w.txn(tx.ID, func(t payment.Txn) bool { return t.PulsesDone == 1 })
	d.waitLog("relay on (simulated)") // pulse 1
	d.waitLog("relay on (simulated)") // pulse 2, inside which the power goes
	d.kill()
	cancel()

	d2 := startDaemon(t, cfg)
	got := d2.get(tx.ID)
	if got.Vend != payment.VendUnknown || got.PulsesDone != 1 || got.PulsesTotal != 3 ||
		!strings.HasPrefix(got.Review, "vend_unknown: 1 of 3 pulses confirmed; pulse 2 may or may not have been given") {
		t.Fatalf("after restart: %+v\n%s", got, d2.logText())
	}
	if !strings.Contains(d2.logText(), "vend_unknown: 1 of 3 pulses confirmed") {
		t.Errorf("the restart did not log the review:\n%s", d2.logText())
	}
	if n := vendPulses(t, dir, tx.ID); n != 2 {
		t.Fatalf("%d pulses in vends.log, want 2", n)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w2 := d2.watch(ctx2)
	p2 := dialPOS(t, d2.posAddr)
	w2.connected()
	p2.send(`"type":"transaction_result","status":"success","txn_id":"` + tx.ID + `","amount":3.0`)
	after := w2.txn(tx.ID, func(t payment.Txn) bool { return t.Evidence > got.Evidence })
	if after.Vend != payment.VendUnknown || after.PulsesDone != 1 || vendPulses(t, dir, tx.ID) != 2 {
		t.Fatalf("late success after the crash: %+v, %d pulses", after, vendPulses(t, dir, tx.ID))
	}
}
