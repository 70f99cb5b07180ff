package payment

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeAsync is a machine that dispenses on its own time (an MDB VMC):
// it records each vend it is told to start and answers later, when the
// test calls VendDone.
type fakeAsync struct {
	mu      sync.Mutex
	started []string
	err     error
}

func (a *fakeAsync) StartVend(t Txn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = append(a.started, t.ID)
	return a.err
}

func (a *fakeAsync) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.started)
}

// payAsync creates a card payment vended by av and approves it: on
// return the journal says approved, vend releasing.
func (h *harness) payAsync(av AsyncVender, amount Sen) Txn {
	h.t.Helper()
	tx, err := h.svc.Create(context.Background(), CreateRequest{Mode: "card", Amount: amount, Vender: av})
	if err != nil {
		h.t.Fatal(err)
	}
	h.expectSent("request")
	h.svc.Report(ack(tx.ID, "processing"))
	h.svc.Report(success(tx.ID, amount))
	out := h.wait(tx.ID, func(t Txn) bool { return t.State == Approved })
	// The event is published as approved+releasing is journaled, before
	// the vend starts on the same pass of the loop: a ping waits that out.
	if err := h.svc.Ping(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestAsyncVendReleased(t *testing.T) {
	h := start(t, fastConfig())
	av := &fakeAsync{}
	tx := h.payAsync(av, 250)
	if tx.Vend != VendReleasing || av.count() != 1 || h.vend.count() != 0 {
		t.Fatalf("after approval: vend %s, async starts %d, relay vends %d", tx.Vend, av.count(), h.vend.count())
	}
	// The machine is dispensing: the loop answers, the kiosk is busy.
	if err := h.svc.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Create(context.Background(), CreateRequest{Mode: "card", Amount: 100}); !errors.Is(err, ErrBusy) {
		t.Fatalf("create while vending: %v, want ErrBusy", err)
	}
	got, err := h.svc.VendDone(context.Background(), tx.ID, VendOutcome{Vend: VendReleased, Source: "mdb"})
	if err != nil || got.Vend != VendReleased || got.Review != "" {
		t.Fatalf("released: %+v, %v", got, err)
	}
	if h.print.n.Load() != 1 {
		t.Fatalf("%d receipts, want 1", h.print.n.Load())
	}
	ev, _ := h.j.EvidenceFor(tx.ID)
	if last := ev[len(ev)-1]; last.Source != "mdb" || last.Type != "vend_outcome" || last.Disposal != "applied" {
		t.Fatalf("outcome evidence %+v", last)
	}
	// Free for the next payment, which goes to the relay.
	next := h.pay("card", 100)
	h.svc.Report(ack(next.ID, "processing"))
	h.svc.Report(success(next.ID, 100))
	h.wait(next.ID, func(t Txn) bool { return t.Vend == VendReleased })
	if h.vend.count() != 1 || av.count() != 1 {
		t.Fatalf("relay vends %d, async starts %d", h.vend.count(), av.count())
	}
}

func TestAsyncVendFailedAndUnknown(t *testing.T) {
	for _, tc := range []struct {
		o      VendOutcome
		review string
	}{
		{VendOutcome{Vend: VendFailed, Reason: "VMC reported vend failure: refund owed"}, "VMC reported vend failure: refund owed"},
		{VendOutcome{Vend: VendFailed, Reason: "jammed"}, "jammed; refund owed"},
		{VendOutcome{Vend: VendUnknown, Reason: "VMC reset mid-vend"}, "vend_unknown: VMC reset mid-vend; refund may be owed"},
	} {
		h := start(t, fastConfig())
		tx := h.payAsync(&fakeAsync{}, 250)
		got, err := h.svc.VendDone(context.Background(), tx.ID, tc.o)
		if err != nil || got.Vend != tc.o.Vend || got.Review != tc.review {
			t.Errorf("%+v: %s review %q, %v; want review %q", tc.o, got.Vend, got.Review, err, tc.review)
		}
		if h.svc.Current() != nil {
			t.Errorf("%+v: still busy", tc.o)
		}
		// A second outcome is evidence only.
		again, err := h.svc.VendDone(context.Background(), tx.ID, VendOutcome{Vend: VendReleased})
		if !errors.Is(err, ErrNotActive) || again.Vend != tc.o.Vend {
			t.Errorf("%+v: second outcome: %s, %v", tc.o, again.Vend, err)
		}
	}
}

// A machine that could not be told to vend has released nothing.
func TestAsyncVendNotStarted(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.payAsync(&fakeAsync{err: errors.New("mdb: the vend timed out before the answer")}, 250)
	got := h.wait(tx.ID, func(t Txn) bool { return t.Vend != VendReleasing })
	if got.Vend != VendFailed || !strings.Contains(got.Review, "vend not started: mdb: the vend timed out") || !strings.Contains(got.Review, "refund owed") {
		t.Fatalf("%s review %q", got.Vend, got.Review)
	}
	if h.svc.Current() != nil {
		t.Fatal("still busy")
	}
}

// The POS repeating its success while the machine dispenses must not
// start a second vend.
func TestAsyncVendRepeatedSuccessIsEvidence(t *testing.T) {
	h := start(t, fastConfig())
	av := &fakeAsync{}
	tx := h.payAsync(av, 250)
	if _, err := h.svc.Record(context.Background(), success(tx.ID, 250)); err != nil {
		t.Fatal(err)
	}
	if av.count() != 1 {
		t.Fatalf("%d vends started for one payment", av.count())
	}
	if got, _ := h.j.Get(tx.ID); got.Vend != VendReleasing || got.Review != "" {
		t.Fatalf("%+v", got)
	}
}

// The vend's deadline is absolute: no outcome by then is vend_unknown,
// flagged, never retried, and the kiosk is free again.
func TestAsyncVendDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.AsyncVendTimeout = 40 * time.Second
		h := start(t, cfg)
		av := &fakeAsync{}
		tx := h.payAsync(av, 250)
		began := time.Now()
		// Past every payment deadline (the hard one included) but the vend's.
		time.Sleep(40*time.Second - time.Nanosecond)
		if got := h.journaled(tx.ID); got.Vend != VendReleasing {
			t.Fatalf("before the deadline: %+v", got)
		}
		time.Sleep(time.Nanosecond)
		got := h.journaled(tx.ID)
		if got.Vend != VendUnknown || !strings.Contains(got.Review, "vend_unknown: no outcome from the machine within the vend deadline") {
			t.Fatalf("at the deadline: %+v", got)
		}
		if got.UpdatedAt.Sub(began) != 40*time.Second {
			t.Fatalf("settled %s after approval", got.UpdatedAt.Sub(began))
		}
		if h.svc.Current() != nil || av.count() != 1 {
			t.Fatalf("busy %v, starts %d", h.svc.Current() != nil, av.count())
		}
		late, err := h.svc.VendDone(context.Background(), tx.ID, VendOutcome{Vend: VendReleased, Source: "mdb"})
		if !errors.Is(err, ErrNotActive) || late.Vend != VendUnknown {
			t.Fatalf("late outcome: %s, %v", late.Vend, err)
		}
		ev, _ := h.j.EvidenceFor(tx.ID)
		if last := ev[len(ev)-1]; last.Type != "vend_outcome" || last.Disposal != "not acted on: vend vend_unknown" {
			t.Fatalf("late outcome evidence %+v", last)
		}
	})
}

