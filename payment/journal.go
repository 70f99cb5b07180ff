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

var (
	bucketTxns     = []byte("txns")
	bucketEvidence = []byte("evidence") // messages about known transactions
	bucketMeta     = []byte("meta")
	bucketKeys     = []byte("keys")       // idempotency key -> txn_id
	bucketNonces   = []byte("nonces")     // forget time + nonce -> nothing
	bucketUnknown  = []byte("unknown")    // messages about no known transaction, bounded
	bucketQuar     = []byte("quarantine") // txn_id -> the undecodable record, byte for byte
	bucketQuarInfo = []byte("quarantine_info")
	keyLastMillis  = []byte("last_txn_ms")
)

// Journal errors.
var (
	// ErrNotFound is returned for an unknown txn_id.
	ErrNotFound = errors.New("payment: no such transaction")
	// ErrCorrupt is returned for a record that cannot be decoded (or was
	// quarantined at start for that reason).
	ErrCorrupt = errors.New("payment: journal record cannot be decoded")
	// ErrDuplicateKey is returned by Create for an idempotency key that
	// another transaction already has.
	ErrDuplicateKey = errors.New("payment: idempotency key already used")
	// ErrKeyMismatch is returned for an idempotency key reused with a
	// different amount, mode or provider.
	ErrKeyMismatch = errors.New("payment: idempotency key already used for a different payment")
)

// MaxKeyLen bounds an idempotency key.
const MaxKeyLen = 64

// ValidKey checks an idempotency key: empty (none), or 1 to MaxKeyLen
// printable ASCII characters (space to '~'). An order id fits; anything
// that a log line or a terminal could misread does not.
func ValidKey(key string) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: idempotency key longer than %d characters", ErrBadRequest, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: idempotency key: want printable ASCII, byte %d is %#x", ErrBadRequest, i, c)
		}
	}
	return nil
}

// Bounds of the evidence about unknown transactions, by default.
const (
	DefaultUnknownMax    = 1000
	DefaultUnknownMaxAge = 30 * 24 * time.Hour
)

// Journal is the durable record of every payment and every message about
// it, in one bbolt file. Each change is one bbolt transaction, fsynced
// before it returns, so an effect that follows a call is always covered by
// a record that survives a power cut.
type Journal struct {
	db *bolt.DB

	// UnknownMax and UnknownMaxAge bound the messages kept about unknown
	// transactions (AddEvidence): on each insert the oldest beyond the
	// count, and those older than the age, are deleted. Zero or less
	// means the default. Set them before the journal is used.
	UnknownMax    int
	UnknownMaxAge time.Duration
}

// OpenJournal opens or creates the journal. A second kioskd on the same
// file fails within a second instead of waiting on the lock.
func OpenJournal(path string) (*Journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTxns, bucketEvidence, bucketMeta, bucketKeys, bucketNonces, bucketUnknown, bucketQuar, bucketQuarInfo} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: init %s: %w", path, err)
	}
	return &Journal{db: db, UnknownMax: DefaultUnknownMax, UnknownMaxAge: DefaultUnknownMaxAge}, nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

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

// Create journals a new transaction and assigns its ID: "TXN" + epoch
// milliseconds, made unique by never reusing or going below the last one
// issued (two payments in one millisecond, or a clock stepped back).
// A transaction with a Key is indexed by it in the same bbolt
// transaction; a key that is already used returns ErrDuplicateKey and
// journals nothing.
func (j *Journal) Create(t *Txn, now time.Time) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		if t.Key != "" {
			if id := keys.Get([]byte(t.Key)); id != nil {
				return fmt.Errorf("%w: %q is %s", ErrDuplicateKey, t.Key, id)
			}
		}
		meta := tx.Bucket(bucketMeta)
		ms := now.UnixMilli()
		if last := meta.Get(keyLastMillis); len(last) == 8 {
			if l := int64(binary.BigEndian.Uint64(last)); ms <= l {
				ms = l + 1
			}
		}
		txns, quar := tx.Bucket(bucketTxns), tx.Bucket(bucketQuar)
		id := "TXN" + strconv.FormatInt(ms, 10)
		for txns.Get([]byte(id)) != nil || quar.Get([]byte(id)) != nil {
			ms++
			id = "TXN" + strconv.FormatInt(ms, 10)
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(ms))
		if err := meta.Put(keyLastMillis, b[:]); err != nil {
			return err
		}
		if t.Key != "" {
			if err := keys.Put([]byte(t.Key), []byte(id)); err != nil {
				return err
			}
		}
		t.ID = id
		t.CreatedAt, t.UpdatedAt = now, now
		if t.State == "" {
			t.State = Created
		}
		if t.Vend == "" {
			t.Vend = VendNone
		}
		return put(txns, t)
	})
}

func put(b *bolt.Bucket, t *Txn) error {
	v, err := encodeTxn(t)
	if err != nil {
		return err
	}
	return b.Put([]byte(t.ID), v)
}

