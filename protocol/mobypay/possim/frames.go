package possim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// mobypay.Message builders. Keys come in the app's order (see the samples in the
// integration document), with Python's default separators.

// pyObject writes a JSON object as Python's json.dumps does by default.
type pyObject struct{ b []byte }

func (o *pyObject) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ", "...)
	}
	o.b = mobypay.AppendPyString(o.b, k)
	o.b = append(o.b, ": "...)
}

func (o *pyObject) str(k, v string) *pyObject {
	o.key(k)
	o.b = mobypay.AppendPyString(o.b, v)
	return o
}

func (o *pyObject) raw(k string, v []byte) *pyObject {
	o.key(k)
	o.b = append(o.b, v...)
	return o
}

func (o *pyObject) close() []byte {
	if len(o.b) == 0 {
		return []byte("{}")
	}
	return append(o.b, '}')
}

func (s *Sim) head(typ, txn, status string) *pyObject {
	o := &pyObject{}
	o.str("type", typ).str("txn_id", txn)
	if status != "" {
		o.str("status", status)
	}
	return o.str("pos_id", s.cfg.PosID)
}

// seal ends the payload with timestamp and nonce and wraps it in a signed
// envelope. wireSig signs the wire bytes instead of the canonical payload,
// the classic integration mistake the kiosk must refuse.
func (s *Sim) seal(o *pyObject, ts time.Time, wireSig bool) []byte {
	var nonce [16]byte
	rand.Read(nonce[:])
	o.str("timestamp", strconv.FormatInt(ts.UnixMilli(), 10))
	o.str("nonce", base64.StdEncoding.EncodeToString(nonce[:]))
	payload := o.close()
	b := append([]byte(`{"payload": `), payload...)
	b = append(b, `, "signature": "`...)
	if wireSig {
		mac := hmac.New(sha256.New, s.cfg.Secret)
		mac.Write(payload)
		b = hex.AppendEncode(b, mac.Sum(nil))
	} else {
		var err error
		if b, err = s.codec.AppendSignature(b, payload); err != nil {
			panic("possim: built an unsignable payload: " + err.Error())
		}
	}
	return append(b, "\"}\n"...)
}

func (s *Sim) ackFrame(txn, status string) simFrame {
	o := s.head(mobypay.TypeAck, txn, status)
	return simFrame{s.seal(o, s.cfg.Now(), false), mobypay.TypeAck, txn, status}
}

func (s *Sim) errorFrame(txn, text string) simFrame {
	o := &pyObject{}
	o.str("type", mobypay.TypeError).str("txn_id", txn).str("message", text).str("pos_id", s.cfg.PosID)
	return simFrame{s.seal(o, s.cfg.Now(), false), mobypay.TypeError, txn, ""}
}

func (s *Sim) failedFrame(t *simTxn, why string) simFrame {
	o := s.head(mobypay.TypeTransactionResult, t.id, mobypay.StatusFailed)
	o.str("error_message", why).raw("amount", mobypay.AppendPyFloat(nil, t.amount))
	return simFrame{s.seal(o, s.cfg.Now(), false), mobypay.TypeTransactionResult, t.id, mobypay.StatusFailed}
}

// resultFrame is t's final result as the behaviour shapes it.
func (s *Sim) resultFrame(t *simTxn, planID string) simFrame {
	b := s.cfg.Behaviour
	if b == Decline {
		return s.failedFrame(t, "USER_ABORT")
	}
	status, txn, amount, ts := mobypay.StatusSuccess, t.id, t.amount, s.cfg.Now()
	switch b {
	case Approved:
		status = mobypay.StatusApproved
	case WrongAmount:
		if sen, ok := mobypay.FloatToSen(amount); ok {
			amount = float64(sen+100) / 100
		} else {
			amount++
		}
	case WrongTxn:
		txn = otherTxnID(txn)
	case Stale:
		ts = ts.Add(-2 * time.Minute)
	}
	s.seq = (s.seq + 1) % 1_000_000
	o := s.head(mobypay.TypeTransactionResult, txn, status)
	o.str("transaction_id", fmt.Sprintf("%06d", s.seq))
	o.raw("amount", mobypay.AppendPyFloat(nil, amount))
	if t.mode == mobypay.ModeCard || t.mode == mobypay.ModeIPP {
		o.str("authorization_code", fmt.Sprintf("A%05d", (s.seq*7919)%100000))
		o.str("card_last4", "4242")
	}
	if planID != "" {
		o.str("plan_id", planID)
	}
	return simFrame{s.seal(o, ts, b == BadSig), mobypay.TypeTransactionResult, txn, status}
}

// plansFrame offers pay-in-full and a 6-month plan, as the app's sample.
func (s *Sim) plansFrame(t *simTxn) simFrame {
	p := []byte(`[{"planId": "pay-in-full", "frequency": "", "totalInstallments": 0, "installmentDetails": []}, `)
	p = append(p, `{"planId": "ipp-6m", "frequency": "monthly", "totalInstallments": 6, "installmentDetails": [`...)
	if sen, ok := mobypay.FloatToSen(t.amount); ok && sen > 0 {
		each := sen / 6
		for i := range int64(6) {
			amt := each
			if i == 5 {
				amt = sen - 5*each
			}
			if i > 0 {
				p = append(p, ", "...)
			}
			p = fmt.Appendf(p, `{"installment": %d, "amount": `, i+1)
			// Python's repr of sen/100, as the app's amounts: the same
			// float division gives the same digits here.
			p = mobypay.AppendPyFloat(p, float64(amt)/100)
			p = append(p, '}')
		}
	}
	p = append(p, "]}]"...)
	o := s.head(mobypay.TypeTransactionResult, t.id, mobypay.StatusIPPPlans)
	o.raw("plans", p).raw("amount", mobypay.AppendPyFloat(nil, t.amount))
	return simFrame{s.seal(o, s.cfg.Now(), false), mobypay.TypeTransactionResult, t.id, mobypay.StatusIPPPlans}
}

// otherTxnID returns a plausible different txn_id: the next millisecond.
func otherTxnID(id string) string {
	if n, err := strconv.ParseInt(strings.TrimPrefix(id, "TXN"), 10, 64); err == nil && strings.HasPrefix(id, "TXN") {
		return "TXN" + strconv.FormatInt(n+1, 10)
	}
	return id + "0"
}
