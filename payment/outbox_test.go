package payment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// allRecords reads the whole outbox, failing on any error.
func allRecords(t *testing.T, j *Journal) []Record {
	t.Helper()
	rs, err := j.Records(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// wantRecord is what one write must have appended.
type wantRecord struct {
	kind RecordKind
	txn  *Txn      // compared whole (times with Equal); nil: no Txn
	ev   *Evidence // compared by Seq and Payload; nil: no Evidence
	err  bool      // Error set
}

func sameTxn(a, b Txn) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func checkRecord(t *testing.T, r Record, seq uint64, at time.Time, w wantRecord) {
	t.Helper()
	switch {
	case r.Seq != seq || r.Kind != w.kind || !r.At.Equal(at):
		t.Errorf("record %d: got seq %d kind %s at %v, want %s at %v", seq, r.Seq, r.Kind, r.At, w.kind, at)
	case (r.Txn == nil) != (w.txn == nil) || (r.Evidence == nil) != (w.ev == nil) || (r.Error != "") != w.err:
		t.Errorf("record %d (%s): txn %v evidence %v error %q, want txn %v evidence %v error %v", seq, r.Kind, r.Txn != nil, r.Evidence != nil, r.Error, w.txn != nil, w.ev != nil, w.err)
	case w.txn != nil && !sameTxn(*r.Txn, *w.txn):
		t.Errorf("record %d (%s): txn\n%+v\nwant\n%+v", seq, r.Kind, *r.Txn, *w.txn)
	case w.ev != nil && (r.Evidence.Seq != w.ev.Seq || r.Evidence.Payload != w.ev.Payload || r.Evidence.TxnID != w.ev.TxnID):
		t.Errorf("record %d (%s): evidence %+v, want %+v", seq, r.Kind, *r.Evidence, *w.ev)
	}
}

// Every kind of write appends exactly one record per event, in the same
// transaction, numbered 1..N without gaps, with what the write stored.
func TestOutboxEveryWrite(t *testing.T) {
	j, path := openJournal(t)
	var seq uint64
	at := t0
	// step runs one write at time at and checks the records it appended.
	step := func(name string, write func() []wantRecord) {
		t.Helper()
		at = at.Add(time.Second)
		want := write()
		got, err := j.Records(seq, 100)
		if err != nil {
			t.Fatalf("%s: Records: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s appended %d records, want %d: %+v", name, len(got), len(want), got)
		}
		for i, w := range want {
			checkRecord(t, got[i], seq+uint64(i)+1, at, w)
		}
		seq += uint64(len(want))
		if last, err := j.LastRecord(); err != nil || last != seq {
			t.Fatalf("%s: LastRecord %d %v, want %d", name, last, err, seq)
		}
	}
	must := func(tx Txn, err error) *Txn {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return &tx
	}
	var a, b, c Txn
	step("create", func() []wantRecord {
		a = Txn{Provider: "mobypay", Mode: "card", Amount: 1250}
		if err := j.Create(&a, at); err != nil {
			t.Fatal(err)
		}
		return []wantRecord{{kind: RecordTxn, txn: &a}}
	})
	step("update", func() []wantRecord {
		return []wantRecord{{kind: RecordTxn, txn: must(j.Update(a.ID, at, nil, func(t *Txn) error { t.State = Sent; return nil }))}}
	})
	step("update with evidence", func() []wantRecord {
		ev := &Evidence{TxnID: a.ID, Source: "pos", Type: "ack", Status: "processing", Payload: `{"a":1}`}
		nt := must(j.Update(a.ID, at, ev, func(t *Txn) error { t.State = Acked; return nil }))
		return []wantRecord{{kind: RecordTxn, txn: nt, ev: ev}}
	})
	step("evidence only", func() []wantRecord {
		ev := &Evidence{TxnID: a.ID, Source: "pos", Type: "ack", Status: "processing", Disposal: "duplicate", Payload: `{"a":2}`}
		nt := must(j.Update(a.ID, at, ev, func(t *Txn) error { return nil }))
		if nt.Evidence != 2 {
			t.Fatalf("evidence count %d", nt.Evidence)
		}
		return []wantRecord{{kind: RecordEvidence, txn: nt, ev: ev}}
	})
	step("unknown", func() []wantRecord {
		ev := &Evidence{TxnID: "TXN1", Source: "pos", Type: "transaction_result", Payload: `{"b":1}`}
		if err := j.AddEvidence(ev, at); err != nil {
			t.Fatal(err)
		}
		return []wantRecord{{kind: RecordUnknown, ev: ev}}
	})
	step("approve", func() []wantRecord {
		return []wantRecord{{kind: RecordTxn, txn: must(j.Update(a.ID, at, nil, func(t *Txn) error { t.State = Approved; t.flag("odd"); return nil }))}}
	})
	step("settle", func() []wantRecord {
		return []wantRecord{{kind: RecordTxn, txn: must(j.Settle(a.ID, "refunded", at))}}
	})
	step("create b, c", func() []wantRecord {
		b = Txn{Provider: "kpos", Mode: "qr", Amount: 300, Key: "ORDER-1"}
		c = Txn{Provider: "mobypay", Mode: "card", Amount: 100}
		if err := j.Create(&b, at); err != nil {
			t.Fatal(err)
		}
		if err := j.Create(&c, at); err != nil {
			t.Fatal(err)
		}
		return []wantRecord{{kind: RecordTxn, txn: &b}, {kind: RecordTxn, txn: &c}}
	})
	j.Close()
	const bad = "TXN1757492341000"
	writeRaw(t, path, "txns", bad, brokenRecords[bad])
	j2, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	j = j2
	step("recover", func() []wantRecord {
		fixed, err := j.Recover(at)
		if err != nil {
			t.Fatal(err)
		}
		var want []wantRecord
		for i := range fixed {
			switch f := &fixed[i]; {
			case f.Quarantined:
				want = append(want, wantRecord{kind: RecordQuarantine, txn: &Txn{ID: bad, Quarantined: true}, err: true})
			default:
				want = append(want, wantRecord{kind: RecordTxn, txn: f})
			}
		}
		if len(want) != 3 {
			t.Fatalf("recovered %+v", fixed)
		}
		return want
	})
	step("settle quarantined", func() []wantRecord {
		st := must(j.Settle(bad, "copied off", at))
		return []wantRecord{{kind: RecordQuarantine, txn: &Txn{ID: bad, Quarantined: true, Settled: st.Settled}, err: true}}
	})
	step("nonces, kpos sequence: no record", func() []wantRecord {
		if _, err := j.NextSequence("kpos", "2026-12-01"); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Nonces(at); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	// Gapless over the whole file.
	for i, r := range allRecords(t, j) {
		if r.Seq != uint64(i)+1 {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	if seq != 13 {
		t.Fatalf("%d records", seq)
	}
}

// A write that fails appends nothing, and the next one takes the next
// number: no gap.
func TestOutboxFailedWriteAppendsNothing(t *testing.T) {
	j, _ := openJournal(t)
	tx := Txn{Provider: "mobypay", Mode: "card", Amount: 1250, Key: "K"}
	if err := j.Create(&tx, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Update(tx.ID, t0, nil, func(t *Txn) error { t.State = Declined; return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	ev := func() *Evidence { return &Evidence{TxnID: tx.ID, Source: "pos", Type: "ack", Payload: "p"} }
	for _, c := range []struct {
		name  string
		write func() error
		want  error
	}{
		{"illegal transition", func() error {
			_, err := j.Update(tx.ID, t0, ev(), func(t *Txn) error { t.State = Created; return nil })
			return err
		}, ErrTransition},
		{"fn refuses", func() error {
			_, err := j.Update(tx.ID, t0, ev(), func(t *Txn) error { return boom })
			return err
		}, boom},
		{"unknown id", func() error { _, err := j.Update("TXN2", t0, ev(), nil); return err }, ErrNotFound},
		{"duplicate key", func() error { return j.Create(&Txn{Provider: "mobypay", Key: "K"}, t0) }, ErrDuplicateKey},
		{"settle unflagged", func() error { _, err := j.Settle(tx.ID, "n", t0); return err }, ErrTransition},
		{"time beyond RFC 3339", func() error {
			_, err := j.Update(tx.ID, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ev(), nil)
			return err
		}, nil},
	} {
		err := c.write()
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if last, err := j.LastRecord(); err != nil || last != 2 {
			t.Errorf("%s: LastRecord %d %v, want 2", c.name, last, err)
		}
	}
	if _, err := j.Update(tx.ID, t0, ev(), nil); err != nil {
		t.Fatal(err)
	}
	rs := allRecords(t, j)
	if len(rs) != 3 || rs[2].Seq != 3 || rs[2].Kind != RecordEvidence || rs[2].Evidence.Seq != 1 {
		t.Fatalf("records after the failures: %+v", rs)
	}
}

// Records pages by after and max; a reopened journal keeps every record
// and goes on counting.
func TestRecordsPagingAndReopen(t *testing.T) {
	j, path := openJournal(t)
	for i := range 25 {
		ev := &Evidence{TxnID: "TXN1", Source: "pos", Type: "t", Payload: fmt.Sprint(i)}
		if err := j.AddEvidence(ev, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		after      uint64
		max        int
		first, got uint64
	}{
		{0, 10, 1, 10}, {10, 10, 11, 10}, {20, 10, 21, 5}, {25, 10, 0, 0}, {24, 1, 25, 1},
		{3, 1000, 4, 22}, {1 << 40, 5, 0, 0}, {^uint64(0), 5, 0, 0},
	} {
		rs, err := j.Records(c.after, c.max)
		if err != nil || uint64(len(rs)) != c.got || len(rs) > 0 && rs[0].Seq != c.first {
			t.Errorf("Records(%d, %d): %v %d records from %v", c.after, c.max, err, len(rs), rs)
		}
		for i, r := range rs {
			if r.Seq != c.first+uint64(i) || r.Kind != RecordUnknown || r.Evidence.Payload != fmt.Sprint(r.Seq-1) {
				t.Errorf("Records(%d, %d)[%d] = %+v", c.after, c.max, i, r)
			}
		}
	}
	if _, err := j.Records(0, 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Records with max 0: %v", err)
	}
	j.Close()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if last, err := j.LastRecord(); err != nil || last != 25 {
		t.Fatalf("LastRecord after reopen: %d %v", last, err)
	}
	newTxn(t, j, t0)
	rs := allRecords(t, j)
	if len(rs) != 26 || rs[25].Seq != 26 || rs[25].Kind != RecordTxn {
		t.Fatalf("after reopen: %d records, last %+v", len(rs), rs[len(rs)-1])
	}
}

// A journal written before the outbox existed opens, gets the bucket,
// and its first record is Seq 1.
func TestRecordsOlderJournal(t *testing.T) {
	j, path := openJournal(t)
	old := newTxn(t, j, t0)
	j.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketRecords) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if last, err := j.LastRecord(); err != nil || last != 0 {
		t.Fatalf("LastRecord of an older journal: %d %v", last, err)
	}
	nt, err := j.Update(old.ID, t0, nil, func(t *Txn) error { t.State = Sent; return nil })
	if err != nil {
		t.Fatal(err)
	}
	rs := allRecords(t, j)
	if len(rs) != 1 || rs[0].Seq != 1 || !sameTxn(*rs[0].Txn, nt) {
		t.Fatalf("records: %+v", rs)
	}
}

// A record that cannot be decoded is handed out as unreadable, with its
// Seq, and the reader goes on past it.
func TestRecordsUnreadable(t *testing.T) {
	j, path := openJournal(t)
	for range 5 {
		newTxn(t, j, t0)
	}
	j.Close()
	key := func(n uint64) string { return string(binary.BigEndian.AppendUint64(nil, n)) }
	broken := map[uint64][]byte{
		2: []byte(`{"seq":2,"at":"2026-`),
		3: []byte(`{"seq":4,"at":"2026-12-01T00:00:00Z","kind":"txn"}`), // filed under another seq
		4: []byte("\xff\x00"),
		5: []byte(`{"seq":5,"at":"2026-12-01T00:00:00Z"}`), // no kind
	}
	for n, v := range broken {
		writeRaw(t, path, "records", key(n), v)
	}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	before := j.UnreadableRecords()
	var got []Record
	for after := uint64(0); ; {
		rs, err := j.Records(after, 2)
		if err != nil {
			t.Fatalf("Records(%d): %v", after, err)
		}
		if len(rs) == 0 {
			break
		}
		got = append(got, rs...)
		after = rs[len(rs)-1].Seq
	}
	if len(got) != 5 {
		t.Fatalf("paged %d records: %+v", len(got), got)
	}
	for i, r := range got {
		n := uint64(i) + 1
		if _, bad := broken[n]; bad != (r.Kind == RecordUnreadable) || r.Seq != n || bad && (r.Error == "" || r.Txn != nil) {
			t.Errorf("record %d: %+v", n, r)
		}
	}
	if d := j.UnreadableRecords() - before; d != 4 {
		t.Errorf("counted %d unreadable records, want 4", d)
	}
	if !strings.Contains(got[2].Error, "another seq") && !strings.Contains(got[2].Error, "filed under") {
		t.Errorf("reason for a record under another seq: %q", got[2].Error)
	}
}

// fillRecords appends one record per time in ats, in one bbolt
// transaction (the fsync per write is not what these tests are about).
func fillRecords(t *testing.T, j *Journal, ats []time.Time) {
	t.Helper()
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, at := range ats {
			if err := appendRecord(tx, at, RecordUnknown, nil, []byte(`{"payload":"x"}`), ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestShippedCursor(t *testing.T) {
	j, path := openJournal(t)
	if n, err := j.Shipped(); err != nil || n != 0 {
		t.Fatalf("Shipped of a new journal: %d %v", n, err)
	}
	if err := j.SetShipped(1); !errors.Is(err, ErrAhead) {
		t.Fatalf("SetShipped with no records: %v", err)
	}
	fillRecords(t, j, []time.Time{t0, t0, t0, t0, t0})
	for _, c := range []struct {
		set, want uint64
		err       error
	}{
		{3, 3, nil},
		{2, 3, nil}, // a late ack: ignored
		{3, 3, nil},
		{0, 3, nil},
		{6, 3, ErrAhead},
		{5, 5, nil},
	} {
		if err := j.SetShipped(c.set); !errors.Is(err, c.err) || c.err == nil && err != nil {
			t.Errorf("SetShipped(%d): %v, want %v", c.set, err, c.err)
		}
		if n, err := j.Shipped(); err != nil || n != c.want {
			t.Errorf("after SetShipped(%d): Shipped %d %v, want %d", c.set, n, err, c.want)
		}
	}
	j.Close()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n, err := j.Shipped(); err != nil || n != 5 {
		t.Fatalf("Shipped after reopen: %d %v", n, err)
	}
}

func TestTrimRecords(t *testing.T) {
	const minute = time.Minute
	for _, c := range []struct {
		name        string
		n           int             // records, record i (from 0) at t0 + i minutes
		garbage     []uint64        // seqs overwritten with undecodable bytes
		old         int             // how many are older than keep
		shipped     uint64          // the cursor (0: none)
		shippedOnly bool            // fleet on
		batch       int             // 0: trimBatch
		want        int             // deleted
		kept        map[uint64]bool // nil: every seq after the deleted ones
	}{
		{name: "fleet off", n: 20, old: 12, want: 12},
		{name: "fleet off, none old", n: 20, old: 0, want: 0},
		{name: "fleet off, all old", n: 20, old: 20, want: 20},
		{name: "fleet on, shipped behind the age", n: 20, old: 12, shipped: 5, shippedOnly: true, want: 5},
		{name: "fleet on, shipped past the age", n: 20, old: 12, shipped: 17, shippedOnly: true, want: 12},
		{name: "fleet on, nothing shipped", n: 20, old: 20, shippedOnly: true, want: 0},
		{name: "fleet off ignores the cursor", n: 20, old: 12, shipped: 5, want: 12},
		{name: "batches", n: 50, old: 31, batch: 7, want: 31},
		{name: "batches, fleet on", n: 50, old: 40, shipped: 29, shippedOnly: true, batch: 7, want: 29},
		{name: "batch boundary", n: 50, old: 28, batch: 7, want: 28},
		{name: "default batch", n: 2*trimBatch + 500, old: 2*trimBatch + 100, want: 2*trimBatch + 100},
		{name: "unreadable before an old one goes", n: 10, garbage: []uint64{3, 4}, old: 6, want: 6},
		{name: "unreadable at the edge stays", n: 10, garbage: []uint64{3, 4}, old: 2, want: 2},
		{name: "unreadable and shipped goes", n: 10, garbage: []uint64{3}, old: 2, shipped: 3, shippedOnly: true, want: 3},
		{name: "unreadable, unshipped stays", n: 10, garbage: []uint64{3}, old: 10, shipped: 2, shippedOnly: true, want: 2},
		{name: "a run of unreadable longer than a batch", n: 10, garbage: []uint64{1, 2, 3}, old: 10, batch: 2, want: 0,
			kept: map[uint64]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, _ := openJournal(t)
			ats := make([]time.Time, c.n)
			for i := range ats {
				ats[i] = t0.Add(time.Duration(i) * minute)
			}
			fillRecords(t, j, ats)
			if err := j.db.Update(func(tx *bolt.Tx) error {
				for _, s := range c.garbage {
					if err := tx.Bucket(bucketRecords).Put(binary.BigEndian.AppendUint64(nil, s), []byte("{garbage")); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if c.shipped > 0 {
				if err := j.SetShipped(c.shipped); err != nil {
					t.Fatal(err)
				}
			}
			// Records 0..old-1 are older than keep: the cutoff falls on
			// record old, which is exactly keep old and stays.
			keep := time.Hour
			now := t0.Add(time.Duration(c.old)*minute + keep)
			batch := c.batch
			if batch == 0 {
				batch = trimBatch
			}
			got, err := j.trimRecords(now, keep, c.shippedOnly, batch)
			if err != nil || got != c.want {
				t.Fatalf("trimmed %d %v, want %d", got, err, c.want)
			}
			rs := allRecords(t, j)
			if len(rs) != c.n-c.want {
				t.Fatalf("%d records left, want %d", len(rs), c.n-c.want)
			}
			for i, r := range rs {
				if want := uint64(c.want + i + 1); r.Seq != want || c.kept != nil && !c.kept[r.Seq] {
					t.Fatalf("record %d left is seq %d, want %d", i, r.Seq, want)
				}
				if c.shippedOnly && r.Seq <= c.shipped && r.At.Before(now.Add(-keep)) && r.Kind != RecordUnreadable {
					t.Errorf("shipped old record %d kept", r.Seq)
				}
			}
			// Never renumbered: the next record goes on from the last.
			if last, err := j.LastRecord(); err != nil || last != uint64(c.n) {
				t.Fatalf("LastRecord %d %v, want %d", last, err, c.n)
			}
			newTxn(t, j, now)
			if rs := allRecords(t, j); rs[len(rs)-1].Seq != uint64(c.n)+1 {
				t.Fatalf("next record is seq %d", rs[len(rs)-1].Seq)
			}
			// Trimming again finds nothing more.
			if again, err := j.trimRecords(now, keep, c.shippedOnly, batch); err != nil || again != 0 {
				t.Fatalf("second trim: %d %v", again, err)
			}
		})
	}
	j, _ := openJournal(t)
	if _, err := j.TrimRecords(t0, 0, false); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("TrimRecords with keep 0: %v", err)
	}
}

// OnWrite's function runs once per committed write that appends a
// record, after the commit, and not for a write that fails or appends
// nothing (the cursor).
func TestOnWrite(t *testing.T) {
	j, _ := openJournal(t)
	var calls int
	var last uint64
	j.OnWrite(func() {
		calls++
		var err error
		if last, err = j.LastRecord(); err != nil { // the record is committed and readable
			t.Error(err)
		}
	})
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tx := newTxn(t, j, t0)
	if calls != 1 || last != 1 {
		t.Fatalf("after Create: %d calls, last record %d; want 1, 1", calls, last)
	}
	if _, err := j.Update(tx.ID, t0, nil, func(t *Txn) error { t.State = Acked; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := j.AddEvidence(&Evidence{Source: "pos", Type: "transaction_result", Payload: "{}"}, t0); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || last != 3 {
		t.Fatalf("after Update and AddEvidence: %d calls, last record %d; want 3, 3", calls, last)
	}
	if _, err := j.Update(tx.ID, t0, nil, func(t *Txn) error { t.State = Created; return nil }); err == nil {
		t.Fatal("an illegal transition was journaled")
	}
	if err := j.SetShipped(2); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Fatalf("a refused write or a cursor move called OnWrite's function: %d calls", calls)
	}
}
