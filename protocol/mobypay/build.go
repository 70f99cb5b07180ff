package mobypay

import (
	"strconv"
)

// MaxAmountSen bounds amounts (RM 999,999,999.99). Below it every amount
// has at most 11 significant digits, so its Python repr is plain decimal
// notation and appendAmount can write it from integers.
const MaxAmountSen = 99_999_999_999

// Header carries the fields every kiosk message has besides its type.
type Header struct {
	TxnID     string
	KioskID   string
	Nonce     string
	Timestamp int64 // epoch milliseconds
}

// The Append* methods write the kiosk's messages as signed, newline-ended
// envelopes. The payload is written directly in canonical order (keys are
// listed here already sorted), so signing needs no parse, map or
// reflection and, with reused buffers, no allocation. The wire payload is
// the canonical payload itself, which any JSON peer accepts.

// AppendTransactionRequest appends a signed transaction_request.
func (c *Codec) AppendTransactionRequest(dst []byte, h Header, amountSen int64, mode string) ([]byte, error) {
	if amountSen <= 0 || amountSen > MaxAmountSen {
		return dst, errorf("amount %d sen out of range", amountSen)
	}
	if !ValidMode(mode) {
		return dst, errorf("unknown payment mode %q", mode)
	}
	b := append(c.canon[:0], `{"amount":`...)
	b = appendAmount(b, amountSen)
	b = append(b, `,"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	b = append(b, `,"payment_mode":"`...)
	b = append(b, mode...) // a known mode: plain (TestBuilderWordsArePlain)
	b = append(b, '"')
	c.canon = b
	return c.finish(dst, h, TypeTransactionRequest), nil
}

// AppendPlanSelection appends a signed ipp_plan_selection.
func (c *Codec) AppendPlanSelection(dst []byte, h Header, planID string) []byte {
	b := append(c.canon[:0], `{"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	b = append(b, `,"plan_id":`...)
	b = AppendPyString(b, planID)
	c.canon = b
	return c.finish(dst, h, TypeIPPPlanSelection)
}

// AppendCancel appends a signed cancel_transaction.
func (c *Codec) AppendCancel(dst []byte, h Header) []byte {
	b := append(c.canon[:0], `{"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	c.canon = b
	return c.finish(dst, h, TypeCancelTransaction)
}

// finish writes the keys every message ends with (timestamp, txn_id, type
// sort after all others), then signs.
func (c *Codec) finish(dst []byte, h Header, typ string) []byte {
	b := append(c.canon, `,"timestamp":"`...)
	b = strconv.AppendInt(b, h.Timestamp, 10)
	b = append(b, `","txn_id":`...)
	b = AppendPyString(b, h.TxnID)
	b = append(b, `,"type":"`...)
	b = append(b, typ...) // a package constant: plain (TestBuilderWordsArePlain)
	c.canon = append(b, '"', '}')
	return c.envelope(dst)
}

// appendAmount writes sen as Python's repr(sen / 100) would: 10.0, 12.5,
// 0.05. See MaxAmountSen for why this equals the repr.
func appendAmount(b []byte, sen int64) []byte {
	b = strconv.AppendInt(b, sen/100, 10)
	b = append(b, '.')
	frac := sen % 100
	switch {
	case frac == 0:
		return append(b, '0')
	case frac%10 == 0:
		return append(b, byte('0'+frac/10))
	default:
		return append(b, byte('0'+frac/10), byte('0'+frac%10))
	}
}
