package payment

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// journalBefore is a journal written by the code before the append-style
// codec (commit 92d565f, encoding/json throughout): a card sale with an
// idempotency key in its three commits, an IPP payment with plans in
// raw and raw-text form, a mismatched amount, text full of what JSON
// escapes, a settlement, a pulse train and a declined payment recovered
// at a restart, and evidence about an unknown payment. It was made by a
// throwaway test at that commit, through the Journal's API only
// (Create, UpdateSteps, Update, Settle, AddEvidence, Recover), and is
// kept gzipped (64 KiB of mostly empty pages).
const journalBefore = "testdata/journal-92d565f.db.gz"

// openJournalBefore opens a scratch copy of journalBefore.
func openJournalBefore(t *testing.T) (*Journal, string) {
	t.Helper()
	f, err := os.Open(journalBefore)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, path
}

// TestJournalBeforeCodec reads journalBefore whole and holds the codec
// to it: every payment, message and outbox record decodes, and encodes
// again to the very bytes the old code stored, so the format did not
// change and needs no version. Then the new code goes on writing to
// it, and all of it reads back.
func TestJournalBeforeCodec(t *testing.T) {
	j, _ := openJournalBefore(t)
	counts := map[string]int{}
	err := j.db.View(func(tx *bolt.Tx) error {
		tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			counts["txns"]++
			x, err := decodeTxn(k, v)
			if err != nil {
				t.Errorf("txn %s: %v", k, err)
				return nil
			}
			if b, err := encodeTxn(x); err != nil || !bytes.Equal(b, v) {
				t.Errorf("txn %s re-encoded (%v)\n%s\nstored\n%s", k, err, b, v)
			}
			// What the control API and `kioskd journal -json` print of
			// it: encoding/json of the decoded Txn, the stored bytes.
			if b, err := json.Marshal(x); err != nil || !bytes.Equal(b, v) {
				t.Errorf("txn %s as JSON (%v)\n%s\nstored\n%s", k, err, b, v)
			}
			return nil
		})
		for _, name := range [][]byte{bucketEvidence, bucketUnknown} {
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				counts[string(name)]++
				var e Evidence
				if err := json.Unmarshal(v, &e); err != nil {
					t.Errorf("%s %x: %v", name, k, err)
					return nil
				}
				if b, err := encodeEvidence(&e); err != nil || !bytes.Equal(b, v) {
					t.Errorf("%s %x re-encoded (%v)\n%s\nstored\n%s", name, k, err, b, v)
				}
				return nil
			})
		}
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			counts["records"]++
			r, err := decodeOutboxRecord(k, v)
			if err != nil {
				t.Errorf("record %x: %v", k, err)
				return nil
			}
			var txn, ev []byte
			if r.Txn != nil {
				txn, _ = encodeTxn(r.Txn)
			}
			if r.Evidence != nil {
				ev, _ = encodeEvidence(r.Evidence)
			}
			if b, err := appendRecordJSON(nil, r.Seq, r.At, r.Kind, txn, ev, r.Error); err != nil || !bytes.Equal(b, v) {
				t.Errorf("record %d re-encoded (%v)\n%s\nstored\n%s", r.Seq, err, b, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"txns": 4, "evidence": 4, "unknown": 1, "records": 16}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%d %s, want %d (all: %v)", counts[k], k, n, counts)
		}
	}

	list, err := j.List(0)
	if err != nil || len(list) != 4 {
		t.Fatalf("List: %d, %v", len(list), err)
	}
	sale, err := j.ByKey("order-1")
	if err != nil || sale.State != Approved || sale.Vend != VendReleased || sale.Evidence != 2 || *sale.PaidAmount != 1250 {
		t.Fatalf("the card sale: %+v, %v", sale, err)
	}
	if evs, err := j.EvidenceFor(sale.ID); err != nil || len(evs) != 2 || evs[1].Nonce != "6pIeFY0cx/SwUQdSuwwVqA==" {
		t.Fatalf("its evidence: %+v, %v", evs, err)
	}

	// The new code writes on, and reads back everything, old and new.
	now := time.Now()
	nu := Txn{Provider: "mobypay", Mode: "card", Amount: 700, Key: "order-2"}
	if err := j.Create(&nu, now); err != nil {
		t.Fatal(err)
	}
	ev := &Evidence{TxnID: nu.ID, Source: "pos", Type: "ack", Status: "processing", Disposal: "applied", Payload: "{}"}
	got, err := j.updateSteps(nu.ID, &nu, []Step{{At: now, Ev: ev, apply: func(x *Txn) { x.State = Acked }}})
	if err != nil || got.State != Acked || got.Evidence != 1 {
		t.Fatalf("update: %+v, %v", got, err)
	}
	if back, err := j.Get(nu.ID); err != nil || back.State != Acked || !back.UpdatedAt.Equal(now) {
		t.Fatalf("read back: %+v, %v", back, err)
	}
	recs, err := j.Records(0, 100)
	if err != nil || len(recs) != want["records"]+2 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Kind == RecordUnreadable {
			t.Errorf("record %d unreadable: %s", r.Seq, r.Error)
		}
	}
}
