package fleet

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// fakeJournal is the journal as Source documents it: records 1, 2, 3, …
// and a cursor that survives the shipper (a "restart" is a new Shipper
// over the same fakeJournal).
type fakeJournal struct {
	mu      sync.Mutex
	recs    []payment.Record
	shipped uint64
	saves   int
	moved   chan struct{} // signalled (coalescing) on every SetShipped
	notify  func()        // the shipper's Notify, if set
	// reached is signalled when a Records call asks for records after
	// readAt or later: the shipper is that far, with more in flight.
	readAt  uint64
	reached chan struct{}
}

func newFakeJournal() *fakeJournal {
	return &fakeJournal{moved: make(chan struct{}, 1), reached: make(chan struct{}, 1)}
}

func (j *fakeJournal) Records(after uint64, max int) ([]payment.Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.readAt > 0 && after >= j.readAt {
		j.readAt = 0
		j.reached <- struct{}{}
	}
	if after >= uint64(len(j.recs)) {
		return nil, nil
	}
	out := j.recs[after:]
	if len(out) > max {
		out = out[:max]
	}
	return append([]payment.Record(nil), out...), nil
}

func (j *fakeJournal) Shipped() (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.shipped, nil
}

func (j *fakeJournal) SetShipped(seq uint64) error {
	j.mu.Lock()
	if seq > uint64(len(j.recs)) {
		j.mu.Unlock()
		return fmt.Errorf("cursor %d past the last record %d", seq, len(j.recs))
	}
	j.shipped = max(j.shipped, seq)
	j.saves++
	j.mu.Unlock()
	select {
	case j.moved <- struct{}{}:
	default:
	}
	return nil
}

// add appends n payment records and notifies the shipper, as the
// daemon does after a journal write.
func (j *fakeJournal) add(n int) {
	j.mu.Lock()
	for range n {
		seq := uint64(len(j.recs)) + 1
		j.recs = append(j.recs, payment.Record{
			Seq: seq, At: time.Date(2026, 12, 1, 10, 0, 0, int(seq), time.UTC), Kind: payment.RecordTxn,
			Txn: &payment.Txn{ID: fmt.Sprintf("txn-%06d", seq), Provider: "mobypay", Mode: "card", Amount: payment.Sen(100 + seq%50),
				State: "approved", Vend: "released", POSTransactionID: fmt.Sprint("pos-", seq)},
		})
	}
	notify := j.notify
	j.mu.Unlock()
	if notify != nil {
		notify()
	}
}

func (j *fakeJournal) cursor() uint64 {
	s, _ := j.Shipped()
	return s
}

// waitCursor waits for the cursor to reach seq, by SetShipped's signal.
func (j *fakeJournal) waitCursor(t testing.TB, seq uint64, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for j.cursor() < seq {
		select {
		case <-j.moved:
		case <-deadline:
			t.Fatalf("cursor at %d after %v, want %d", j.cursor(), d, seq)
		}
	}
}
