package payment

import (
	"path/filepath"
	"testing"
	"time"
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
