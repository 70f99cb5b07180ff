package payment

// Evidence: every message about a payment, the bounded list of messages
// about no known payment, and the replay nonces kept with them.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Evidence is one journaled message about a transaction: every correctly
// signed message is kept, including those that could not be acted on.
type Evidence struct {
	Seq      uint64    `json:"seq"`
	TxnID    string    `json:"txn_id"`
	At       time.Time `json:"at"`
	Source   string    `json:"source"`           // "pos", "kpos", "kiosk"
	Type     string    `json:"type"`             // message type
	Status   string    `json:"status,omitempty"` // message status
	Disposal string    `json:"disposal"`         // what the kiosk did with it
	Payload  string    `json:"payload"`          // canonical payload
	// Nonce, when set, is the message's replay nonce. With a Forget time
	// it is also written to the nonce set in the same bbolt transaction,
	// so a replay after a restart is still recognised until Forget (see
	// Nonces). A zero Forget keeps the nonce in the evidence only.
	Nonce  string    `json:"nonce,omitempty"`
	Forget time.Time `json:"-"`
}

// AddEvidence journals a message that concerns no known transaction. It
// goes to its own bucket, bounded by UnknownMax and UnknownMaxAge: the
// oldest are deleted as new ones come (see UnknownEvidence). Journals
// written before that bucket existed keep their old unknown-transaction
// messages in the evidence bucket, where EvidenceFor still finds them.
func (j *Journal) AddEvidence(ev *Evidence, now time.Time) error {
	maxN, maxAge := j.UnknownMax, j.UnknownMaxAge
	if maxN <= 0 {
		maxN = DefaultUnknownMax
	}
	if maxAge <= 0 {
		maxAge = DefaultUnknownMaxAge
	}
	return j.update(func(tx *bolt.Tx) error {
		v, err := j.stampEvidence(tx, ev, now)
		if err != nil {
			return err
		}
		// Keys are the bucket's own sequence and only the oldest are ever
		// deleted, so the keys are contiguous and the count is
		// new key - first key.
		b := appendBucket(tx, bucketUnknown)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		cutoff := now.Add(-maxAge)
		c := b.Cursor()
		for k, old := c.First(); k != nil; k, old = c.First() {
			if n-binary.BigEndian.Uint64(k) < uint64(maxN) {
				var e Evidence
				if json.Unmarshal(old, &e) != nil || !e.At.Before(cutoff) {
					break
				}
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, n), v); err != nil {
			return err
		}
		return appendRecordIn(&j.scratch, tx, now, RecordUnknown, nil, v, "")
	})
}

// UnknownEvidence returns up to n messages about unknown transactions,
// newest first (n <= 0: all that are kept).
func (j *Journal) UnknownEvidence(n int) ([]Evidence, error) {
	var out []Evidence
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUnknown).Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var e Evidence
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal: unknown-transaction evidence %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Evidence is keyed txn_id + 0x00 + big-endian sequence, so one prefix
// scan lists a transaction's messages in arrival order. It returns the
// encoding, which the outbox record of the write reuses. Keys and values
// are in the journal's scratch arena.
func (j *Journal) addEvidence(tx *bolt.Tx, ev *Evidence, now time.Time) ([]byte, error) {
	a := &j.scratch
	v, err := j.stampEvidence(tx, ev, now)
	if err != nil {
		return nil, err
	}
	return v, tx.Bucket(bucketEvidence).Put(a.take(appendEvidenceKey(a.tail(tx), ev.TxnID, ev.Seq)), v)
}

// stampEvidence gives ev its sequence number (one sequence for all
// evidence, known or not) and time, journals its nonce, and encodes it.
func (j *Journal) stampEvidence(tx *bolt.Tx, ev *Evidence, now time.Time) ([]byte, error) {
	a := &j.scratch
	seq, err := appendBucket(tx, bucketEvidence).NextSequence()
	if err != nil {
		return nil, err
	}
	ev.Seq, ev.At = seq, now
	if ev.Nonce != "" && !ev.Forget.IsZero() {
		if err := j.putNonce(tx, ev.Nonce, ev.Forget, now); err != nil {
			return nil, err
		}
	}
	v, err := appendEvidence(a.tail(tx), ev)
	return a.take(v), err
}

// encodeEvidence is the evidence codec's encoder (appendEvidence, which
// writes what json.Marshal writes: FuzzTxnEncode; json.Unmarshal reads
// back whatever it writes, Forget aside: FuzzTxnRoundTrip).
func encodeEvidence(ev *Evidence) ([]byte, error) { return appendEvidence(nil, ev) }

