package mobypay

import (
	"encoding/binary"
	"math/bits"
	"slices"
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
// envelopes; Canonical then returns the payload inside the envelope
// returned, sharing its memory. The payload is written directly in canonical order (keys are
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
	// Constants of up to 16 bytes are copied inline; a longer or
	// variable-length append calls memmove, a few nanoseconds each, which
	// is why the envelope's head and the first key are appended apart.
	start := len(dst) + len(envelopeHead)
	b := append(dst, envelopeHead...)
	b = append(b, `{"amount":`...)
	b = appendAmount(b, amountSen)
	b = append(b, `,"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	b = append(b, `,"payment_mode":`...)
	b = appendMode(b, mode)
	return c.finish(b, start, h, TypeTransactionRequest), nil
}

// appendMode appends a known mode, quoted (the modes are plain:
// TestBuilderWordsArePlain), each as a constant.
func appendMode(b []byte, mode string) []byte {
	switch mode {
	case ModeCard:
		return append(b, `"`+ModeCard+`"`...)
	case ModeBNPL:
		return append(b, `"`+ModeBNPL+`"`...)
	case ModeDuitNowQR:
		return append(b, `"`+ModeDuitNowQR+`"`...)
	case ModeIPP:
		return append(b, `"`+ModeIPP+`"`...)
	}
	return AppendPyString(b, mode)
}

// AppendPlanSelection appends a signed ipp_plan_selection.
func (c *Codec) AppendPlanSelection(dst []byte, h Header, planID string) []byte {
	start := len(dst) + len(envelopeHead)
	b := append(dst, envelopeHead...)
	b = append(b, `{"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	b = append(b, `,"plan_id":`...)
	b = AppendPyString(b, planID)
	return c.finish(b, start, h, TypeIPPPlanSelection)
}

// AppendCancel appends a signed cancel_transaction.
func (c *Codec) AppendCancel(dst []byte, h Header) []byte {
	start := len(dst) + len(envelopeHead)
	b := append(dst, envelopeHead...)
	b = append(b, `{"kiosk_id":`...)
	b = AppendPyString(b, h.KioskID)
	b = append(b, `,"nonce":`...)
	b = AppendPyString(b, h.Nonce)
	return c.finish(b, start, h, TypeCancelTransaction)
}

// finish writes the keys every message ends with (timestamp, txn_id, type
// sort after all others) to the payload begun at b[start:], then signs it
// and closes the envelope. The payload is written in place, inside the
// envelope: copying it there from a buffer of its own was a twentieth of
// Sign. c.canon is left pointing at it, capacity capped so that nothing
// appends into the caller's buffer through it.
func (c *Codec) finish(b []byte, start int, h Header, typ string) []byte {
	b = append(b, `,"timestamp":"`...)
	b = c.appendTimestamp(b, h.Timestamp)
	b = append(b, `","txn_id":`...)
	b = AppendPyString(b, h.TxnID)
	b = append(b, `,"type":"`...)
	b = append(b, typ...) // a package constant: plain (TestBuilderWordsArePlain)
	b = append(b, '"', '}')
	c.canon, c.root = b[start:len(b):len(b)], -1
	return c.envelopeTail(b)
}

// appendAmount writes sen as Python's repr(sen / 100) would: 10.0, 12.5,
// 0.05. See MaxAmountSen for why this equals the repr.
func appendAmount(b []byte, sen int64) []byte {
	b = appendDecimal(b, sen/100)
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

// appendDecimal appends v in decimal, as strconv.AppendInt(b, v, 10) does;
// for the timestamp, 13 digits, strconv was a twentieth of Sign (its loop
// of digit pairs, then a copy out of its own buffer). Below 1e16 the
// digits are made eight at a time by digits8 and stored as whole words,
// the leading zeros shifted out. TestAppendDecimal and FuzzAppendDecimal
// hold it to strconv.
func appendDecimal(b []byte, v int64) []byte {
	const zeros = 0x3030303030303030 // "00000000"
	if v < 0 || v >= 1e16 {
		return strconv.AppendInt(b, v, 10)
	}
	n := len(b)
	b = slices.Grow(b, 16)[:n+16]
	if v < 1e8 {
		d := digits8(uint64(v))
		z := min(bits.TrailingZeros64(d^zeros)>>3, 7) // keep one digit of 0
		binary.LittleEndian.PutUint64(b[n:], d>>(8*z))
		return b[:n+8-z]
	}
	hi, lo := digits8(uint64(v)/1e8), digits8(uint64(v)%1e8)
	z := bits.TrailingZeros64(hi^zeros) >> 3 // hi is not 0: z < 8
	binary.LittleEndian.PutUint64(b[n:], hi>>(8*z)|lo<<(64-8*z))
	binary.LittleEndian.PutUint64(b[n+8:], lo>>(8*z))
	return b[:n+16-z]
}

// appendTimestamp is appendDecimal for epoch milliseconds, with the
// digits of v/1e8 kept from the last call: they change once a day and
// were half of the timestamp's cost.
func (c *Codec) appendTimestamp(b []byte, v int64) []byte {
	if v < 1e8 || v >= 1e16 {
		return appendDecimal(b, v)
	}
	if hi := uint64(v) / 1e8; hi != c.ts.hi {
		const zeros = 0x3030303030303030
		d := digits8(hi)
		z := bits.TrailingZeros64(d^zeros) >> 3 // hi is not 0: z < 8
		c.ts = tsDigits{hi: hi, word: d >> (8 * z), z: uint8(z)}
	}
	n, z := len(b), uint(c.ts.z)
	b = slices.Grow(b, 16)[:n+16]
	lo := digits8(uint64(v) % 1e8)
	binary.LittleEndian.PutUint64(b[n:], c.ts.word|lo<<(64-8*z))
	binary.LittleEndian.PutUint64(b[n+8:], lo>>(8*z))
	return b[:n+16-int(z)]
}

// tsDigits are the digits of a timestamp's high part, as appendDecimal
// stores them: the leading zeros shifted out, z of them.
type tsDigits struct {
	hi, word uint64
	z        uint8
}

// digits8 returns the eight decimal digits of x < 1e8 as ASCII, the most
// significant in the lowest byte (little-endian, so a store writes them
// in order). x is split into two 4-digit halves in 32-bit lanes, each
// into 2-digit quarters in 16-bit lanes, each into digits in bytes; the
// divisions are multiply-shifts exact in range (y*10486>>20 is y/100 for
// y < 10000, z*103>>10 is z/10 for z < 100; TestDigits8Constants checks
// every case), and no lane's product reaches the next lane's bits that
// the mask keeps.
func digits8(x uint64) uint64 {
	v := x/10000 | (x%10000)<<32
	q := (v * 10486 >> 20) & 0x0000007f0000007f
	v = q | (v-q*100)<<16
	q = (v * 103 >> 10) & 0x000f000f000f000f
	v = q | (v-q*10)<<8
	return v + 0x3030303030303030
}