// encodeTxn is the record codec's encoder; decodeTxn reads back whatever
// it writes (FuzzTxnRoundTrip).
func encodeTxn(t *Txn) ([]byte, error) { return json.Marshal(t) }

// get reads one transaction. A record that cannot be decoded, or one that
// was quarantined for that reason, is ErrCorrupt.
func get(tx *bolt.Tx, id string) (*Txn, error) {
	v := tx.Bucket(bucketTxns).Get([]byte(id))
	if v == nil {
		if raw := tx.Bucket(bucketQuar).Get([]byte(id)); raw != nil {
			return nil, fmt.Errorf("%w: %s was quarantined at start", ErrCorrupt, id)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return decodeTxn([]byte(id), v)
}

// decodeTxn decodes the record stored under key k: a Txn in JSON, filed
// under its own id. Anything else is ErrCorrupt.
func decodeTxn(k, v []byte) (*Txn, error) {
	t, err := decodeRecord(k, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, k, err)
	}
	return t, nil
}

// decodeRecord is decodeTxn with the bare reason.
func decodeRecord(k, v []byte) (*Txn, error) {
	var t Txn
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, err
	}
	if t.ID != string(k) {
		return nil, fmt.Errorf("record of %q filed under another id", t.ID)
	}
	return &t, nil
}

// Update changes one transaction in one bbolt transaction: fn edits a
// copy, the invariants are checked against the stored record, and ev (if
// not nil) is journaled with it. It returns the stored result.
func (j *Journal) Update(id string, now time.Time, ev *Evidence, fn func(t *Txn) error) (Txn, error) {
	var out Txn
	err := j.db.Update(func(tx *bolt.Tx) error {
		txns := tx.Bucket(bucketTxns)
		old, err := get(tx, id)
		if err != nil {
			return err
		}
		nu := *old
		nu.Plans = append([]Plan(nil), old.Plans...)
		if fn != nil {
			if err := fn(&nu); err != nil {
				return err
			}
		}
		if err := checkMove(old, &nu); err != nil {
			return err
		}
		if ev != nil {
			if err := addEvidence(tx, ev, now); err != nil {
				return err
			}
			nu.Evidence++
		}
		nu.UpdatedAt = now
		out = nu
		return put(txns, &nu)
	})
	return out, err
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
	return j.db.Update(func(tx *bolt.Tx) error {
		v, err := stampEvidence(tx, ev, now)
		if err != nil {
			return err
		}
		// Keys are the bucket's own sequence and only the oldest are ever
		// deleted, so the keys are contiguous and the count is
		// new key - first key.
		b := tx.Bucket(bucketUnknown)
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
		return b.Put(binary.BigEndian.AppendUint64(nil, n), v)
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
// scan lists a transaction's messages in arrival order.
func addEvidence(tx *bolt.Tx, ev *Evidence, now time.Time) error {
	v, err := stampEvidence(tx, ev, now)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketEvidence).Put(evidenceKey(ev.TxnID, ev.Seq), v)
}

// stampEvidence gives ev its sequence number (one sequence for all
// evidence, known or not) and time, journals its nonce, and encodes it.
func stampEvidence(tx *bolt.Tx, ev *Evidence, now time.Time) ([]byte, error) {
	seq, err := tx.Bucket(bucketEvidence).NextSequence()
	if err != nil {
		return nil, err
	}
	ev.Seq, ev.At = seq, now
	if ev.Nonce != "" && !ev.Forget.IsZero() {
		if err := putNonce(tx.Bucket(bucketNonces), ev.Nonce, ev.Forget, now); err != nil {
			return nil, err
		}
	}
	return encodeEvidence(ev)
}

// encodeEvidence is the evidence codec's encoder (json.Unmarshal reads
// back whatever it writes, Forget aside: FuzzTxnRoundTrip).
func encodeEvidence(ev *Evidence) ([]byte, error) { return json.Marshal(ev) }

// The nonce set is keyed big-endian forget time in epoch milliseconds +
// nonce, so the expired ones are always at the front: each insert deletes
// them, which bounds the set by what is inside the replay window.
func nonceKey(nonce string, forget time.Time) []byte {
	ms := max(forget.UnixMilli(), 0)
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(nonce)), uint64(ms)), nonce...)
}

func nonceExpired(k []byte, now time.Time) bool {
	return int64(binary.BigEndian.Uint64(k[:8])) <= now.UnixMilli()
}