// The nonce set is keyed big-endian forget time in epoch milliseconds +
// nonce, so the expired ones are always at the front and inserts land at
// the back. The expired are deleted in bulk (sweepNonces): by the commit
// that creates a payment, and by every nonceSweepEvery-th insert, so a
// flood of messages with no payment is bounded too: the set never holds
// more than what is inside the replay window plus nonceSweepEvery.
func appendNonceKey(b []byte, nonce string, forget time.Time) []byte {
	ms := max(forget.UnixMilli(), 0)
	return append(binary.BigEndian.AppendUint64(b, uint64(ms)), nonce...)
}

func nonceExpired(k []byte, now time.Time) bool {
	return int64(binary.BigEndian.Uint64(k[:8])) <= now.UnixMilli()
}

// nonceSweepEvery bounds the inserts between two sweeps. A payment's
// messages are a handful, so the approval commit, the one the customer
// waits on, normally only appends: the sweep touches the set's first
// page as well as its last, and that page is most of a sweep's cost.
const nonceSweepEvery = 32

func (j *Journal) putNonce(tx *bolt.Tx, nonce string, forget, now time.Time) error {
	if j.noncePuts++; j.noncePuts >= nonceSweepEvery {
		if err := j.sweepNonces(tx, now); err != nil {
			return err
		}
	}
	if !forget.After(now) {
		return nil // already outside the window
	}
	a := &j.scratch
	return appendBucket(tx, bucketNonces).Put(a.take(appendNonceKey(a.tail(tx), nonce, forget)), nil)
}

// sweepNonces deletes the nonces that have expired by now, and keys too
// short to be a nonce's, which only a damaged file holds.
func (j *Journal) sweepNonces(tx *bolt.Tx, now time.Time) error {
	c := tx.Bucket(bucketNonces).Cursor()
	for k, _ := c.First(); k != nil && (len(k) < 8 || nonceExpired(k, now)); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	// Counted from here whether or not the write commits: a rolled back
	// sweep only means the next one comes sooner than it would.
	j.noncePuts = 0
	return nil
}

// Nonces returns the journaled nonces whose forget time is after now, each
// with its forget time (the latest, if one was journaled twice), and
// deletes the expired ones.
func (j *Journal) Nonces(now time.Time) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	expired := false
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNonces).ForEach(func(k, _ []byte) error {
			if len(k) < 8 || nonceExpired(k, now) {
				expired = true
				return nil
			}
			forget := time.UnixMilli(int64(binary.BigEndian.Uint64(k[:8])))
			if n := string(k[8:]); forget.After(out[n]) {
				out[n] = forget
			}
			return nil
		})
	})
	if err != nil || !expired {
		return out, err
	}
	err = j.write(func(tx *bolt.Tx) error { return j.sweepNonces(tx, now) })
	return out, err
}

func evidenceKey(txnID string, seq uint64) []byte {
	return appendEvidenceKey(make([]byte, 0, len(txnID)+9), txnID, seq)
}

func appendEvidenceKey(k []byte, txnID string, seq uint64) []byte {
	k = append(k, txnID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// eachEvidence calls fn for the messages journaled about txnID, in
// arrival order, until fn returns false.
func (j *Journal) eachEvidence(txnID string, fn func(Evidence) bool) error {
	prefix := append([]byte(txnID), 0)
	return j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvidence).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var e Evidence
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal: evidence %q: %w", k, err)
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// EvidenceFor lists the messages journaled about txnID, in arrival order.
// For an id that is no known transaction these are the messages kept
// about unknown transactions (a scan of that bounded bucket).
func (j *Journal) EvidenceFor(txnID string) ([]Evidence, error) {
	var out []Evidence
	err := j.eachEvidence(txnID, func(e Evidence) bool { out = append(out, e); return true })
	if err != nil {
		return out, err
	}
	err = j.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTxns).Get([]byte(txnID)) != nil {
			return nil
		}
		return tx.Bucket(bucketUnknown).ForEach(func(k, v []byte) error {
			var e Evidence
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal: unknown-transaction evidence %x: %w", k, err)
			}
			if e.TxnID == txnID {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}

// HasEvidence reports whether payload was already journaled for txnID.
func (j *Journal) HasEvidence(txnID, payload string) (bool, error) {
	if payload == "" {
		return false, nil
	}
	found := false
	err := j.eachEvidence(txnID, func(e Evidence) bool { found = e.Payload == payload; return !found })
	return found, err
}

// Summary is the evidence on one line: when, seq, who sent what, the txn id it
// named (- for none), what the kiosk did with it, the signed payload.
func (ev Evidence) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s %s", ev.At.Local().Format("2006-01-02 15:04:05"), ev.Seq, ev.Source, ev.Type)
	if ev.Status != "" {
		fmt.Fprintf(&b, " %s", ev.Status)
	}
	id := ev.TxnID
	if id == "" {
		id = "-"
	}
	fmt.Fprintf(&b, " txn=%s disposal=%q payload=%s", id, ev.Disposal, ev.Payload)
	return b.String()
}
