package payment

import (
	"time"
)

// RecordKind says what a journal record is about.
type RecordKind string

const (
	// RecordTxn is a payment created or changed (a transition, a vend
	// state, a review, a settlement); Evidence is set as well when a
	// message was journaled with the change.
	RecordTxn RecordKind = "txn"
	// RecordEvidence is a message about a known payment journaled
	// without changing it (a duplicate, a late or odd message).
	RecordEvidence RecordKind = "evidence"
	// RecordUnknown is a signed message about no known payment.
	RecordUnknown RecordKind = "unknown"
	// RecordQuarantine is a payment record that could not be read and
	// was set aside; Txn holds only its ID.
	RecordQuarantine RecordKind = "quarantine"
)

// Record is one entry of the journal's outbox: every write the journal
// commits appends one, in the same bbolt transaction, numbered by Seq
// 1, 2, 3, … with no gaps (a write that rolls back takes its number
// with it). The fleet shipper publishes them in Seq order after its
// durable cursor (Shipped), so that a consumer that de-duplicates by
// (kiosk_id, seq) sees every change of every payment exactly once in
// effect, however often the kiosk restarted or lost the broker.
type Record struct {
	Seq      uint64     `json:"seq"`
	At       time.Time  `json:"at"`
	Kind     RecordKind `json:"kind"`
	Txn      *Txn       `json:"txn,omitempty"`      // the payment as it stood after the write
	Evidence *Evidence  `json:"evidence,omitempty"` // the message journaled with it
}
