package payment

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Pruning keeps the payments themselves bounded as TrimRecords keeps the
// outbox: on an SD card that takes a thousand payments a day, a journal
// that kept everything would fill the partition in a few years.

// ErrPruneHeld is PrunePayments refusing to prune at all: an unshipped
// record cannot be read, so which payment it is about is unknown, and
// that payment must not go before it is shipped. It clears by itself
// once the shipper has reported the record as unreadable and moved past
// it.
var ErrPruneHeld = errors.New("journal: pruning held back")

// pruneBatch is how many payments PrunePayments deletes per bbolt
// transaction, and pruneScan how many it reads per read transaction:
// the first bounds how long a payment write waits for the writer lock,
// the second how long a reader holds bbolt's mapping (a file that must
// grow waits for its readers).
const (
	pruneBatch = 500
	pruneScan  = 2000
)

// PrunePayments deletes the payments that nobody needs any more and
// returns how many: final (an outcome, and no vend under way), clean or
// settled by an operator (nothing left to review), last changed longer
// than keep ago and, with shippedOnly (fleet on), shipped: no record
// after the shipped cursor is about them. A payment goes with the
// messages journaled about it and its idempotency key, which a
// controller can therefore use again after keep (a retry is a matter of
// seconds; an order id is not reused for months). Its records in the
// outbox stay until TrimRecords takes them; a late message about it is
// kept as one about an unknown payment (AddEvidence), so nothing
// correctly signed is ever lost.
//
// A payment whose record cannot be decoded, a quarantined one, and one
// whose id does not say when it was made are never pruned: they are for
// the operator. Like TrimRecords it works in short transactions, so that
// a payment write never waits long, and it is safe beside the service:
// each candidate is read again, and judged again, in the transaction
// that deletes it.
func (j *Journal) PrunePayments(now time.Time, keep time.Duration, shippedOnly bool) (int, error) {
	if keep <= 0 {
		return 0, fmt.Errorf("%w: journal: prune payments: keep %v, want more than 0", ErrBadRequest, keep)
	}
	cutoff := now.Add(-keep)
	var held map[string]bool // payments with unshipped records
	var heldUpTo uint64      // the last record held was built from
	if shippedOnly {
		var err error
		if held, heldUpTo, err = j.unshipped(0); err != nil {
			return 0, err
		}
	}
	total := 0
	var from []byte
	for {
		cands, next, err := j.pruneCandidates(from, cutoff)
		if err != nil {
			return total, err
		}
		for len(cands) > 0 {
			n := min(len(cands), pruneBatch)
			d, upTo, err := j.prune(cands[:n], cutoff, held, heldUpTo)
			total += d
			if err != nil {
				return total, err
			}
			heldUpTo = upTo
			cands = cands[n:]
		}
		if next == nil {
			return total, nil
		}
		from = next
	}
}

