package payment

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

	// scratch holds the keys and values of the write transaction in
	// progress (see arena); used only inside write transactions.
	scratch arena

	// noncePuts counts the nonce inserts since the last sweep of the
	// expired (putNonce); used only inside write transactions.
	noncePuts int

	unreadable atomic.Uint64 // see UnreadableRecords
	onWrite    atomic.Pointer[func()]
	commits    atomic.Uint64 // see Commits
}

// Commits is how many write transactions the journal has committed (or
// tried to) since it was opened: each is two fdatasyncs, data then meta.
func (j *Journal) Commits() uint64 { return j.commits.Load() }

// write is db.Update, counted.
func (j *Journal) write(fn func(*bolt.Tx) error) error {
	j.commits.Add(1)
	return j.db.Update(fn)
}

// OnWrite sets f to be called after each committed write that appends
// to the outbox (see Record), so that the fleet shipper wakes at once
// instead of polling. f runs on the writer's goroutine, which is the
// payment path: it must return at once (the shipper's Notify does).
func (j *Journal) OnWrite(f func()) { j.onWrite.Store(&f) }

// update is db.Update for the writes that append a record, telling
// OnWrite's function once the write is durable.
func (j *Journal) update(fn func(*bolt.Tx) error) error {
	err := j.write(fn)
	if f := j.onWrite.Load(); err == nil && f != nil && *f != nil {
		(*f)()
	}
	return err
}

