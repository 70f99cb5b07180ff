package mobypay

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Message types.
const (
	TypeTransactionRequest = "transaction_request"
	TypeIPPPlanSelection   = "ipp_plan_selection"
	TypeCancelTransaction  = "cancel_transaction"
	TypeAck                = "ack"
	TypeTransactionResult  = "transaction_result"
	TypeError              = "error"
)

// Statuses of ack and transaction_result. They are matched exactly: the
// reference kiosk's substring match would take "unsuccessful" for success.
const (
	StatusProcessing   = "processing"
	StatusReceived     = "received"
	StatusPlanReceived = "plan_received"
	StatusSuccess      = "success"
	StatusApproved     = "approved"
	StatusFailed       = "failed"
	StatusIPPPlans     = "ipp_plans"
)

// Payment modes.
const (
	ModeCard      = "card"
	ModeBNPL      = "bnpl"
	ModeDuitNowQR = "duitnow_qr"
	ModeIPP       = "ipp"
)

// ValidMode reports whether m is one of the four payment modes.
func ValidMode(m string) bool {
	switch m {
	case ModeCard, ModeBNPL, ModeDuitNowQR, ModeIPP:
		return true
	}
	return false
}

// Message is a decoded payload. Known fields are typed; Payload keeps the
// whole canonical payload, unknown fields included, as evidence.
type Message struct {
	Type      string
	TxnID     string
	Status    string
	Timestamp string // epoch milliseconds, as sent
	Nonce     string
	KioskID   string
	PosID     string

	PaymentMode       string
	TransactionID     string
	AuthorizationCode string
	CardLast4         string
	PlanID            string
	ErrorMessage      string // transaction_result failed: error_message
	Text              string // error: message

	Amount    float64
	HasAmount bool
	Plans     []Plan

	Payload string
}

// Plan is one IPP plan offered in transaction_result ipp_plans.
type Plan struct {
	ID                string // planId
	Frequency         string
	TotalInstallments int64
	Raw               string // the plan's canonical JSON
}

// IsSuccess reports a final successful result; "success" and "approved"
// mean the same.
func (m *Message) IsSuccess() bool {
	return m.Type == TypeTransactionResult && (m.Status == StatusSuccess || m.Status == StatusApproved)
}

// TimestampMillis parses the timestamp. Python's reference does int() on
// it, so a JSON number is accepted as well as a string of digits.
func (m *Message) TimestampMillis() (int64, error) {
	return parseMillis(m.Timestamp)
}

func parseMillis(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("mobypay: no timestamp")
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return 0, fmt.Errorf("mobypay: timestamp %.20q is not epoch milliseconds", s)
	}
	return ms, nil
}

// AmountSen converts the amount to integer sen. It succeeds only when the
// float sent is exactly the double nearest to a whole number of sen, so an
// amount such as 0.30000000000000004 never passes for 0.30.
func (m *Message) AmountSen() (int64, bool) {
	if !m.HasAmount {
		return 0, false
	}
	return FloatToSen(m.Amount)
}

// FloatToSen is the inverse of the kiosk's own amount encoding.
func FloatToSen(f float64) (int64, bool) {
	if math.IsNaN(f) || math.Abs(f) > float64(MaxAmountSen)/100 {
		return 0, false
	}
	n := math.Round(f * 100)
	if n/100 != f {
		return 0, false
	}
	return int64(n), true
}

// Decode fills m from the payload of the last successful Open. It must be
// called before the frame passed to Open is reused.
//
// Field values are taken as substrings of one string copy of the canonical
// payload whenever their canonical form needs no escapes (all realistic
// traffic), which keeps a decoded message to a couple of allocations.
func (c *Codec) Decode(m *Message) error {
	*m = Message{Payload: string(c.canon)}
	root := c.p.nodes[c.root]
	var err error
	for _, k := range c.p.kids[root.kids : root.kids+root.nkids] {
		var dst *string
		switch string(c.p.key(k)) {
		case "type":
			dst = &m.Type
		case "txn_id":
			dst = &m.TxnID
		case "status":
			dst = &m.Status
		case "timestamp":
			dst = &m.Timestamp
		case "nonce":
			dst = &m.Nonce
		case "kiosk_id":
			dst = &m.KioskID
		case "pos_id":
			dst = &m.PosID
		case "payment_mode":
			dst = &m.PaymentMode
		case "transaction_id":
			dst = &m.TransactionID
		case "authorization_code":
			dst = &m.AuthorizationCode
		case "card_last4":
			dst = &m.CardLast4
		case "plan_id":
			dst = &m.PlanID
		case "error_message":
			dst = &m.ErrorMessage
		case "message":
			dst = &m.Text
		case "amount":
			if m.Amount, err = c.number(k); err != nil {
				return fmt.Errorf("mobypay: amount: %w", err)
			}
			m.HasAmount = true
		case "plans":
			if m.Plans, err = c.plans(m.Payload, k); err != nil {
				return err
			}
		}
		if dst != nil {
			if *dst, err = c.text(m.Payload, k); err != nil {
				return fmt.Errorf("mobypay: %s: %w", c.p.key(k), err)
			}
		}
	}
	if m.Type == "" {
		return errors.New("mobypay: payload has no type")
	}
	return nil
}

// text returns a string field, or a number's canonical text: ids such as
// transaction_id are strings in every sample, but a POS that sends 410 for
// "410" should not lose its outcome over it.
func (c *Codec) text(canon string, n int32) (string, error) {
	nd := c.p.nodes[n]
	switch nd.kind {
	case kString:
		s := canon[nd.oStart+1 : nd.oEnd-1]
		if !strings.Contains(s, `\`) {
			return s, nil
		}
		var err error
		c.p.str, err = decodeString(c.p.str[:0], c.p.in[nd.start:nd.end])
		return string(c.p.str), err
	case kNumber, kFloat:
		return canon[nd.oStart:nd.oEnd], nil
	case kNull:
		return "", nil
	}
	return "", errors.New("not a string")
}

func (c *Codec) number(n int32) (float64, error) {
	nd := c.p.nodes[n]
	if nd.kind != kNumber && nd.kind != kFloat {
		return 0, errors.New("not a number")
	}
	return strconv.ParseFloat(string(c.p.in[nd.start:nd.end]), 64)
}

func (c *Codec) plans(canon string, n int32) ([]Plan, error) {
	nd := c.p.nodes[n]
	if nd.kind != kArray {
		return nil, errors.New("mobypay: plans is not an array")
	}
	plans := make([]Plan, 0, nd.nkids)
	for _, e := range c.p.kids[nd.kids : nd.kids+nd.nkids] {
		en := c.p.nodes[e]
		if en.kind != kObject {
			return nil, errors.New("mobypay: plan is not an object")
		}
		pl := Plan{Raw: canon[en.oStart:en.oEnd]}
		for _, k := range c.p.kids[en.kids : en.kids+en.nkids] {
			var err error
			switch string(c.p.key(k)) {
			case "planId":
				pl.ID, err = c.text(canon, k)
			case "frequency":
				pl.Frequency, err = c.text(canon, k)
			case "totalInstallments":
				var f float64
				if f, err = c.number(k); err == nil {
					pl.TotalInstallments = int64(f)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("mobypay: plan %s: %w", c.p.key(k), err)
			}
		}
		if pl.ID == "" {
			return nil, errors.New("mobypay: plan without planId")
		}
		plans = append(plans, pl)
	}
	return plans, nil
}
