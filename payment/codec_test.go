package payment

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzTxnEncode: the append-style encoders write exactly what
// json.Marshal writes, for any Txn and any Evidence the journal can
// hold (fuzzTxn, fuzzEvidence), errors included: the bytes on disk are
// the same as before them, so every journal reads as it did.
func FuzzTxnEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x03TXN\x07mobypay\x04card\xff\xff\xff\xff\xff\xff\xff\x9c\x06approved"))
	f.Add([]byte("\x10TXN<&>\u2028\"\\\x01\n\x07mobypay\x04card\x80\x00\x00\x00\x00\x00\x00\x00\x06approved\x09releasing\x03" +
		"\x02P1\x01M\x00\x00\x00\x00\x00\x00\x00\x06\x05<a&b>\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := &fuzzBytes{data}
		in := fuzzTxn(fb)
		in.PulsesTotal, in.PulsesDone = int(int32(fb.uint64())), int(int8(fb.byte()))
		in.Evidence = int(int64(fb.uint64()))
		got, gerr := appendTxn([]byte("prefix"), &in)
		want, werr := json.Marshal(&in)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("appendTxn error %v, json.Marshal error %v for %#v", gerr, werr, in)
		}
		if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("appendTxn\n%s\njson.Marshal\n%s", got, want)
		}

		ev := fuzzEvidence(fb)
		ev.Forget = time.Unix(1, 0)
		got, gerr = appendEvidence(nil, &ev)
		want, werr = json.Marshal(&ev)
		if (gerr == nil) != (werr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendEvidence (%v)\n%s\njson.Marshal (%v)\n%s", gerr, got, werr, want)
		}
	})
}

// FuzzJSONString: appendJSONString is encoding/json's string encoder for
// any bytes, invalid UTF-8 included.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x01\b\f\n\r\t\x1f\x7f", "\u2028\u2029\ufffd", "\xff\xfe\xc3", "é€😀\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: appendJSONString %s, json.Marshal %s", s, got, want)
		}
	})
}

// TestCodecFields holds the encoders to the structs: a field added,
// renamed or retagged in Txn or Evidence fails here until appendTxn or
// appendEvidence writes it (the fuzz test would only see it once it set
// the new field).
func TestCodecFields(t *testing.T) {
	tags := func(v any) string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			out = append(out, rt.Field(i).Name+":"+rt.Field(i).Tag.Get("json"))
		}
		return strings.Join(out, " ")
	}
	const txn = "ID:txn_id Provider:provider Mode:mode Amount:amount State:state Vend:vend " +
		"PulsesTotal:pulses_total,omitempty PulsesDone:pulses_done,omitempty Plans:plans,omitempty PlanID:plan_id,omitempty " +
		"POSTransactionID:pos_transaction_id AuthCode:auth_code,omitempty CardLast4:card_last4,omitempty PosID:pos_id,omitempty " +
		"PaidAmount:paid_amount,omitempty PaidAmountText:paid_amount_text,omitempty Key:idempotency_key,omitempty " +
		"Quarantined:quarantined,omitempty Error:error Review:review,omitempty Settled:settled,omitempty " +
		"Dropped:pos_dropped,omitempty Evidence:evidence CreatedAt:created_at UpdatedAt:updated_at"
	if got := tags(Txn{}); got != txn {
		t.Errorf("Txn fields changed; update appendTxn, then this list:\n got %s\nwant %s", got, txn)
	}
	const ev = "Seq:seq TxnID:txn_id At:at Source:source Type:type Status:status,omitempty Disposal:disposal " +
		"Payload:payload Nonce:nonce,omitempty Forget:-"
	if got := tags(Evidence{}); got != ev {
		t.Errorf("Evidence fields changed; update appendEvidence, then this list:\n got %s\nwant %s", got, ev)
	}
}

// TestCodecTimes: the times json.Marshal refuses are refused, the ones
// it writes are written the same, at the edges of what RFC 3339 holds.
func TestCodecTimes(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 13, 40, 0, 500, time.FixedZone("", 8*3600)),
		time.Date(2026, 12, 1, 13, 40, 0, 0, time.FixedZone("", -(23*3600+59*60+59))),
		time.Date(2026, 12, 1, 13, 40, 0, 0, time.FixedZone("", 24*3600)),
		time.Date(2026, 12, 1, 13, 40, 0, 0, time.FixedZone("", -100*3600)),
		time.Date(2026, 12, 1, 13, 40, 0, 0, time.FixedZone("", 30)),
		time.Now(),
	} {
		got, gerr := appendJSONTime(nil, tm)
		want, werr := json.Marshal(tm)
		if (gerr == nil) != (werr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Errorf("%v: appendJSONTime %s (%v), json.Marshal %s (%v)", tm, got, gerr, want, werr)
		}
	}
}
