package payment

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestArena: what the arena hands out in one write transaction is never
// written again in it, across growth; the next transaction starts over.
func TestArena(t *testing.T) {
	j, _ := openJournal(t)
	var kept [][]byte
	var want []string
	err := j.db.Update(func(tx *bolt.Tx) error {
		a := &j.scratch
		for i := range 200 { // well past arenaSpare and a first array
			s := strings.Repeat(string(rune('a'+i%26)), 1+i*7%300)
			kept = append(kept, a.bytes(tx, s))
			want = append(want, s)
			// An encoding compared and dropped, as stored does: taken
			// nowhere, overwritten by the next.
			_ = append(a.tail(tx), "scratch"...)
		}
		for i, b := range kept {
			if string(b) != want[i] || cap(b) != len(b) {
				t.Fatalf("value %d changed in its transaction: %q (cap %d)", i, b, cap(b))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		j.scratch.tail(tx)
		if len(j.scratch.b) != 0 {
			t.Errorf("next transaction starts with %d bytes in use", len(j.scratch.b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var nilArena *arena
	if b := nilArena.bytes(nil, "x"); string(b) != "x" {
		t.Errorf("nil arena: %q", b)
	}
}

// TestUpdateStepsView: the caller's view stands in for the stored record
// only when it is that record; a stale one (another writer changed it)
// is ignored and the steps build on what the journal has.
func TestUpdateStepsView(t *testing.T) {
	j, _ := openJournal(t)
	tx := newTxn(t, j, t0)
	view := tx
	// Another writer (the operator, a late message) changes the record.
	other, err := j.Update(tx.ID, t0.Add(time.Second), nil, func(x *Txn) error { x.State = Acked; x.flag("by another writer"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.updateSteps(tx.ID, &view, []Step{{At: t0.Add(2 * time.Second), apply: func(x *Txn) { x.State = Approved }}})
	if err != nil || got.Review != other.Review || got.State != Approved {
		t.Fatalf("stale view: %+v, %v; want the other writer's review %q kept", got, err, other.Review)
	}
	// A current view gives what no view gives.
	view = got
	a, err := j.updateSteps(tx.ID, &view, []Step{{At: t0.Add(3 * time.Second), apply: func(x *Txn) { x.Error = "with view" }}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := j.Get(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := encodeTxn(&a)
	b2, _ := encodeTxn(&stored)
	if !bytes.Equal(b1, b2) || a.Error != "with view" || a.Review != other.Review {
		t.Fatalf("current view: returned\n%s\nstored\n%s", b1, b2)
	}
	// A view with what the codec does not give back exactly is not
	// taken: the record is decoded.
	bad := stored
	bad.Error = "\xff"
	if _, err := j.updateSteps(tx.ID, &bad, []Step{{At: t0.Add(4 * time.Second), apply: func(x *Txn) {}}}); err != nil {
		t.Fatal(err)
	}
	if back, _ := j.Get(tx.ID); back.Error != "with view" {
		t.Fatalf("a view that is not the record was written: %q", back.Error)
	}
}
