package payment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Quarantined is a transaction record that could not be decoded. Recover
// moves such a record out of the transactions, byte for byte, so that one
// bad record never stops the service; it stays listed for review.
//
// In JSON (GET /v1/quarantine) Raw is base64, as encoding/json writes
// []byte: the record may not be valid UTF-8.
type Quarantined struct {
	Key     string    `json:"key"`               // the record's key: its txn_id
	Raw     []byte    `json:"raw"`               // the record as it was stored
	Error   string    `json:"error"`             // why it cannot be decoded
	At      time.Time `json:"at"`                // when it was quarantined (zero while pending)
	Settled string    `json:"settled,omitempty"` // operator's note once reviewed
	// Pending: the record is still among the transactions (it went bad
	// after the last start) and is quarantined at the next start.
	Pending bool `json:"pending,omitempty"`
}

// quarInfo is what the quarantine_info bucket keeps beside a record.
type quarInfo struct {
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
	Settled string    `json:"settled,omitempty"`
}

// Txn is the record as the review list shows it: under its key, state
// unknown, vend_unknown (nothing about it can be trusted), Quarantined
// set, and the reason in Review. Amount, mode and provider are zero.
func (q Quarantined) Txn() Txn {
	why := "quarantined: record cannot be decoded: " + q.Error
	if q.Pending {
		why = "record cannot be decoded (quarantined at the next start): " + q.Error
	}
	return Txn{ID: q.Key, State: Unknown, Vend: VendUnknown, Review: why, Settled: q.Settled,
		Quarantined: true, CreatedAt: q.At, UpdatedAt: q.At}
}

// quarantine moves the record q.Key from the transactions into the
// quarantine. A different record already quarantined under that key is
// kept; the new one goes under "key~2", "key~3"... and q.Key says where.
func quarantine(tx *bolt.Tx, q *Quarantined) error {
	quar, info := tx.Bucket(bucketQuar), tx.Bucket(bucketQuarInfo)
	orig := []byte(q.Key)
	key := orig
	for i := 2; ; i++ {
		prev := quar.Get(key)
		if prev == nil {
			break
		}
		if bytes.Equal(prev, q.Raw) {
			q.Key = string(key) // quarantined before: keep its note
			return tx.Bucket(bucketTxns).Delete(orig)
		}
		key = fmt.Appendf(nil, "%s~%d", orig, i)
	}
	q.Key = string(key)
	v, err := json.Marshal(quarInfo{Error: q.Error, At: q.At})
	if err != nil {
		return err
	}
	if err := quar.Put(key, q.Raw); err != nil {
		return err
	}
	if err := info.Put(key, v); err != nil {
		return err
	}
	return tx.Bucket(bucketTxns).Delete(orig)
}

// Quarantined lists the quarantined records by key, then any record among
// the transactions that cannot be decoded now (Pending).
func (j *Journal) Quarantined() ([]Quarantined, error) {
	var out []Quarantined
	err := j.db.View(func(tx *bolt.Tx) error {
		info := tx.Bucket(bucketQuarInfo)
		err := tx.Bucket(bucketQuar).ForEach(func(k, v []byte) error {
			q := Quarantined{Key: string(k), Raw: bytes.Clone(v)}
			var qi quarInfo
			if err := json.Unmarshal(info.Get(k), &qi); err != nil {
				qi.Error = "(no reason recorded)"
			}
			q.Error, q.At, q.Settled = qi.Error, qi.At, qi.Settled
			out = append(out, q)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			if _, err := decodeRecord(k, v); err != nil {
				out = append(out, Quarantined{Key: string(k), Raw: bytes.Clone(v), Error: err.Error(), Pending: true})
			}
			return nil
		})
	})
	return out, err
}

// settleQuarantined records the operator's note on quarantined record id;
// ok is false if there is none.
func (j *Journal) settleQuarantined(id, note string, now time.Time) (t Txn, ok bool, err error) {
	err = j.update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketQuar).Get([]byte(id))
		if raw == nil {
			return nil
		}
		ok = true
		info := tx.Bucket(bucketQuarInfo)
		var qi quarInfo
		if err := json.Unmarshal(info.Get([]byte(id)), &qi); err != nil {
			qi.Error = "(no reason recorded)"
		}
		if qi.Settled != "" {
			return fmt.Errorf("%w: %s was settled already: %s", ErrTransition, id, qi.Settled)
		}
		qi.Settled = note
		v, err := json.Marshal(qi)
		if err != nil {
			return err
		}
		t = Quarantined{Key: id, Error: qi.Error, At: qi.At, Settled: note}.Txn()
		if err := info.Put([]byte(id), v); err != nil {
			return err
		}
		return appendQuarantineRecord(tx, now, id, note, qi.Error)
	})
	return t, ok, err
}

// appendQuarantineRecord appends the outbox record about quarantined
// record key: only what can be trusted (the key, the operator's note,
// why it cannot be read), never a guess at the payment it was.
func appendQuarantineRecord(tx *bolt.Tx, now time.Time, key, settled, why string) error {
	v, err := encodeTxn(&Txn{ID: key, Quarantined: true, Settled: settled})
	if err != nil {
		return err
	}
	return appendRecord(tx, now, RecordQuarantine, v, nil, why)
}

// Reviews lists what an operator must look at and has not settled (all:
// settled too), in one scan: first the records that cannot be decoded,
// quarantined or not yet (each as Quarantined.Txn shows it), then the
// flagged payments, oldest first.
func (j *Journal) Reviews(all bool) ([]Txn, error) {
	out := []Txn{}
	err := j.db.View(func(tx *bolt.Tx) error {
		info := tx.Bucket(bucketQuarInfo)
		err := tx.Bucket(bucketQuar).ForEach(func(k, _ []byte) error {
			var qi quarInfo
			if err := json.Unmarshal(info.Get(k), &qi); err != nil {
				qi.Error = "(no reason recorded)"
			}
			if qi.Settled == "" || all {
				out = append(out, Quarantined{Key: string(k), Error: qi.Error, At: qi.At, Settled: qi.Settled}.Txn())
			}
			return nil
		})
		if err != nil {
			return err
		}
		var flagged []Txn
		err = tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			t, err := decodeRecord(k, v)
			switch {
			case err != nil:
				out = append(out, Quarantined{Key: string(k), Error: err.Error(), Pending: true}.Txn())
			case t.Review != "" && (t.Settled == "" || all):
				flagged = append(flagged, *t)
			}
			return nil
		})
		out = append(out, flagged...)
		return err
	})
	return out, err
}
