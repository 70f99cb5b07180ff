package payment

// The record codec's encoders, append-style like the protocol encoders:
// they write exactly the bytes encoding/json writes for a Txn and an
// Evidence (field order, omitempty, HTML-safe escaping, RFC 3339 times,
// the named types' own MarshalJSON), so that the journal's format is
// unchanged, every journal written before them reads as it did, and
// `kioskd journal -json` prints what it always printed. FuzzTxnEncode
// and FuzzEvidenceEncode hold them to json.Marshal, and
// TestCodecFields to the structs' tags, so that a field added to Txn
// without its line here fails the tests instead of going unwritten.

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// appendTxn appends the JSON of t, as json.Marshal(t) writes it.
func appendTxn(b []byte, t *Txn) ([]byte, error) {
	b = append(b, `{"txn_id":`...)
	b = appendJSONString(b, t.ID)
	b = appendJSONString(append(b, `,"provider":`...), t.Provider)
	b = appendJSONString(append(b, `,"mode":`...), t.Mode)
	b = appendSen(append(b, `,"amount":`...), t.Amount)
	b = appendJSONString(append(b, `,"state":`...), string(t.State))
	b = appendJSONString(append(b, `,"vend":`...), string(t.Vend))
	if t.PulsesTotal != 0 {
		b = strconv.AppendInt(append(b, `,"pulses_total":`...), int64(t.PulsesTotal), 10)
	}
	if t.PulsesDone != 0 {
		b = strconv.AppendInt(append(b, `,"pulses_done":`...), int64(t.PulsesDone), 10)
	}
	if len(t.Plans) > 0 {
		// Only IPP payments have plans, and Plan's own MarshalJSON is
		// encoding/json through and through: it writes them as it
		// always did, allocation and all.
		p, err := json.Marshal(t.Plans)
		if err != nil {
			return b, err
		}
		b = append(append(b, `,"plans":`...), p...)
	}
	b = appendOmitString(b, `,"plan_id":`, t.PlanID)
	b = appendJSONString(append(b, `,"pos_transaction_id":`...), t.POSTransactionID)
	b = appendOmitString(b, `,"auth_code":`, t.AuthCode)
	b = appendOmitString(b, `,"card_last4":`, t.CardLast4)
	b = appendOmitString(b, `,"pos_id":`, t.PosID)
	if t.PaidAmount != nil {
		b = appendSen(append(b, `,"paid_amount":`...), *t.PaidAmount)
	}
	b = appendOmitString(b, `,"paid_amount_text":`, t.PaidAmountText)
	b = appendOmitString(b, `,"idempotency_key":`, t.Key)
	if t.Quarantined {
		b = append(b, `,"quarantined":true`...)
	}
	b = appendJSONString(append(b, `,"error":`...), t.Error)
	b = appendOmitString(b, `,"review":`, t.Review)
	b = appendOmitString(b, `,"settled":`, t.Settled)
	if t.Dropped {
		b = append(b, `,"pos_dropped":true`...)
	}
	b = strconv.AppendInt(append(b, `,"evidence":`...), int64(t.Evidence), 10)
	var err error
	if b, err = appendJSONTime(append(b, `,"created_at":`...), t.CreatedAt); err != nil {
		return b, err
	}
	if b, err = appendJSONTime(append(b, `,"updated_at":`...), t.UpdatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendEvidence appends the JSON of ev, as json.Marshal(ev) writes it
// (Forget is not part of it).
func appendEvidence(b []byte, ev *Evidence) ([]byte, error) {
	b = strconv.AppendUint(append(b, `{"seq":`...), ev.Seq, 10)
	b = appendJSONString(append(b, `,"txn_id":`...), ev.TxnID)
	b, err := appendJSONTime(append(b, `,"at":`...), ev.At)
	if err != nil {
		return b, err
	}
	b = appendJSONString(append(b, `,"source":`...), ev.Source)
	b = appendJSONString(append(b, `,"type":`...), ev.Type)
	b = appendOmitString(b, `,"status":`, ev.Status)
	b = appendJSONString(append(b, `,"disposal":`...), ev.Disposal)
	b = appendJSONString(append(b, `,"payload":`...), ev.Payload)
	b = appendOmitString(b, `,"nonce":`, ev.Nonce)
	return append(b, '}'), nil
}

// appendSen is Sen.MarshalJSON, appended.
func appendSen(b []byte, s Sen) []byte {
	return append(s.appendText(append(b, '"')), '"')
}

// appendOmitString appends key and s, unless s is empty (omitempty).
func appendOmitString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendJSONTime is time.Time's MarshalJSON, appended: RFC 3339 with
// nanoseconds, refusing what RFC 3339 cannot hold (a year outside
// 0-9999, a zone offset of 24 hours or more), as MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case b[n0+len("9999")] != '-': // not a four-digit year
		return b, errors.New("payment: time " + t.String() + ": year outside of range [0,9999]")
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := 10*(b[len(b)-5]-'0') + (b[len(b)-4] - '0')
		if ('0' <= c && c <= '9') || h >= 24 {
			return b, errors.New("payment: time " + t.String() + ": timezone hour outside of range [0,23]")
		}
	}
	return append(b, '"'), nil
}

// appendJSONString appends s as a JSON string the way encoding/json
// writes it by default: '"' and '\\' escaped, the short escapes for
// \b \f \n \r \t, \u00XX for other control characters, and HTML-safe
// (\u003c, \u003e, \u0026 for '<', '>', '&'); invalid UTF-8 becomes
// \ufffd; U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}

// arena is memory for the keys and values of one write transaction.
// bbolt keeps the slices given to Put until the commit copies them into
// its pages, so each must stay untouched until then, and none is needed
// after it: one arena per Journal, used only inside write transactions
// (bbolt runs them one at a time), handed out append-only and reset at
// the first use in the next transaction, makes the buffers of a write
// cost no allocation. A slice handed out is never written again in its
// transaction: when the arena runs short it moves to a new array and
// leaves the old one to what still refers to it. A nil arena allocates.
type arena struct {
	txid int
	b    []byte
}

const (
	arenaSpare = 4 << 10  // least free space a write starts appending to
	arenaKeep  = 64 << 10 // larger arenas (a long Recover) are not kept
)

// tail returns the free end of the arena for tx, to append one value to
// and pass to take.
func (a *arena) tail(tx *bolt.Tx) []byte {
	if a == nil {
		return nil
	}
	if id := tx.ID(); id != a.txid {
		a.txid = id
		if cap(a.b) > arenaKeep {
			a.b = nil
		}
		a.b = a.b[:0]
	}
	if cap(a.b)-len(a.b) < arenaSpare {
		a.b = make([]byte, 0, max(2*cap(a.b), 4*arenaSpare))
	}
	return a.b[len(a.b):]
}

// take marks v, appended to what tail returned, as used, and returns it
// with its capacity cut to its length (an append to it cannot reach the
// next value).
func (a *arena) take(v []byte) []byte {
	if a == nil || len(v) == 0 {
		return v
	}
	if n := len(a.b); cap(a.b)-n >= len(v) && &a.b[n : n+1][0] == &v[0] {
		a.b = a.b[:n+len(v)]
	} else {
		a.b = v // append moved v to an array of its own: continue there
	}
	return v[:len(v):len(v)]
}

// bytes is s in the arena.
func (a *arena) bytes(tx *bolt.Tx, s string) []byte {
	return a.take(append(a.tail(tx), s...))
}
