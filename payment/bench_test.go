package payment

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkJournalCommit is one state transition with its evidence: one
// fsynced bbolt transaction. 1e9/ns_per_op is commits per second.
func BenchmarkJournalCommit(b *testing.B) {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	tx := Txn{Provider: "mobypay", Mode: "card", Amount: 1250}
	if err := j.Create(&tx, time.Now()); err != nil {
		b.Fatal(err)
	}
	payload := `{"amount":12.5,"nonce":"joHQ83Mp9dWbFsREUHDRCg==","pos_id":"POS001","status":"processing","timestamp":"1757482370549","txn_id":"` + tx.ID + `","type":"ack"}`
	b.ReportAllocs()
	for b.Loop() {
		ev := &Evidence{TxnID: tx.ID, Source: "pos", Type: "ack", Status: "processing", Disposal: "noted", Payload: payload}
		if _, err := j.Update(tx.ID, time.Now(), ev, func(t *Txn) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltCommit is BenchmarkJournalCommit's floor: one fsynced
// bbolt transaction putting a value the size of a payment's record, with
// nothing of ours around it.
func BenchmarkBoltCommit(b *testing.B) {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	tx := Txn{Provider: "mobypay", Mode: "card", Amount: 1250}
	if err := j.Create(&tx, time.Now()); err != nil {
		b.Fatal(err)
	}
	v, err := encodeTxn(&tx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := j.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketTxns).Put([]byte(tx.ID), v) }); err != nil {
			b.Fatal(err)
		}
	}
}
