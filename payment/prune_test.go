package payment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const pruneKeep = 90 * 24 * time.Hour

// finish drives a created payment to state s (and vend v) through the
// journal's own checks, at now.
func finish(t *testing.T, j *Journal, id string, now time.Time, s State, v Vend, review string) {
	t.Helper()
	if _, err := j.Update(id, now, nil, func(t *Txn) error {
		t.State = s
		if v == VendReleased {
			t.Vend = VendReleasing
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Update(id, now, nil, func(t *Txn) error {
		if v == VendReleased {
			t.Vend = VendReleased
		}
		if review != "" {
			t.flag(review)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Each rule of what may go, on payments written through the journal's
// API: only the final, clean or settled, old, shipped ones go, with
// their messages and idempotency keys; everything else stays exactly as
// it was.
func TestPrunePayments(t *testing.T) {
	for _, shippedOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("shippedOnly=%v", shippedOnly), func(t *testing.T) {
			j, _ := openJournal(t)
			now := t0.Add(pruneKeep + 30*24*time.Hour)
			old := t0
			mk := func(key string, at time.Time) Txn {
				tx := Txn{Provider: "mobypay", Mode: "card", Amount: 1250, Key: key}
				if err := j.Create(&tx, at); err != nil {
					t.Fatal(err)
				}
				return tx
			}
			vended := mk("order-1", old)
			finish(t, j, vended.ID, old, Approved, VendReleased, "")
			ev := &Evidence{Source: "pos", Type: "transaction_result", TxnID: vended.ID, Payload: `{"status":"success"}`}
			if _, err := j.Update(vended.ID, old, ev, func(*Txn) error { return nil }); err != nil {
				t.Fatal(err)
			}
			declined := mk("", old)
			finish(t, j, declined.ID, old, Declined, VendNone, "")
			flagged := mk("", old)
			finish(t, j, flagged.ID, old, Approved, VendNone, "late success")
			settled := mk("", old)
			finish(t, j, settled.ID, old, Approved, VendNone, "late success")
			if _, err := j.Settle(settled.ID, "refunded at the counter", old); err != nil {
				t.Fatal(err)
			}
			open := mk("", old) // never got an outcome
			lateMsg := mk("", old)
			finish(t, j, lateMsg.ID, old, Declined, VendNone, "")
			young := mk("", now.Add(-time.Hour))
			finish(t, j, young.ID, now.Add(-time.Hour), Declined, VendNone, "")

			// Ship everything so far but the declined payment's records:
			// its last record is after the cursor.
			if _, err := j.Update(declined.ID, old, &Evidence{Source: "pos", Type: "ack", TxnID: declined.ID, Payload: "{}"}, func(*Txn) error { return nil }); err != nil {
				t.Fatal(err)
			}
			last, err := j.LastRecord()
			if err != nil {
				t.Fatal(err)
			}
			if err := j.SetShipped(last - 1); err != nil {
				t.Fatal(err)
			}
			// A message about lateMsg came in recently, after the cursor too.
			if _, err := j.Update(lateMsg.ID, now.Add(-time.Minute), &Evidence{Source: "pos", Type: "transaction_result", TxnID: lateMsg.ID, Payload: `{"late":1}`}, func(*Txn) error { return nil }); err != nil {
				t.Fatal(err)
			}

			n, err := j.PrunePayments(now, pruneKeep, shippedOnly)
			if err != nil {
				t.Fatal(err)
			}
			gone := []Txn{vended, settled}
			kept := []Txn{flagged, open, lateMsg, young}
			if shippedOnly {
				kept = append(kept, declined)
			} else {
				gone = append(gone, declined)
			}
			if n != len(gone) {
				t.Errorf("pruned %d, want %d", n, len(gone))
			}
			for _, tx := range gone {
				if _, err := j.Get(tx.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s still there: %v", tx.ID, err)
				}
			}
			for _, tx := range kept {
				if _, err := j.Get(tx.ID); err != nil {
					t.Errorf("%s pruned: %v", tx.ID, err)
				}
			}
			if evs, err := j.EvidenceFor(vended.ID); err != nil || len(evs) != 0 {
				t.Errorf("evidence of a pruned payment: %v %+v", err, evs)
			}
			// Its key is free again; a payment with a kept key is still found by it.
			if _, err := j.ByKey("order-1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("key of a pruned payment: %v", err)
			}
			mk("order-1", now)
			// The records stay: trimming them is TrimRecords' job.
			if got, _ := j.LastRecord(); got <= last {
				t.Errorf("last record %d, want past %d", got, last)
			}
			if again, err := j.PrunePayments(now, pruneKeep, shippedOnly); err != nil || again != 0 {
				t.Errorf("second prune: %d, %v; want nothing", again, err)
			}
		})
	}
}

// An unshipped record that cannot be read may be about any payment:
// nothing is pruned until it is shipped, and then pruning goes on.
func TestPruneHeldByUnreadable(t *testing.T) {
	j, path := openJournal(t)
	tx := newTxn(t, j, t0)
	finish(t, j, tx.ID, t0, Declined, VendNone, "")
	last, _ := j.LastRecord()
	if err := j.SetShipped(last); err != nil {
		t.Fatal(err)
	}
	newTxn(t, j, t0) // its record becomes the unreadable one
	j.Close()
	writeRaw(t, path, "records", string(seqKey(last+1)), []byte("\x00 not json"))
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := t0.Add(2 * pruneKeep)
	if n, err := j.PrunePayments(now, pruneKeep, true); !errors.Is(err, ErrPruneHeld) || n != 0 {
		t.Fatalf("prune with an unreadable unshipped record: %d, %v; want 0, ErrPruneHeld", n, err)
	}
	if err := j.SetShipped(last + 1); err != nil {
		t.Fatal(err)
	}
	if n, err := j.PrunePayments(now, pruneKeep, true); err != nil || n != 1 {
		t.Fatalf("prune once it is shipped: %d, %v; want 1", n, err)
	}
}

// Pruning runs beside the payment path: payments written while it runs
// are untouched, and it neither fails nor deadlocks against them.
func TestPruneBesideWrites(t *testing.T) {
	j, _ := openJournal(t)
	const olds, news = 3 * pruneBatch, 200
	fillOld(t, j, olds, 0)
	now := t0.Add(2 * pruneKeep)
	var wg sync.WaitGroup
	ids := make(chan string, news)
	wg.Go(func() {
		defer close(ids)
		for range news {
			tx := Txn{Provider: "mobypay", Mode: "card", Amount: 100}
			if err := j.Create(&tx, now); err != nil {
				t.Error(err)
				return
			}
			ids <- tx.ID
		}
	})
	n, err := j.PrunePayments(now, pruneKeep, false)
	wg.Wait()
	if err != nil || n != olds {
		t.Fatalf("pruned %d, %v; want %d", n, err, olds)
	}
	for id := range ids {
		if _, err := j.Get(id); err != nil {
			t.Fatalf("new payment %s: %v", id, err)
		}
	}
}

// fillOld writes n final, clean payments dated t0 the way the journal
// writes them (the same encodings, a record each), a few thousand per
// bbolt transaction so that a test can afford 100,000. Every
// flagEvery-th one needs review (0: none).
func fillOld(t testing.TB, j *Journal, n, flagEvery int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for done := 0; done < n; {
		err := j.db.Update(func(tx *bolt.Tx) error {
			txns, evs := tx.Bucket(bucketTxns), tx.Bucket(bucketEvidence)
			for i := 0; i < 5000 && done < n; i++ {
				at := t0.Add(time.Duration(done) * time.Second)
				pc := Sen(1250)
				tr := &Txn{ID: fmt.Sprintf("TXN%d", at.UnixMilli()), Provider: "mobypay", Mode: "card", Amount: 1250,
					State: Approved, Vend: VendReleased, POSTransactionID: fmt.Sprintf("POS%08d", done),
					AuthCode: "A1B2C3", CardLast4: "4242", PaidAmount: &pc, Evidence: 1, CreatedAt: at, UpdatedAt: at}
				if flagEvery > 0 && done%flagEvery == 0 {
					tr.State, tr.Vend, tr.Review = Approved, VendNone, "late success"
				}
				v, err := put(txns, tr)
				if err != nil {
					return err
				}
				ev := &Evidence{Seq: uint64(done + 1), At: at, Source: "pos", Type: "transaction_result", Status: "success", TxnID: tr.ID,
					Payload: `{"type":"transaction_result","status":"success","transaction_id":"` + tr.POSTransactionID + `"}`}
				e, err := encodeEvidence(ev)
				if err != nil {
					return err
				}
				if err := evs.Put(evidenceKey(tr.ID, ev.Seq), e); err != nil {
					return err
				}
				if err := appendRecord(tx, at, RecordTxn, v, e, ""); err != nil {
					return err
				}
				ids = append(ids, tr.ID)
				done++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// The retention test: a journal of 100,000 old payments (a
// record and a message each) is trimmed, pruned and compacted; the
// unshipped and the flagged survive with their records, and the file
// shrinks.
func TestPruneAndCompact100k(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	const flagEvery, unshipped = 1000, 1000
	j, path := openJournal(t)
	ids := fillOld(t, j, n, flagEvery)
	if err := j.SetShipped(uint64(n - unshipped)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	before := fileSize(t, path)

	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * pruneKeep)
	trimmed, err := j.TrimRecords(now, pruneKeep, true)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := j.PrunePayments(now, pruneKeep, true)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	c, err := CompactJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	after := fileSize(t, path)
	t.Logf("%d payments, %d records: trimmed %d records, pruned %d payments; file %d -> %d bytes (free before compaction %d)",
		n, n, trimmed, pruned, before, after, c.Free)
	if !c.Compacted || c.Before != before || c.After != after {
		t.Fatalf("compaction %+v, file %d -> %d", c, before, after)
	}
	if after*5 > before {
		t.Errorf("file %d -> %d bytes: want it at least five times smaller", before, after)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("copy left behind: %v", err)
	}

	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	flaggedShipped := (n - unshipped) / flagEvery
	if trimmed != n-unshipped {
		t.Errorf("trimmed %d records, want the %d shipped", trimmed, n-unshipped)
	}
	if want := n - unshipped - flaggedShipped; pruned != want {
		t.Errorf("pruned %d, want %d (shipped, clean)", pruned, want)
	}
	for i, id := range ids {
		_, err := j.Get(id)
		keep := i >= n-unshipped || i%flagEvery == 0
		if keep && err != nil {
			t.Fatalf("payment %d (%s) should survive: %v", i, id, err)
		}
		if !keep && !errors.Is(err, ErrNotFound) {
			t.Fatalf("payment %d (%s) should be pruned: %v", i, id, err)
		}
	}
	recs, err := j.Records(0, 2*unshipped)
	if err != nil || len(recs) != unshipped || recs[0].Seq != uint64(n-unshipped+1) {
		t.Fatalf("records after: %v, %d, want the %d unshipped from %d", err, len(recs), unshipped, n-unshipped+1)
	}
	if s, _ := j.Shipped(); s != uint64(n-unshipped) {
		t.Fatalf("shipped cursor %d after compaction, want %d", s, n-unshipped)
	}
	// The sequence goes on where it was: no seq is ever reused.
	newTxn(t, j, now)
	if last, _ := j.LastRecord(); last != uint64(n+1) {
		t.Fatalf("first record after compaction is %d, want %d", last, n+1)
	}
	if reviews, err := j.Reviews(false); err != nil || len(reviews) != n/flagEvery {
		t.Fatalf("reviews: %v, %d, want %d", err, len(reviews), n/flagEvery)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// CompactJournal leaves alone what it should: no journal, one with
// little free, and it clears a copy a power cut left half-written.
// What it copies reads back key for key.
func TestCompactJournal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	if c, err := CompactJournal(path); err != nil || c.Compacted {
		t.Fatalf("no journal: %+v, %v", c, err)
	}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	fillOld(t, j, 2000, 10)
	j.Close()
	if c, err := CompactJournal(path); err != nil || c.Compacted || c.Reason == "" {
		t.Fatalf("a full journal: %+v, %v; want it left alone, with a reason", c, err)
	}
	want := dump(t, path)

	j, _ = OpenJournal(path)
	if _, err := j.PrunePayments(t0.Add(2*pruneKeep), pruneKeep, false); err != nil {
		t.Fatal(err)
	}
	j.Close()
	for k := range want {
		if k[0] == "txns" || k[0] == "evidence" {
			delete(want, k) // pruned; TestPruneAndCompact100k checks which
		}
	}
	kept := dump(t, path)
	for k, v := range kept {
		if k[0] == "txns" || k[0] == "evidence" {
			want[k] = v
		}
	}
	if err := os.WriteFile(path+".compact", []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := CompactJournal(path)
	if err != nil || !c.Compacted {
		t.Fatalf("after pruning: %+v, %v", c, err)
	}
	got := dump(t, path)
	if len(got) != len(want) {
		t.Errorf("%d keys after compaction, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s/%q after compaction: %q, want %q", k[0], k[1], got[k], v)
		}
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("copy left behind: %v", err)
	}
}

// dump reads every bucket's keys, values and sequence.
func dump(t *testing.T, path string) map[[2]string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[[2]string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[[2]string{string(name), "(sequence)"}] = fmt.Sprint(b.Sequence())
			return b.ForEach(func(k, v []byte) error {
				out[[2]string{string(name), string(k)}] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A damaged page that the service's reads never meet (here the root of
// the evidence bucket, which only a review reads) must not turn into a
// start that always crashes: the copy reads every page, and bbolt
// panics on a damaged one. CompactJournal reports it, leaves the
// journal as it was, and the journal opens.
func TestCompactDamagedPage(t *testing.T) {
	j, path := openJournal(t)
	fillOld(t, j, 3000, 0)
	var root uint64
	if err := j.db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketEvidence).Root())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pageSize := int64(j.db.Info().PageSize)
	j.Close()
	freePagesIn(t, path, 4<<20)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The page header's flags (after its 8-byte id): no valid page type.
	if _, err := f.WriteAt([]byte{0xee, 0xee}, int64(root)*pageSize+8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := fileSize(t, path)

	c, err := CompactJournal(path)
	if err == nil || c.Compacted {
		t.Fatalf("compaction over a damaged page: %+v, %v; want an error", c, err)
	}
	t.Logf("compaction refused: %v", err)
	if after := fileSize(t, path); after != before {
		t.Errorf("journal %d bytes, was %d: want it untouched", after, before)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("copy left behind: %v", err)
	}
	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Recover(time.Now()); err != nil {
		t.Fatalf("recover after a refused compaction: %v", err)
	}
}

// freePagesIn grows the bbolt file at path by about n bytes and frees
// them again, as a long offline stretch followed by trimming would.
func freePagesIn(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scratch := []byte("test-scratch")
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(scratch)
		if err != nil {
			return err
		}
		v := make([]byte, 1024)
		for i := range n / len(v) {
			if err := b.Put([]byte{byte(i >> 16), byte(i >> 8), byte(i)}, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(scratch) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A payment the service cannot read is the operator's, however old and
// final it looks: pruning leaves it, and its readable neighbour goes.
func TestPruneKeepsUnreadable(t *testing.T) {
	j, path := openJournal(t)
	bad, good := newTxn(t, j, t0), newTxn(t, j, t0)
	finish(t, j, bad.ID, t0, Declined, VendNone, "")
	finish(t, j, good.ID, t0, Declined, VendNone, "")
	j.Close()
	raw := readRaw(t, path, "txns", bad.ID)
	raw = bytes.Replace(raw, []byte(`"amount":"12.50"`), []byte(`"amount":"twelve"`), 1)
	writeRaw(t, path, "txns", bad.ID, raw)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Get(bad.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the damaged payment reads as %v, want ErrCorrupt", err)
	}
	if n, err := j.PrunePayments(t0.Add(2*pruneKeep), pruneKeep, false); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want only the readable one", n, err)
	}
	if _, err := j.Get(bad.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the damaged payment after pruning: %v, want it still there", err)
	}
}
