package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// startWithPOS starts a daemon child and connects a scripted POS to it;
// cancel ends the event stream (before the daemon is killed).
func startWithPOS(t *testing.T, cfgPath string) (*daemon, *posPeer, *watch, context.CancelFunc) {
	t.Helper()
	d := startDaemon(t, cfgPath)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := d.watch(ctx)
	p := dialPOS(t, d.posAddr)
	w.connected()
	return d, p, w, cancel
}

// Issue 9, defects 8 and 3: what the kiosk learned about its POS must
// survive a power cut. A byte-identical replay of a success inside the
// timestamp window after a restart used to be accepted and journaled (the
// nonces lived in memory only); and after a restart a silent connection
// from another host held the POS slot, refusing the real POS.
func TestRestartKeepsNoncesAndTheProvenPOS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, crashConfig(10*time.Millisecond))
	d, p, w, cancel := startWithPOS(t, cfgPath)
	tx := d.pay("card", "12.50")
	p.expect(mobypay.TypeTransactionRequest)
	payload := fmt.Sprintf(`{"type":"transaction_result","status":"success","txn_id":%q,"amount":12.5,"transaction_id":"000410","pos_id":"POS001","timestamp":"%d","nonce":%q}`,
		tx.ID, time.Now().UnixMilli(), uuid.NewString())
	frame, err := p.codec.Seal(nil, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	w.txn(tx.ID, func(t payment.Txn) bool { return t.Vend == payment.VendReleased })
	// The proof is saved off the session goroutine; wait for the file.
	saved := filepath.Join(dir, "data", mobypay.LastProvenFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(saved); err == nil && string(b) == "127.0.0.1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proven POS host was not saved")
		}
		<-time.After(10 * time.Millisecond)
	}
	cancel()
	d.kill()

	d = startDaemon(t, cfgPath)
	// A silent squatter from another host gets there first.
	sq, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", d.posAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w = d.watch(ctx)
	w.until("squatter connected", func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
	p = dialPOS(t, d.posAddr)
	sq.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, sq); err != nil {
		t.Fatalf("squatter not displaced by the last proven POS host: %v", err)
	}
	if _, err := p.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	// A fresh message after the replay: once it is journaled the replay
	// has certainly been judged.
	p.send(`"type":"ack","status":"processing","txn_id":"` + tx.ID + `"`)
	w.txn(tx.ID, func(t payment.Txn) bool { return t.Evidence >= 2 })
	st, err := d.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full, err := d.c.PaymentEvidence(ctx, tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.POSStats.Replayed != 1 || len(full.Messages) != 2 || full.Messages[1].Type != "ack" {
		b, _ := json.Marshal(full.Messages)
		t.Fatalf("replay after restart: stats %v, evidence %s", st.POSStats, b)
	}
	if n := vendPulses(t, dir, tx.ID); n != 1 {
		t.Fatalf("%d pulses", n)
	}
}

// Issue 9, defect 6: a controller that asks again for the same order
// after the daemon restarted must get the payment already made, not a
// second charge.
func TestPayKeyAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, crashConfig(10*time.Millisecond))
	d, p, _, cancel := startWithPOS(t, cfgPath)
	type result struct {
		code     int
		out, err string
	}
	pay := func() <-chan result {
		ch := make(chan result, 1)
		go func() {
			code, out, errs := kioskd(t, "", "pay", "-config", cfgPath, "-key", "ORDER-42", "-amount", "3.00", "-timeout", "30s")
			ch <- result{code, out, errs}
		}()
		return ch
	}
	first := pay()
	m := p.expect(mobypay.TypeTransactionRequest)
	p.send(`"type":"ack","status":"processing","txn_id":"` + m.TxnID + `"`)
	p.send(`"type":"transaction_result","status":"success","txn_id":"` + m.TxnID + `","amount":3.0,"transaction_id":"000411"`)
	if r := <-first; r.code != exitOK {
		t.Fatalf("first pay: exit %d\n%s%s", r.code, r.out, r.err)
	}
	cancel()
	d.kill()

	d = startDaemon(t, cfgPath)
	r := <-pay()
	if r.code != exitOK || !strings.Contains(r.out, m.TxnID) || !strings.Contains(r.out+r.err, "already") {
		t.Fatalf("same key after restart: exit %d\n%s%s", r.code, r.out, r.err)
	}
	list, err := d.c.Journal(context.Background(), 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("journal: %v, %d payments", err, len(list))
	}
	if n := vendPulses(t, dir, m.TxnID); n != 1 {
		t.Fatalf("%d pulses", n)
	}
}
