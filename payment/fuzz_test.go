package payment

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// FuzzParseAmount: whatever the controller sends as an amount either is
// refused or survives a round trip through its decimal form unchanged.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "0.01", "1", "1.5", "999999999999.99", "1.234", "-1", "1e3", "", ".", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAmount(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseAmount(%q) = %d", s, v)
		}
		back, err := ParseAmount(v.String())
		if err != nil || back != v {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
		b, _ := json.Marshal(v)
		var j Sen
		if err := json.Unmarshal(b, &j); err != nil || j != v {
			t.Fatalf("json round trip of %d: %s %d %v", v, b, j, err)
		}
	})
}

// fuzzBytes hands out the fuzzer's bytes as field values; past the end
// every value is zero.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzBytes) uint64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(f.byte())
	}
	return v
}

func (f *fuzzBytes) bool() bool { return f.byte()&1 == 1 }

// bytes returns up to 63 raw bytes.
func (f *fuzzBytes) bytes() []byte {
	n := min(int(f.byte()&63), len(f.b))
	s := f.b[:n]
	f.b = f.b[n:]
	return s
}

// str returns up to 63 bytes as valid UTF-8. Invalid UTF-8 is out of
// scope: every string that reaches a Txn or an Evidence comes from our own
// code or from a parser that refuses or replaces it (the MobyPay
// canonicaliser refuses invalid UTF-8, encoding/json replaces it in KPOS
// notifications and API requests), and encoding/json could not keep it.
func (f *fuzzBytes) str() string { return strings.ToValidUTF8(string(f.bytes()), "\uFFFD") }

// time returns a wall clock in years 1 to 9999 (what RFC 3339 and so
// encoding/json can write) in UTC or a zone offset of whole minutes below
// 24 h (RFC 3339 keeps no seconds of an offset).
func (f *fuzzBytes) time() time.Time {
	loc := time.UTC
	if f.bool() {
		off := int(int16(f.byte())<<8|int16(f.byte())) % (24 * 60)
		loc = time.FixedZone("", off*60)
	}
	u := f.uint64()
	return time.Date(1+int(u%9999), time.Month(1+u/9999%12), int(1+u/119988%28),
		int(f.byte()%24), int(f.byte()%60), int(f.byte()%60), int(f.uint64()%1e9), loc)
}

// raw returns a plan's raw JSON as the POS may sign it: none, a JSON
// string, the canonical form with NaN (not JSON), one with '<' or
// whitespace, or any text.
func (f *fuzzBytes) raw() json.RawMessage {
	s := f.str()
	var r []byte
	switch f.byte() % 6 {
	case 0:
		return nil
	case 1:
		r, _ = json.Marshal(s)
	case 2:
		r = mobypay.AppendPyString([]byte(`{"amount":NaN,"planId":`), s)
		r = append(r, '}')
	case 3:
		r = []byte(`{"a":"<&>` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, ``), `"`, ``) + `"}`)
	case 4:
		r = []byte(` { "n" : -1.0e400 } `)
	default:
		r = []byte(s)
	}
	if len(r) == 0 {
		return nil // the codec keeps no difference between empty and none
	}
	return r
}

func fuzzTxn(f *fuzzBytes) Txn {
	t := Txn{
		ID: f.str(), Provider: f.str(), Mode: f.str(), Amount: Sen(f.uint64()),
		State: State(f.str()), Vend: Vend(f.str()),
	}
	for range f.byte() % 4 {
		t.Plans = append(t.Plans, Plan{ID: f.str(), Frequency: f.str(), TotalInstallments: int64(f.uint64()), Raw: f.raw()})
	}
	t.PlanID, t.POSTransactionID, t.AuthCode, t.CardLast4, t.PosID = f.str(), f.str(), f.str(), f.str(), f.str()
	if f.bool() {
		paid := Sen(f.uint64())
		t.PaidAmount = &paid
	}
	t.PaidAmountText, t.Key, t.Quarantined = f.str(), f.str(), f.bool()
	t.Error, t.Review, t.Settled, t.Dropped, t.Evidence = f.str(), f.str(), f.str(), f.bool(), int(f.uint64())
	t.CreatedAt, t.UpdatedAt = f.time(), f.time()
	return t
}

func fuzzEvidence(f *fuzzBytes) Evidence {
	return Evidence{Seq: f.uint64(), TxnID: f.str(), At: f.time(), Source: f.str(), Type: f.str(),
		Status: f.str(), Disposal: f.str(), Payload: f.str(), Nonce: f.str()}
}