// OpenJournal opens or creates the journal. A second kioskd on the same
// file fails within a second instead of waiting on the lock.
func OpenJournal(path string) (*Journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTxns, bucketEvidence, bucketMeta, bucketKeys, bucketNonces, bucketUnknown, bucketQuar, bucketQuarInfo, bucketRecords} {
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

// Create journals a new transaction and assigns its ID: "TXN" + epoch
// milliseconds, made unique by never reusing or going below the last one
// issued (two payments in one millisecond, or a clock stepped back).
// A transaction with a Key is indexed by it in the same bbolt
// transaction; a key that is already used returns ErrDuplicateKey and
// journals nothing.
func (j *Journal) Create(t *Txn, now time.Time) error {
	return j.update(func(tx *bolt.Tx) error {
		a := &j.scratch
		keys := tx.Bucket(bucketKeys)
		var key []byte
		if t.Key != "" {
			key = a.bytes(tx, t.Key)
			if id := keys.Get(key); id != nil {
				return fmt.Errorf("%w: %q is %s", ErrDuplicateKey, t.Key, id)
			}
		}
		// The sweep of the expired nonces rides here, in the commit made
		// before the request leaves, rather than in the approval's.
		if err := j.sweepNonces(tx, now); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		ms := now.UnixMilli()
		if last := meta.Get(keyLastMillis); len(last) == 8 {
			if l := int64(binary.BigEndian.Uint64(last)); ms <= l {
				ms = l + 1
			}
		}
		txns, quar := appendBucket(tx, bucketTxns), tx.Bucket(bucketQuar)
		id := a.take(strconv.AppendInt(append(a.tail(tx), "TXN"...), ms, 10))
		for txns.Get(id) != nil || quar.Get(id) != nil {
			ms++
			id = a.take(strconv.AppendInt(append(a.tail(tx), "TXN"...), ms, 10))
		}
		if err := meta.Put(keyLastMillis, a.take(binary.BigEndian.AppendUint64(a.tail(tx), uint64(ms)))); err != nil {
			return err
		}
		if t.Key != "" {
			if err := keys.Put(key, id); err != nil {
				return err
			}
		}
		t.ID = string(id)
		t.CreatedAt, t.UpdatedAt = now, now
		if t.State == "" {
			t.State = Created
		}
		if t.Vend == "" {
			t.Vend = VendNone
		}
		v, err := putIn(a, tx, txns, t)
		if err != nil {
			return err
		}
		return appendRecordIn(a, tx, now, RecordTxn, v, nil, "")
	})
}

// put stores t and returns its encoding, which the outbox record of the
// write reuses.
func put(b *bolt.Bucket, t *Txn) ([]byte, error) { return putIn(nil, nil, b, t) }

// putIn is put with key and value in a, for a write of tx.
func putIn(a *arena, tx *bolt.Tx, b *bolt.Bucket, t *Txn) ([]byte, error) {
	v, err := appendTxn(a.tail(tx), t)
	if err != nil {
		return nil, err
	}
	v = a.take(v)
	return v, b.Put(a.bytes(tx, t.ID), v)
}

// encodeTxn is the record codec's encoder (appendTxn, which writes what
// json.Marshal writes: FuzzTxnEncode); decodeTxn reads back whatever it
// writes (FuzzTxnRoundTrip).
func encodeTxn(t *Txn) ([]byte, error) { return appendTxn(nil, t) }

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
// not nil) is journaled with it. It returns the stored result. The
// outbox gets a RecordTxn, or a RecordEvidence when fn changed nothing
// and only the message was added.
func (j *Journal) Update(id string, now time.Time, ev *Evidence, fn func(t *Txn) error) (Txn, error) {
	return j.UpdateSteps(id, []Step{{At: now, Ev: ev, Fn: fn}})
}

// Step is one change for UpdateSteps: what Update takes.
type Step struct {
	At time.Time
	Ev *Evidence        // nil: none
	Fn func(*Txn) error // nil: no change but the evidence
	// apply, when Fn is nil, is a change that cannot fail: the service's
	// steps, which would otherwise each need a closure to wrap them.
	apply func(*Txn)
}

// UpdateSteps makes several changes to one transaction, in order, in one
// bbolt transaction and so with one commit: each step is checked against
// the one before it and gets its own outbox record, at its own time, as
// if it had been its own Update. The service uses it to carry the steps
// whose loss in a power cut changes no outcome (sent, acks) into the
// next commit that must be durable (Service.later).
func (j *Journal) UpdateSteps(id string, steps []Step) (Txn, error) {
	return j.updateSteps(id, nil, steps)
}

// updateSteps is UpdateSteps given view, the caller's copy of the stored
// record if it has one (nil if not): see stored.
func (j *Journal) updateSteps(id string, view *Txn, steps []Step) (Txn, error) {
	var out Txn
	err := j.update(func(tx *bolt.Tx) error {
		txns := appendBucket(tx, bucketTxns)
		// Each step edits a copy of the one before: two values, used in
		// turn, are one allocation however many steps there are.
		var pair [2]Txn
		if err := j.stored(tx, id, view, &pair[0]); err != nil {
			return err
		}
		old := &pair[0]
		var err error
		var v []byte
		for i, st := range steps {
			nu := &pair[(i+1)%2]
			*nu = *old
			nu.Plans = append([]Plan(nil), old.Plans...)
			switch {
			case st.Fn != nil:
				if err := st.Fn(nu); err != nil {
					return err
				}
			case st.apply != nil:
				st.apply(nu)
			}
			if err := checkMove(old, nu); err != nil {
				return err
			}
			kind := RecordTxn
			var evb []byte
			if st.Ev != nil {
				// Compared before the evidence count and the time move: the
				// message changed nothing else.
				if unchanged(old, nu) {
					kind = RecordEvidence
				}
				if evb, err = j.addEvidence(tx, st.Ev, st.At); err != nil {
					return err
				}
				nu.Evidence++
			}
			nu.UpdatedAt = st.At
			if v, err = appendTxn(j.scratch.tail(tx), nu); err != nil {
				return err
			}
			v = j.scratch.take(v)
			if err := appendRecordIn(&j.scratch, tx, st.At, kind, v, evb, ""); err != nil {
				return err
			}
			old = nu
		}
		if v == nil {
			return nil
		}
		out = *old
		return txns.Put(j.scratch.bytes(tx, id), v)
	})
	return out, err
}

// unchanged reports whether a and b are the same record: what
// reflect.DeepEqual said, at a fifteenth of its cost (0.1 against 1.7 µs
// a step, on the payment path), but for nil and empty plans (or raw
// text), which are the same. A field
// added to Txn without its line here fails TestUnchanged.
func unchanged(a, b *Txn) bool {
	return a.ID == b.ID && a.Provider == b.Provider && a.Mode == b.Mode && a.Amount == b.Amount &&
		a.State == b.State && a.Vend == b.Vend && a.PulsesTotal == b.PulsesTotal && a.PulsesDone == b.PulsesDone &&
		a.PlanID == b.PlanID && a.POSTransactionID == b.POSTransactionID && a.AuthCode == b.AuthCode &&
		a.CardLast4 == b.CardLast4 && a.PosID == b.PosID && a.PaidAmountText == b.PaidAmountText &&
		a.Key == b.Key && a.Quarantined == b.Quarantined && a.Error == b.Error && a.Review == b.Review &&
		a.Settled == b.Settled && a.Dropped == b.Dropped && a.Evidence == b.Evidence &&
		a.CreatedAt == b.CreatedAt && a.UpdatedAt == b.UpdatedAt &&
		(a.PaidAmount == nil) == (b.PaidAmount == nil) && (a.PaidAmount == nil || *a.PaidAmount == *b.PaidAmount) &&
		slices.EqualFunc(a.Plans, b.Plans, func(p, q Plan) bool {
			return p.ID == q.ID && p.Frequency == q.Frequency && p.TotalInstallments == q.TotalInstallments && bytes.Equal(p.Raw, q.Raw)
		})
}

// stored reads id's record in the write transaction tx into dst. view, if not
// nil, is the caller's copy of it (the service's, as of its last
// commit): when view encodes to the stored bytes exactly, decoding them
// would give view back (FuzzTxnRoundTrip), so view is taken and the
// decoder, the costliest reader on the payment path, is skipped. Any
// difference (another writer, a change the caller did not see) reads
// the record as get does. A view with plans or with invalid UTF-8 is
// not taken: the codec does not give those back exactly (raw text and
// invalid UTF-8 are rewritten), and they are never on the card path.
func (j *Journal) stored(tx *bolt.Tx, id string, view, dst *Txn) error {
	if view != nil && view.ID == id && len(view.Plans) == 0 && validUTF8(view) {
		a := &j.scratch
		v := tx.Bucket(bucketTxns).Get(a.bytes(tx, id))
		// Not taken from the arena: only compared, then overwritten.
		if enc, err := appendTxn(a.tail(tx), view); err == nil && v != nil && bytes.Equal(enc, v) {
			*dst = *view
			// As decoded: a wall clock without a monotonic reading.
			dst.CreatedAt, dst.UpdatedAt = dst.CreatedAt.Round(0), dst.UpdatedAt.Round(0)
			return nil
		}
	}
	t, err := get(tx, id)
	if err == nil {
		*dst = *t
	}
	return err
}

// validUTF8 reports whether every string of t is valid UTF-8, which the
// codec keeps as it is.
func validUTF8(t *Txn) bool {
	for _, s := range [...]string{t.ID, t.Provider, t.Mode, string(t.State), string(t.Vend), t.PlanID, t.POSTransactionID,
		t.AuthCode, t.CardLast4, t.PosID, t.PaidAmountText, t.Key, t.Error, t.Review, t.Settled} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
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
	t, found, err := j.byKey(key)
	if err == nil && !found {
		err = fmt.Errorf("%w: idempotency key %q", ErrNotFound, key)
	}
	return t, err
}

// byKey is ByKey with a key not found as found == false: every payment
// with a new key asks, and an error made to be dropped costs allocations.
func (j *Journal) byKey(key string) (t Txn, found bool, err error) {
	err = j.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeys).Get([]byte(key))
		if id == nil {
			return nil
		}
		p, err := get(tx, string(id))
		if err == nil {
			t, found = *p, true
		}
		return err
	})
	return t, found, err
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
		if q, ok, qerr := j.settleQuarantined(id, note, now); ok {
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
	err := j.write(func(tx *bolt.Tx) error {
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

// Recover settles what a crash or power cut interrupted. Every payment
// still in flight becomes unknown (the POS may or may not have charged the
// card); a vend caught releasing becomes vend_unknown and is never pulsed
// again (a coin-pulse train says how many of its pulses are on record:
// "vend_unknown: 3 of 5 pulses confirmed"); an approval that was never
// vended is left unvended. All of them are flagged for the operator and
// returned. A train whose every pulse was journaled lost only its
// "released": it is released, from that evidence, with nothing to review.
//
// A record that cannot be decoded never stops the start: it is moved byte
// for byte into the quarantine bucket (under its own key, with the time
// and the reason beside it) and returned as Quarantined.Txn() describes,
// so it is logged and listed for review like the others.
func (j *Journal) Recover(now time.Time) ([]Txn, error) {
	var out []Txn
	err := j.update(func(tx *bolt.Tx) error {
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
			if err := appendQuarantineRecord(tx, now, q.Key, "", q.Error); err != nil {
				return err
			}
			out = append(out, q.Txn())
		}
		for _, old := range fix {
			nu := *old
			switch {
			case !old.State.Final():
				nu.State = Unknown
				nu.flag("interrupted by a restart in state " + string(old.State))
			case old.Vend == VendReleasing && old.PulsesTotal > 0 && old.PulsesDone == old.PulsesTotal:
				// Every pulse ended and was journaled before the crash:
				// only "released" was lost, and the record proves it.
				nu.Vend = VendReleased
			case old.Vend == VendReleasing && old.PulsesTotal > 0:
				// Pulse k+1 may have started before the power went: the
				// customer got k or k+1 credits. Never pulsed again.
				nu.Vend = VendUnknown
				nu.flag(string(VendUnknown) + ": " + old.pulsesConfirmed())
				nu.flag(fmt.Sprintf("pulse %d may or may not have been given; refund may be owed", old.PulsesDone+1))
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
			v, err := putIn(&j.scratch, tx, txns, &nu)
			if err != nil {
				return err
			}
			if err := appendRecordIn(&j.scratch, tx, now, RecordTxn, v, nil, ""); err != nil {
				return err
			}
			if nu.Review != "" {
				out = append(out, nu)
			}
		}
		return nil
	})
	return out, err
}