// unshipped returns the ids of the payments that records after the
// shipped cursor (and after `after`) are about, and the last record seq
// it saw. The record's bytes are searched, not decoded: every Txn
// encodes its id first, and this runs over every record a kiosk that was
// offline for weeks has waiting.
func (j *Journal) unshipped(after uint64) (map[string]bool, uint64, error) {
	ids := map[string]bool{}
	last := after
	err := j.db.View(func(tx *bolt.Tx) error {
		last = max(shipped(tx), after)
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(seqKey(last + 1)); k != nil; k, v = c.Next() {
			last = keySeq(k)
			id, ok := recordTxnID(v)
			if !ok {
				return fmt.Errorf("%w: unshipped record %d cannot be read; pruning waits until it is shipped", ErrPruneHeld, last)
			}
			ids[id] = true // "" is no payment's id
		}
		return nil
	})
	return ids, last, err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// txnIDField is how every record about a payment names it: Record's txn
// member is a Txn encoded by encodeTxn, whose first field is its id, and
// nothing before it in the record (seq, at, kind) can hold a quote.
var txnIDField = []byte(`,"txn":{"txn_id":"`)

// recordTxnID returns the id of the payment a stored record is about, ""
// for a record about none (a message about an unknown payment), and
// false for a record that cannot be read. An id with an escape in it (a
// quarantined key can be any bytes) is left to encoding/json.
func recordTxnID(v []byte) (string, bool) {
	if i := bytes.Index(v, txnIDField); i >= 0 {
		rest := v[i+len(txnIDField):]
		if end := bytes.IndexAny(rest, `"\`); end >= 0 && rest[end] == '"' {
			return string(rest[:end]), true
		}
	}
	var r struct {
		Txn *struct {
			ID string `json:"txn_id"`
		} `json:"txn"`
	}
	if json.Unmarshal(v, &r) != nil {
		return "", false
	}
	if r.Txn == nil {
		return "", true
	}
	return r.Txn.ID, true
}

// pruneCandidates reads up to pruneScan payments from key from on and
// returns the ids of those that look prunable, and the key to go on
// from (nil at the end). Payment ids are "TXN" + the milliseconds they
// were made at and never go below an earlier one, so the scan stops at
// the first id younger than the cutoff: every later one is younger too
// (one made while the clock was behind only stays longer).
func (j *Journal) pruneCandidates(from []byte, cutoff time.Time) (ids [][]byte, next []byte, err error) {
	err = j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTxns).Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for n := 0; k != nil; k, v = c.Next() {
			if n == pruneScan {
				next = bytes.Clone(k)
				return nil
			}
			n++
			ms, ok := idMillis(k)
			if ok && ms >= cutoff.UnixMilli() {
				return nil
			}
			if _, yes := prunable(k, v, cutoff); ok && yes {
				ids = append(ids, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("journal: prune payments: %w", err)
	}
	return ids, next, nil
}

// idMillis is the time a payment id says it was made at.
func idMillis(k []byte) (int64, bool) {
	s, ok := bytes.CutPrefix(k, []byte("TXN"))
	if !ok || len(s) == 0 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	ms, err := strconv.ParseInt(string(s), 10, 64)
	return ms, err == nil
}

// pruneView is what pruning reads of a stored payment: decoding only
// these fields of each payment costs half of decoding a Txn, and a
// pruning run reads every old payment twice.
type pruneView struct {
	ID        string    `json:"txn_id"`
	State     State     `json:"state"`
	Vend      Vend      `json:"vend"`
	Key       string    `json:"idempotency_key"`
	Review    string    `json:"review"`
	Settled   string    `json:"settled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// prunable judges one stored payment (see PrunePayments) and returns
// what it read of it.
func prunable(k, v []byte, cutoff time.Time) (pruneView, bool) {
	var t pruneView
	if json.Unmarshal(v, &t) != nil || t.ID != string(k) {
		return t, false // undecodable or misfiled: the operator's (Recover quarantines it)
	}
	return t, t.State.Final() && t.Vend != VendReleasing &&
		(t.Review == "" || t.Settled != "") &&
		t.UpdatedAt.Before(cutoff) && t.CreatedAt.Before(cutoff)
}

// prune deletes the candidates that are still prunable, in one bbolt
// transaction, and returns how many and the last record seq the held set
// now covers: records written since the set was built are read first, so
// that a payment a message just arrived for stays (its UpdatedAt moved
// too, unless the clock did not).
func (j *Journal) prune(ids [][]byte, cutoff time.Time, held map[string]bool, heldUpTo uint64) (int, uint64, error) {
	n := 0
	err := j.write(func(tx *bolt.Tx) error {
		if held != nil {
			c := tx.Bucket(bucketRecords).Cursor()
			for k, v := c.Seek(seqKey(heldUpTo + 1)); k != nil; k, v = c.Next() {
				id, ok := recordTxnID(v)
				if !ok {
					return fmt.Errorf("%w: record %d cannot be read", ErrPruneHeld, keySeq(k))
				}
				held[id] = true
				heldUpTo = keySeq(k)
			}
		}
		txns, keys, evs := tx.Bucket(bucketTxns), tx.Bucket(bucketKeys), tx.Bucket(bucketEvidence)
		for _, id := range ids {
			v := txns.Get(id)
			if v == nil || held[string(id)] {
				continue
			}
			t, ok := prunable(id, v, cutoff)
			if !ok {
				continue
			}
			if _, err := decodeRecord(id, v); err != nil {
				continue // what the service cannot read is the operator's, never pruned
			}
			if t.Key != "" && bytes.Equal(keys.Get([]byte(t.Key)), id) {
				if err := keys.Delete([]byte(t.Key)); err != nil {
					return err
				}
			}
			// Collected first, deleted after: a bbolt cursor may skip the
			// key after one it deleted.
			prefix := append(bytes.Clone(id), 0)
			var del [][]byte
			c := evs.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				del = append(del, bytes.Clone(k))
			}
			for _, k := range del {
				if err := evs.Delete(k); err != nil {
					return err
				}
			}
			if err := txns.Delete(id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrPruneHeld) {
			return 0, heldUpTo, err
		}
		return 0, heldUpTo, fmt.Errorf("journal: prune payments: %w", err)
	}
	return n, heldUpTo, nil
}
