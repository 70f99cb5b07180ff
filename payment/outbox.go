package payment

// The journal is the outbox (flow 5): every write the journal commits
// appends a Record in the same bbolt transaction, and the fleet shipper
// reads them in Seq order after its durable cursor.

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

// RecordKind says what a journal record is about.
type RecordKind string

const (
	// RecordTxn is a payment created or changed (a transition, a vend
	// state, a review, a settlement, a recovery at start); Evidence is
	// set as well when a message was journaled with the change.
	RecordTxn RecordKind = "txn"
	// RecordEvidence is a message about a known payment journaled
	// without changing it (a duplicate, a late or odd message). Txn is
	// the payment after the write: only its evidence count and
	// UpdatedAt moved.
	RecordEvidence RecordKind = "evidence"
	// RecordUnknown is a signed message about no known payment;
	// Evidence holds it, Txn is nil.
	RecordUnknown RecordKind = "unknown"
	// RecordQuarantine is a payment record that could not be read and
	// was set aside at start, or an operator's note on one: Txn holds
	// only its ID (its key in the quarantine, see Quarantined),
	// Quarantined, and Settled once it was settled; Error says why it
	// could not be read.
	RecordQuarantine RecordKind = "quarantine"
	// RecordUnreadable is never stored: Records returns it in place of
	// a record that cannot be decoded, with its Seq and the reason in
	// Error, so that a shipper can report it and move past it.
	RecordUnreadable RecordKind = "unreadable"
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
	Error    string     `json:"error,omitempty"`    // RecordQuarantine, RecordUnreadable: why it cannot be read
}

// The records bucket holds the outbox: key the 8-byte big-endian Seq
// from the bucket's own NextSequence (bbolt rolls it back with the
// transaction, so the numbers have no gaps), value the JSON of a Record.
//
// Which writes append: Create (RecordTxn), Update (RecordTxn, or
// RecordEvidence when only a message was added; Settle goes through
// it), AddEvidence (RecordUnknown), Recover (a RecordTxn per payment it
// flags, a RecordQuarantine per record it sets aside) and the settling
// of a quarantined record (RecordQuarantine). Which do not, because they
// are no event about a payment: OpenJournal's bucket creation,
// NextSequence (KPOS's daily counter), the expiry of replay nonces in
// Nonces and the housekeeping inside a write (the bounded unknown
// bucket, the nonce set), and the outbox's own SetShipped and
// TrimRecords.
//
// A journal written before this bucket existed gets it at open and its
// first record is Seq 1: the history before that is not in the outbox
// (the payments themselves are all still in the txns bucket).
var (
	bucketRecords = []byte("records")
	keyShipped    = []byte("fleet/shipped")
)

// appendFill is how full bbolt leaves a page it splits in the buckets
// whose keys grow at the end: the records (the outbox's sequence), the
// payments and their evidence (by txn id, which is time), the nonces (by
// forget time) and the unknown-transaction messages (their sequence).
// bbolt's default of half full is for keys that arrive anywhere. Here a
// split page is written again only for a late message or an operator's
// note, which splits it once more, so the page is left full. (bbolt
// keeps two keys on each side of a split, so a page of values of a
// kilobyte, like the records, is still cut two and two.) It saves the SD
// card a fifth of the journal's pages (BenchmarkResultToRelay's journal
// of 10,000 payments: 64 MiB, was 80), and the payment path
// work: each commit reads the last page of each bucket it appends to, and
// the branches above it, into memory, and after a split at half full
// that page starts half full, here nearly empty.
const appendFill = 1.0

// appendBucket is tx's bucket name, set to split at appendFill. bbolt
// keeps a bucket's handle for the rest of the transaction, so the fill
// holds for every later tx.Bucket(name) in it.
func appendBucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// appendRecord appends the record of one write to the outbox, in the
// caller's bbolt transaction. txn and ev are the bytes the write stored
// (encodeTxn, encodeEvidence), reused so that a record costs no second
// encoding; either may be nil. errMsg is Record.Error.
func appendRecord(tx *bolt.Tx, now time.Time, kind RecordKind, txn, ev []byte, errMsg string) error {
	return appendRecordIn(nil, tx, now, kind, txn, ev, errMsg)
}