// A crash between the approval (releasing on disk) and the machine's
// outcome: recovery journals vend_unknown, nothing is vended again, and
// the machine's report after the restart is evidence only.
func TestAsyncVendCrashBeforeOutcome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	h, _, stop := startAt(t, fastConfig(), path)
	av := &fakeAsync{}
	tx := h.payAsync(av, 250)
	stop() // the power goes while the machine dispenses

	h2, recovered, _ := startAt(t, fastConfig(), path)
	if len(recovered) != 1 || recovered[0].ID != tx.ID || recovered[0].Vend != VendUnknown ||
		!strings.Contains(recovered[0].Review, "refund may be owed") {
		t.Fatalf("recovered %+v", recovered)
	}
	got, err := h2.svc.VendDone(context.Background(), tx.ID, VendOutcome{Vend: VendReleased, Source: "mdb"})
	if !errors.Is(err, ErrNotActive) || got.Vend != VendUnknown {
		t.Fatalf("outcome after restart: %s, %v", got.Vend, err)
	}
	after, _ := h2.j.Get(tx.ID)
	if after.Vend != VendUnknown || after.State != Approved || av.count() != 1 || h2.vend.count() != 0 {
		t.Fatalf("after restart: %+v, async starts %d, relay vends %d", after, av.count(), h2.vend.count())
	}
	ev, _ := h2.j.EvidenceFor(tx.ID)
	if last := ev[len(ev)-1]; last.Source != "mdb" || !strings.HasPrefix(last.Disposal, "not acted on") {
		t.Fatalf("evidence %+v", last)
	}
	// The kiosk takes the next sale.
	h2.pay("card", 100)
}

func TestVendDoneRefusesUnknownPaymentsAndOutcomes(t *testing.T) {
	h := start(t, fastConfig())
	if _, err := h.svc.VendDone(context.Background(), "T-nope", VendOutcome{Vend: VendReleased}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown payment: %v", err)
	}
	if _, err := h.svc.VendDone(context.Background(), "T-nope", VendOutcome{Vend: VendReleasing}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad outcome: %v", err)
	}
}

// A kiosk that credits coin-ops by pulses and sells a vending machine
// over MDB: the train is the relay's, so a payment the machine vends
// itself is neither refused for an amount that is no whole number of
// pulses nor given a train, and its release is the machine's word.
func TestAsyncVendBesidePulses(t *testing.T) {
	cfg := fastConfig()
	cfg.PulseValue, cfg.MaxPulses = 100, 10
	h := start(t, cfg)
	if _, err := h.svc.Create(context.Background(), CreateRequest{Mode: "card", Amount: 150}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a relay payment of RM 1.50 with RM 1.00 pulses: %v, want refused", err)
	}
	av := &fakeAsync{}
	tx := h.payAsync(av, 150)
	if tx.Vend != VendReleasing || tx.PulsesTotal != 0 || av.count() != 1 || h.vend.count() != 0 {
		t.Fatalf("after approval: %s, pulses %d, async starts %d, relay vends %d", tx.Summary(), tx.PulsesTotal, av.count(), h.vend.count())
	}
	got, err := h.svc.VendDone(context.Background(), tx.ID, VendOutcome{Vend: VendReleased, Source: "mdb"})
	if err != nil || got.Vend != VendReleased || got.Review != "" {
		t.Fatalf("released: %s, %v", got.Summary(), err)
	}
}
