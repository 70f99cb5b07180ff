package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// sealRaw signs payload text as it stands (the test writes every byte of
// it, odd fields included) and sends it.
func (p *posPeer) sealRaw(payload string) {
	p.t.Helper()
	frame, err := p.codec.Seal(nil, []byte(payload))
	if err != nil {
		p.t.Fatalf("seal %s: %v", payload, err)
	}
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.conn.Write(frame); err != nil {
		p.t.Fatal(err)
	}
}

// Issue 9, defects 1 and 2: correctly signed successes that are odd (a
// field of another type, NaN, a status in other case, no nonce, a negative
// amount) used to be dropped before the journal, so the payment ended
// timed_out with no flag although the customer paid, or (-1.00) made the
// journal unreadable. Each must be journaled as evidence, flag the payment
// for review, and never vend; the journal must still read back.
func TestOddSignedSuccessIsFlaggedNeverVended(t *testing.T) {
	k := startKiosk(t)
	cf := clientFlags{config: k.cfgPath}
	c, err := cf.client()
	if err != nil {
		t.Fatal(err)
	}
	pos := dialPOS(t, k.pos)
	k.waitEvent(t, "POS connected", func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
	fresh := func() string {
		return fmt.Sprintf(`"timestamp":"%d","nonce":%q`, time.Now().UnixMilli(), uuid.NewString())
	}
	cases := []struct {
		name, payload string // %s: txn_id, then timestamp and nonce
		state         payment.State
	}{
		{"amount as a string", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":"1.00",%s}`, payment.Approved},
		{"amount NaN", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":NaN,%s}`, payment.Approved},
		{"amount Infinity", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":Infinity,%s}`, payment.Approved},
		{"negative amount", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":-1.0,%s}`, payment.Approved},
		{"plans not an array", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":1.0,"plans":"6m",%s}`, payment.Approved},
		{"transaction_id an object", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":1.0,"transaction_id":{"id":410},%s}`, payment.Approved},
		{"status in other case", `{"type":"transaction_result","status":"SUCCESS","txn_id":%q,"amount":1.0,%s}`, payment.Approved},
		{"empty nonce", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":1.0,%s,"nonce":""}`, payment.Sent},
		{"missing nonce", `{"type":"transaction_result","status":"success","txn_id":%q,"amount":1.0,%s}`, payment.Sent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pos.t = t
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ev, err := c.Follow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tx, _, err := c.Pay(ctx, control.PayRequest{Amount: "1.00", Mode: "card"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if m := pos.expect(mobypay.TypeTransactionRequest); m.TxnID != tx.ID {
				t.Fatalf("request for %s, want %s", m.TxnID, tx.ID)
			}
			rest := fresh()
			if strings.Contains(tc.name, "nonce") {
				rest = fmt.Sprintf(`"timestamp":"%d"`, time.Now().UnixMilli())
			}
			pos.sealRaw(fmt.Sprintf(tc.payload, tx.ID, rest))
			for tx.Review == "" {
				e, ok := <-ev
				if !ok {
					t.Fatalf("no review flag for %s; journal: %+v", tx.ID, tx)
				}
				if e.Txn != nil && e.Txn.ID == tx.ID {
					tx = *e.Txn
				}
			}
			if tx.State != tc.state || tx.Vend != payment.VendNone {
				t.Fatalf("%s: %s", tc.name, tx.Summary())
			}
			full, err := c.PaymentEvidence(ctx, tx.ID)
			if err != nil {
				t.Fatalf("journal does not read back: %v", err)
			}
			if len(full.Messages) != 1 || full.Messages[0].Status != strings.Trim(strings.SplitN(strings.SplitN(tc.payload, `"status":`, 2)[1], ",", 2)[0], `"`) {
				t.Fatalf("evidence %+v", full.Messages)
			}
			if tx.State == payment.Sent {
				// Not acted on: the payment is still open; end it.
				if _, err := c.Cancel(ctx, tx.ID); err != nil {
					t.Fatal(err)
				}
				pos.expect(mobypay.TypeCancelTransaction)
				pos.send(fmt.Sprintf(`"type":"transaction_result","status":"failed","error_message":"USER_ABORT","txn_id":%q`, tx.ID))
				for !control.Over(tx) {
					e, ok := <-ev
					if !ok {
						t.Fatalf("payment %s did not end after cancel: %s", tx.ID, tx.Summary())
					}
					if e.Txn != nil && e.Txn.ID == tx.ID {
						tx = *e.Txn
					}
				}
			}
		})
	}
	list, err := c.Journal(context.Background(), 0)
	if err != nil || len(list) != len(cases) {
		t.Fatalf("journal list: %v (%d payments)", err, len(list))
	}
	if n := k.pulses(t); n != 0 {
		t.Fatalf("%d relay pulses for odd successes", n)
	}
}