// appendRecordIn is appendRecord with key and value in a (bbolt keeps
// both until commit).
func appendRecordIn(a *arena, tx *bolt.Tx, now time.Time, kind RecordKind, txn, ev []byte, errMsg string) error {
	b := appendBucket(tx, bucketRecords)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("journal: record sequence: %w", err)
	}
	k := a.take(binary.BigEndian.AppendUint64(a.tail(tx), seq))
	v, err := appendRecordJSON(a.tail(tx), seq, now, kind, txn, ev, errMsg)
	if err != nil {
		return err
	}
	return b.Put(k, a.take(v))
}

// appendRecordJSON appends what json.Marshal writes for the Record, but
// with txn and ev already encoded (FuzzRecord checks the two agree).
func appendRecordJSON(b []byte, seq uint64, at time.Time, kind RecordKind, txn, ev []byte, errMsg string) ([]byte, error) {
	// time.Time's MarshalJSON refuses the years RFC 3339 cannot hold,
	// which AppendFormat would write anyway.
	if y := at.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("journal: record time %v: year outside 0-9999", at)
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"at":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(kind))
	if txn != nil {
		b = append(append(b, `,"txn":`...), txn...)
	}
	if ev != nil {
		b = append(append(b, `,"evidence":`...), ev...)
	}
	b = appendOmitString(b, `,"error":`, errMsg)
	return append(b, '}'), nil
}

// decodeOutboxRecord decodes the record stored under key k. Anything that
// is not a Record filed under its own Seq is an error.
func decodeOutboxRecord(k, v []byte) (Record, error) {
	if len(k) != 8 {
		return Record{}, fmt.Errorf("record key of %d bytes, want 8", len(k))
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, err
	}
	if seq := binary.BigEndian.Uint64(k); r.Seq != seq {
		return Record{}, fmt.Errorf("record %d filed under seq %d", r.Seq, seq)
	}
	if r.Kind == "" {
		return Record{}, errors.New("record without a kind")
	}
	return r, nil
}

// keySeq is the Seq a record key stands for: its first 8 bytes,
// big-endian, zero-padded (the journal writes no other length).
func keySeq(k []byte) uint64 {
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// UnreadableRecords returns how many undecodable records Records has
// returned since the journal was opened (one read twice counts twice): a
// status line for the operator, since each is a hole in what the broker
// gets.
func (j *Journal) UnreadableRecords() uint64 { return j.unreadable.Load() }

// Records returns up to max records with Seq > after, ascending. A record
// that cannot be decoded never stops the reader: it comes back as a
// RecordUnreadable with its Seq and the reason (and is counted, see
// UnreadableRecords), so the shipper reports it and moves past it.
func (j *Journal) Records(after uint64, max int) ([]Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: journal: records: max %d, want at least 1", ErrBadRequest, max)
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < max; k, v = c.Next() {
			r, err := decodeOutboxRecord(k, v)
			if err != nil {
				j.unreadable.Add(1)
				r = Record{Seq: keySeq(k), Kind: RecordUnreadable, Error: err.Error()}
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: records: %w", err)
	}
	return out, nil
}

// LastRecord returns the highest Seq appended so far (0 if none). Records
// trimmed since still count: Seq is never reused.
func (j *Journal) LastRecord() (uint64, error) {
	var n uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRecords).Sequence()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: last record: %w", err)
	}
	return n, nil
}

// ErrAhead is returned by SetShipped for a seq beyond the last record:
// the shipper cannot have been acknowledged for a record never written.
var ErrAhead = errors.New("payment: shipped cursor beyond the last record")

// errUnchanged rolls back a write that would change nothing, so that a
// stale acknowledgement costs no commit and no fsync.
var errUnchanged = errors.New("unchanged")