// FuzzTxnRoundTrip: whatever the journal writes it reads back. Any Txn
// (any int64 amount, negative or huge, nil or not, plans with any raw
// form, any valid UTF-8 text, any time RFC 3339 can hold) encodes, decodes
// through the journal's own decoder to an equal Txn, and encodes again to
// the same bytes; so does any Evidence.
func FuzzTxnRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x03TXN\x07mobypay\x04card\xff\xff\xff\xff\xff\xff\xff\x9c\x06approved"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := &fuzzBytes{data}
		in := fuzzTxn(fb)
		b, err := encodeTxn(&in)
		if err != nil {
			t.Fatalf("encode %+v: %v", in, err)
		}
		out, err := decodeTxn([]byte(in.ID), b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		b2, err := encodeTxn(out)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encoded differently (%v):\n%s\n%s", err, b, b2)
		}
		if !in.CreatedAt.Equal(out.CreatedAt) || !in.UpdatedAt.Equal(out.UpdatedAt) {
			t.Fatalf("times: %v %v -> %v %v", in.CreatedAt, in.UpdatedAt, out.CreatedAt, out.UpdatedAt)
		}
		in.CreatedAt, in.UpdatedAt, out.CreatedAt, out.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(in, *out) {
			t.Fatalf("round trip of %s:\n in %#v\nout %#v", b, in, *out)
		}

		ev := fuzzEvidence(fb)
		ev.Forget = time.Unix(1, 0) // not part of the record
		eb, err := encodeEvidence(&ev)
		if err != nil {
			t.Fatalf("encode %+v: %v", ev, err)
		}
		var back Evidence
		if err := json.Unmarshal(eb, &back); err != nil {
			t.Fatalf("decode %s: %v", eb, err)
		}
		if !back.At.Equal(ev.At) {
			t.Fatalf("evidence time %v -> %v", ev.At, back.At)
		}
		ev.At, back.At, ev.Forget = time.Time{}, time.Time{}, time.Time{}
		if back != ev {
			t.Fatalf("evidence round trip of %s:\n in %#v\nout %#v", eb, ev, back)
		}
	})
}

// FuzzRecord: the outbox's decoder never panics on any stored value, and
// what it accepts encodes again to bytes that decode to the same record;
// and the append-style encoder of the payment path writes exactly what
// json.Marshal writes for the Record, which its decoder reads back.
func FuzzRecord(f *testing.F) {
	f.Add(uint64(1), []byte(`{"seq":1,"at":"2026-12-01T13:40:00.5Z","kind":"txn","txn":{"txn_id":"TXN1","amount":"12.50","state":"created"}}`))
	f.Add(uint64(7), []byte(`{"seq":7,"at":"2026-12-01T13:40:00+08:00","kind":"unknown","evidence":{"seq":3,"txn_id":"TXN9","payload":"{}"}}`))
	f.Add(uint64(2), []byte(`{"seq":3,"kind":"txn"}`))
	f.Add(uint64(0), []byte("\x03TXN\x07mobypay\x04card\xff\xff\xff\xff\xff\xff\xff\x9c\x06approved"))
	f.Fuzz(func(t *testing.T, seq uint64, data []byte) {
		key := binary.BigEndian.AppendUint64(nil, seq)
		recordTxnID(data) // pruning's reader never panics either
		if r, err := decodeOutboxRecord(key, data); err == nil {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			r2, err := decodeOutboxRecord(key, b)
			if err != nil {
				t.Fatalf("decode of the re-encoding %s: %v", b, err)
			}
			if b2, err := json.Marshal(r2); err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("re-encoded differently (%v):\n%s\n%s", err, b, b2)
			}
		}

		fb := &fuzzBytes{data}
		rec := Record{Seq: seq, At: fb.time(), Kind: RecordKind(fb.str()), Error: fb.str()}
		var txn, ev []byte
		var err error
		if fb.bool() {
			tx := fuzzTxn(fb)
			rec.Txn = &tx
			if txn, err = encodeTxn(&tx); err != nil {
				t.Fatal(err)
			}
		}
		if fb.bool() {
			e := fuzzEvidence(fb)
			rec.Evidence = &e
			if ev, err = encodeEvidence(&e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := appendRecordJSON(nil, rec.Seq, rec.At, rec.Kind, txn, ev, rec.Error)
		if err != nil {
			t.Fatalf("append %+v: %v", rec, err)
		}
		want, err := json.Marshal(rec)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appended\n%s\njson.Marshal (%v)\n%s", got, err, want)
		}
		// Pruning finds the payment a record is about without decoding it.
		wantID := ""
		if rec.Txn != nil {
			wantID = rec.Txn.ID
		}
		if id, ok := recordTxnID(got); !ok || id != wantID {
			t.Fatalf("recordTxnID = %q, %v; want %q, true in\n%s", id, ok, wantID, got)
		}
		back, err := decodeOutboxRecord(key, got)
		if rec.Kind == "" {
			if err == nil {
				t.Fatalf("a record without a kind decoded: %s", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode %s: %v", got, err)
		}
		if b, err := json.Marshal(back); err != nil || !bytes.Equal(b, got) {
			t.Fatalf("read back as\n%s (%v), wrote\n%s", b, err, got)
		}
	})
}