func putNonce(b *bolt.Bucket, nonce string, forget, now time.Time) error {
	c := b.Cursor()
	for k, _ := c.First(); len(k) >= 8 && nonceExpired(k, now); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	if !forget.After(now) {
		return nil // already outside the window
	}
	return b.Put(nonceKey(nonce, forget), nil)
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
	err = j.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNonces).Cursor()
		for k, _ := c.First(); k != nil && (len(k) < 8 || nonceExpired(k, now)); k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func evidenceKey(txnID string, seq uint64) []byte {
	k := make([]byte, 0, len(txnID)+9)
	k = append(k, txnID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Get returns one transaction. A record that cannot be decoded (or was
// quarantined) is ErrCorrupt.
func (j *Journal) Get(id string) (Txn, error) {
	var t *Txn
	err := j.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = get(tx, id)
		return err
	})
	if err != nil {
		return Txn{}, err
	}
	return *t, nil
}

// ByKey returns the transaction created with idempotency key key
// (ErrNotFound if none).
func (j *Journal) ByKey(key string) (Txn, error) {
	var t *Txn
	err := j.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeys).Get([]byte(key))
		if id == nil {
			return fmt.Errorf("%w: idempotency key %q", ErrNotFound, key)
		}
		var err error
		t, err = get(tx, string(id))
		return err
	})
	if err != nil {
		return Txn{}, err
	}
	return *t, nil
}

// List returns up to n transactions, newest first (n <= 0: all). Records
// that cannot be decoded are skipped (Quarantined lists them).
func (j *Journal) List(n int) ([]Txn, error) {
	var out []Txn
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTxns).Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			if t, err := decodeTxn(k, v); err == nil {
				out = append(out, *t)
			}
		}
		return nil
	})
	return out, err
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

// Settle records an operator's note on a payment that was flagged for
// review. Only the note changes: state and vend stay as they were. A
// quarantined record is settled the same way (its note is kept beside it).
func (j *Journal) Settle(id, note string, now time.Time) (Txn, error) {
	note = now.UTC().Format(time.RFC3339) + " " + note
	t, err := j.Update(id, now, nil, func(t *Txn) error {
		switch {
		case t.Review == "":
			return fmt.Errorf("%w: %s is not flagged for review", ErrTransition, id)
		case !t.State.Final() || t.Vend == VendReleasing:
			return fmt.Errorf("%w: %s is still in progress", ErrTransition, id)
		case t.Settled != "":
			return fmt.Errorf("%w: %s was settled already: %s", ErrTransition, id, t.Settled)
		}
		t.Settled = note
		return nil
	})
	if errors.Is(err, ErrCorrupt) {
		if q, ok, qerr := j.settleQuarantined(id, note); ok {
			return q, qerr
		}
	}
	return t, err
}

// NextSequence returns the next running number for day (e.g.
// "2026-11-23"), starting at 1 each day and never repeating within a day,
// across restarts: KPOS wants sequenceNo unique per calendar day.
func (j *Journal) NextSequence(name, day string) (uint64, error) {
	var n uint64
	err := j.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		key := []byte("seq/" + name)
		v := meta.Get(key)
		if len(v) > 8 && string(v[8:]) == day {
			n = binary.BigEndian.Uint64(v[:8])
		}
		n++
		nv := binary.BigEndian.AppendUint64(nil, n)
		return meta.Put(key, append(nv, day...))
	})
	return n, err
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

// Recover settles what a crash or power cut interrupted. Every payment
// still in flight becomes unknown (the POS may or may not have charged the
// card); a vend caught releasing becomes vend_unknown and is never pulsed
// again; an approval that was never vended is left unvended. All of them
// are flagged for the operator and returned.
//
// A record that cannot be decoded never stops the start: it is moved byte
// for byte into the quarantine bucket (under its own key, with the time
// and the reason beside it) and returned as Quarantined.Txn() describes,
// so it is logged and listed for review like the others.
func (j *Journal) Recover(now time.Time) ([]Txn, error) {
	var out []Txn
	err := j.db.Update(func(tx *bolt.Tx) error {
		txns := tx.Bucket(bucketTxns)
		var fix []*Txn
		var bad []Quarantined
		err := txns.ForEach(func(k, v []byte) error {
			t, err := decodeRecord(k, v)
			if err != nil {
				// bbolt's k and v live only as long as the transaction and
				// must not be kept across the deletes below: copy them.
				bad = append(bad, Quarantined{Key: string(k), Raw: bytes.Clone(v), Error: err.Error(), At: now})
				return nil
			}
			if !t.State.Final() || t.Vend == VendReleasing || (t.State == Approved && t.Vend == VendNone && t.Review == "") {
				fix = append(fix, t)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, q := range bad {
			if err := quarantine(tx, &q); err != nil {
				return fmt.Errorf("journal: quarantine %s: %w", q.Key, err)
			}
			out = append(out, q.Txn())
		}
		for _, old := range fix {
			nu := *old
			switch {
			case !old.State.Final():
				nu.State = Unknown
				nu.flag("interrupted by a restart in state " + string(old.State))
			case old.Vend == VendReleasing:
				nu.Vend = VendUnknown
				nu.flag("vend interrupted by a restart: the product may not have been released; refund may be owed")
			default:
				nu.flag("approved but never vended before a restart; refund may be owed")
			}
			if err := checkMove(old, &nu); err != nil {
				return err
			}
			nu.UpdatedAt = now
			if err := put(txns, &nu); err != nil {
				return err
			}
			out = append(out, nu)
		}
		return nil
	})
	return out, err
}