// Shipped returns the fleet shipper's durable cursor: every record with
// Seq up to it was acknowledged by the broker (0: none).
func (j *Journal) Shipped() (uint64, error) {
	var n uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		n = shipped(tx)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: shipped cursor: %w", err)
	}
	return n, nil
}

func shipped(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyShipped); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// SetShipped moves the cursor to seq, in one bbolt transaction. It never
// moves backwards: a lower or equal seq is ignored (acknowledgements may
// arrive out of order, and a late one must not cause a resend of what a
// newer one covered). A seq beyond LastRecord is ErrAhead.
func (j *Journal) SetShipped(seq uint64) error {
	err := j.write(func(tx *bolt.Tx) error {
		if last := tx.Bucket(bucketRecords).Sequence(); seq > last {
			return fmt.Errorf("%w: %d, last record %d", ErrAhead, seq, last)
		}
		if seq <= shipped(tx) {
			return errUnchanged
		}
		return tx.Bucket(bucketMeta).Put(keyShipped, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("journal: set shipped cursor: %w", err)
	}
	return nil
}

// trimBatch is how many records TrimRecords deletes per bbolt
// transaction: small enough that a payment write waits for the writer
// lock no longer than a few milliseconds.
const trimBatch = 1000

// TrimRecords deletes, oldest first, the records older than keep (by At)
// and returns how many. With shippedOnly (fleet on) it stops at the
// first record not yet shipped however old: an unshipped money event is
// never lost. It stops at the first record that is young enough too:
// Seq order is the order of the writes, so what follows is as young or
// younger (a record dated ahead by a clock that was wrong holds the trim
// back until its date has passed). A record that cannot be decoded has
// no age: it goes once trimming reaches it and a record after it is
// old enough, or once shipped (the shipper reported it as unreadable);
// with fleet off, a run of more than trimBatch of them holds the trim
// there (a journal that damaged needs its operator anyway).
//
// Records are never renumbered: Seq goes on from the bucket's sequence.
// The deletes run in transactions of trimBatch records so that a long
// trim never holds the writer lock long enough to delay a payment.
func (j *Journal) TrimRecords(now time.Time, keep time.Duration, shippedOnly bool) (int, error) {
	return j.trimRecords(now, keep, shippedOnly, trimBatch)
}

func (j *Journal) trimRecords(now time.Time, keep time.Duration, shippedOnly bool, batch int) (int, error) {
	if keep <= 0 {
		return 0, fmt.Errorf("%w: journal: trim records: keep %v, want more than 0", ErrBadRequest, keep)
	}
	cutoff := now.Add(-keep)
	total := 0
	for {
		n, full := 0, false
		err := j.write(func(tx *bolt.Tx) error {
			limit := ^uint64(0)
			if shippedOnly {
				limit = shipped(tx)
			}
			b := tx.Bucket(bucketRecords)
			// Collected first, deleted after: a bbolt cursor may skip the
			// key after one it deleted.
			var del, held [][]byte // held: unreadable, waiting on what follows
			c := b.Cursor()
			for k, v := c.First(); k != nil && keySeq(k) <= limit; k, v = c.Next() {
				if len(del) >= batch || len(held) >= batch {
					full = len(del) > 0
					break
				}
				at, ok := recordAt(k, v)
				if !ok {
					if shippedOnly {
						del = append(del, bytes.Clone(k)) // shipped, as unreadable
					} else {
						held = append(held, bytes.Clone(k))
					}
					continue
				}
				if !at.Before(cutoff) {
					break // young: so is everything after it
				}
				del = append(append(del, held...), bytes.Clone(k))
				held = held[:0]
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(del)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("journal: trim records: %w", err)
		}
		total += n
		if !full {
			return total, nil
		}
	}
}

// recordAt reads a record's time without decoding the rest; ok is false
// for one that cannot be decoded.
func recordAt(k, v []byte) (at time.Time, ok bool) {
	var r struct {
		At time.Time `json:"at"`
	}
	if len(k) != 8 || json.Unmarshal(v, &r) != nil {
		return time.Time{}, false
	}
	return r.At, true
}
