package payment

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

func TestCardApprovedVendsOnce(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 1250)
	h.svc.Report(ack(tx.ID, "processing"))
	h.state(tx.ID, Acked)
	h.svc.Report(success(tx.ID, 1250))
	got := h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendReleased })
	if got.State != Approved || got.POSTransactionID != "000410" || got.Review != "" || got.Evidence != 2 {
		t.Fatalf("approved txn %+v", got)
	}
	// A second, distinct success for the same payment is evidence only.
	h.svc.Report(success(tx.ID, 1250))
	h.wait(tx.ID, func(t Txn) bool { return t.Evidence == 3 })
	if h.vend.count() != 1 || h.print.n.Load() != 1 {
		t.Fatalf("pulses %d receipts %d", h.vend.count(), h.print.n.Load())
	}
	if h.svc.Current() != nil {
		t.Fatal("payment still current after release")
	}
}

func TestDeclinedAndMismatch(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 1000)
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportDeclined, Message: "USER_ABORT"})
	if got := h.state(tx.ID, Declined); got.Error != "USER_ABORT" {
		t.Fatalf("declined %+v", got)
	}
	tx = h.pay("card", 1000)
	h.svc.Report(success(tx.ID, 2000))
	got := h.state(tx.ID, Approved)
	if got.Vend != VendNone || !strings.Contains(got.Review, "amount mismatch: requested 10.00, result says 20.00") {
		t.Fatalf("mismatch %+v", got)
	}
	tx = h.pay("card", 1000)
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportApproved, AmountBad: true})
	if got := h.state(tx.ID, Approved); got.Vend != VendNone || got.Review == "" {
		t.Fatalf("bad amount %+v", got)
	}
	if h.vend.count() != 0 {
		t.Fatalf("vended %d times", h.vend.count())
	}
}

func TestIPPPlanSelection(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("ipp", 10000)
	h.svc.Report(ack(tx.ID, "processing"))
	plans := []Plan{{ID: "pay-in-full"}, {ID: "6m", TotalInstallments: 6}}
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: plans})
	h.state(tx.ID, PlansOffered)
	if _, err := h.svc.SelectPlan(context.Background(), tx.ID, "12m"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unoffered plan: %v", err)
	}
	got, err := h.svc.SelectPlan(context.Background(), tx.ID, "6m")
	if err != nil || got.State != PlanSelected || got.PlanID != "6m" {
		t.Fatalf("select: %v %+v", err, got)
	}
	if s := h.expectSent("plan"); s.plan != "6m" {
		t.Fatalf("sent plan %q", s.plan)
	}
	h.svc.Report(ack(tx.ID, "plan_received"))
	h.svc.Report(success(tx.ID, 10000))
	h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendReleased })
}

func TestIPPAutoSelectSingle(t *testing.T) {
	cfg := fastConfig()
	cfg.IPPAutoSelect = "single"
	h := start(t, cfg)
	tx := h.pay("ipp", 10000)
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: []Plan{{ID: "pay-in-full"}}})
	if s := h.expectSent("plan"); s.plan != "pay-in-full" {
		t.Fatalf("auto plan %q", s.plan)
	}
	h.state(tx.ID, PlanSelected)
}

// Cancel, on the bubble's clock: the cancel grace runs from the request
// to cancel, to the nanosecond, and a success inside it still wins.
func TestCancelPaths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := slowConfig()
		h := start(t, cfg)
		tx := h.pay("card", 500)
		got, err := h.svc.Cancel(context.Background(), tx.ID)
		asked := time.Now()
		if err != nil || got.State != CancelRequested {
			t.Fatalf("cancel: %v %+v", err, got)
		}
		h.expectSent("cancel")
		h.svc.Report(ack(tx.ID, "received"))
		time.Sleep(cfg.CancelGrace - time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != CancelRequested {
			t.Fatalf("a nanosecond before the grace ends: %+v", got)
		}
		time.Sleep(time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != Cancelled || got.UpdatedAt.Sub(asked) != cfg.CancelGrace {
			t.Fatalf("at the end of the grace: %+v", got)
		}
		if _, err := h.svc.Cancel(context.Background(), tx.ID); !errors.Is(err, ErrNotActive) {
			t.Fatalf("cancel of a cancelled payment: %v", err)
		}
		// A success after the grace is too late: recorded, flagged, not vended.
		h.svc.Report(success(tx.ID, 500))
		got = h.wait(tx.ID, func(t Txn) bool { return t.Review != "" })
		if got.State != Cancelled || got.Vend != VendNone || !strings.Contains(got.Review, "customer may have paid") {
			t.Fatalf("late success %+v", got)
		}
		// Within the grace, to its last nanosecond, the success wins
		// (policy vend).
		h2 := start(t, cfg)
		tx = h2.pay("card", 500)
		h2.svc.Cancel(context.Background(), tx.ID)
		h2.expectSent("cancel")
		time.Sleep(cfg.CancelGrace - time.Nanosecond)
		h2.svc.Report(success(tx.ID, 500))
		if got := h2.journaled(tx.ID); got.Vend != VendReleased {
			t.Fatalf("success inside the grace: %+v", got)
		}
		// Policy review: recorded, flagged, not vended.
		cfg.SuccessAfterCancel = "review"
		h3 := start(t, cfg)
		tx = h3.pay("card", 500)
		h3.svc.Cancel(context.Background(), tx.ID)
		h3.expectSent("cancel")
		h3.svc.Report(success(tx.ID, 500))
		if got := h3.state(tx.ID, Approved); got.Vend != VendNone || got.Review == "" {
			t.Fatalf("success after cancel, review policy: %+v", got)
		}
		if h3.vend.count() != 0 {
			t.Fatal("vended against policy")
		}
	})
}

// The ack and result timeouts, on the bubble's clock: each fires at its
// deadline and not a nanosecond before; the result timeout cancels and
// then waits the cancel grace.
func TestTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := slowConfig()
		tm := cfg.Timeouts["card"]
		h := start(t, cfg)
		tx := h.pay("card", 100)
		time.Sleep(tm.Ack - time.Nanosecond)
		// "sent" is held for the next commit (Service.soon), which the
		// timeout makes.
		if got := h.journaled(tx.ID); got.State != Created {
			t.Fatalf("a nanosecond before the ack timeout, journaled: %+v", got)
		}
		if got, err := h.svc.Get(tx.ID); err != nil || got.State != Sent {
			t.Fatalf("a nanosecond before the ack timeout: %+v %v", got, err)
		}
		time.Sleep(time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != TimedOut || got.Error != "no ack from the terminal" {
			t.Fatalf("ack timeout %+v", got)
		}
		h.expectSent("cancel")

		tx = h.pay("card", 100)
		h.svc.Report(ack(tx.ID, "processing"))
		acked := time.Now()
		time.Sleep(tm.Result - time.Nanosecond)
		if got, err := h.svc.Get(tx.ID); err != nil || got.State != Acked {
			t.Fatalf("a nanosecond before the result timeout: %+v %v", got, err)
		}
		time.Sleep(time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != CancelRequested {
			t.Fatalf("at the result timeout: %+v", got)
		}
		h.expectSent("cancel")
		time.Sleep(cfg.CancelGrace)
		got := h.journaled(tx.ID)
		if got.State != TimedOut || got.Error != "no result from the terminal" || got.UpdatedAt.Sub(acked) != tm.Result+cfg.CancelGrace {
			t.Fatalf("result timeout %+v", got)
		}
		// The late success is kept and flagged, not vended.
		h.svc.Report(success(tx.ID, 100))
		h.wait(tx.ID, func(t Txn) bool { return t.Review != "" })
		if h.vend.count() != 0 {
			t.Fatal("vended after timeout")
		}
	})
}

// A drop mid-payment, on the bubble's clock: the payment becomes unknown
// when the reconnect grace runs out, and a result after a reconnect within
// it settles the payment.
func TestDropMidPayment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := slowConfig()
		h := start(t, cfg)
		tx := h.pay("card", 100)
		h.svc.Report(ack(tx.ID, "processing"))
		h.state(tx.ID, Acked)
		h.svc.Link(linkDown)
		time.Sleep(cfg.ReconnectGrace - time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != Acked || !got.Dropped {
			t.Fatalf("a nanosecond before the reconnect grace ends: %+v", got)
		}
		time.Sleep(time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != Unknown || !strings.Contains(got.Review, "link lost") {
			t.Fatalf("drop %+v", got)
		}

		h2 := start(t, cfg)
		tx = h2.pay("card", 100)
		h2.svc.Report(ack(tx.ID, "processing"))
		h2.svc.Link(linkDown)
		h2.wait(tx.ID, func(t Txn) bool { return t.Dropped })
		time.Sleep(cfg.ReconnectGrace - time.Nanosecond)
		h2.svc.Link(linkUp)
		h2.svc.Report(success(tx.ID, 100))
		if got := h2.journaled(tx.ID); got.Vend != VendReleased {
			t.Fatalf("result after a reconnect inside the grace: %+v", got)
		}
	})
}

func TestTerminalErrors(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 100)
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportError, Message: "busy"})
	if got := h.state(tx.ID, Declined); got.Error != "terminal error: busy" {
		t.Fatalf("error before ack %+v", got)
	}
	tx = h.pay("card", 100)
	h.svc.Report(ack(tx.ID, "processing"))
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportError, Message: "link reset"})
	if got := h.state(tx.ID, Unknown); got.Review == "" {
		t.Fatalf("error after ack %+v", got)
	}
}

func TestRefusals(t *testing.T) {
	h := start(t, fastConfig())
	ctx := context.Background()
	for _, req := range []CreateRequest{{Mode: "cash", Amount: 1}, {Mode: "card"}, {Mode: "card", Amount: -5}, {Mode: "card", Amount: 1, Provider: "visa"}} {
		if _, err := h.svc.Create(ctx, req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
	h.prov.ready.Store(false)
	if _, err := h.svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("not ready: %v", err)
	}
	if l, _ := h.j.List(0); len(l) != 0 {
		t.Fatalf("a refused payment was journaled: %+v", l)
	}
	h.prov.ready.Store(true)
	tx := h.pay("card", 100)
	if _, err := h.svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second payment: %v", err)
	}
	// Not delivered at all: declined at once, never sent.
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportDeclined})
	h.state(tx.ID, Declined)
	h.prov.fail = ErrNotDelivered
	got, err := h.svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1})
	<-h.prov.sent
	if err != nil || got.State != Declined {
		t.Fatalf("undelivered: %v %+v", err, got)
	}
}

func TestUnknownAndLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, fastConfig())
		h.svc.Report(success("TXN42", 100))
		// Report does not wait for the loop (Record, which does, is another
		// path), and reports race commands in its select, so no round trip
		// proves the report landed. Once synctest.Wait returns the loop is
		// idle: it has been handled.
		synctest.Wait()
		if evs, _ := h.j.EvidenceFor("TXN42"); len(evs) != 1 || !strings.Contains(evs[0].Disposal, "unknown transaction") {
			t.Fatalf("unknown-txn evidence: %+v", evs)
		}
		tx := h.pay("card", 100)
		r := success(tx.ID, 100)
		r.Late = "timestamp outside window"
		h.svc.Report(r)
		got := h.wait(tx.ID, func(t Txn) bool { return t.Review != "" })
		if got.State != Sent || got.Vend != VendNone || !strings.Contains(got.Review, "not acted on (timestamp outside window)") {
			t.Fatalf("late success for the current payment %+v", got)
		}
	})
}

func TestVendFailure(t *testing.T) {
	h := start(t, fastConfig())
	h.vend.err = errors.New("relay: no response")
	tx := h.pay("card", 100)
	h.svc.Report(success(tx.ID, 100))
	got := h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendFailed })
	if !strings.Contains(got.Review, "vend failed: relay: no response") {
		t.Fatalf("vend failure %+v", got)
	}
}

func TestRecordIsIdempotent(t *testing.T) {
	h := start(t, fastConfig())
	ctx := context.Background()
	tx := h.pay("card", 100)
	r := success(tx.ID, 100)
	r.Repeatable = true
	r.Evidence.Payload = `{"mrn":"` + tx.ID + `","resultCode":"00000"}`
	got, err := h.svc.Record(ctx, r)
	if err != nil || !got.Known || got.Duplicate {
		t.Fatalf("first: %+v %v", got, err)
	}
	h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendReleased })
	again, err := h.svc.Record(ctx, r)
	if err != nil || !again.Duplicate || again.Txn.Evidence != 1 || again.Txn.State != Approved {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if h.vend.count() != 1 {
		t.Fatalf("%d pulses", h.vend.count())
	}
	unknown, err := h.svc.Record(ctx, success("TXN9", 100))
	if err != nil || unknown.Known {
		t.Fatalf("unknown: %+v %v", unknown, err)
	}
}

// A payment flagged while in progress (a stale success arrived first) used
// to lose the fresh success that followed: approving it with a vend was
// refused by the journal, so neither the state nor the evidence was kept.
func TestSuccessAfterFlagIsRecorded(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 100)
	stale := success(tx.ID, 100)
	stale.Late = "timestamp outside window"
	h.svc.Report(stale)
	h.wait(tx.ID, func(t Txn) bool { return t.Review != "" })
	h.svc.Report(success(tx.ID, 100))
	got := h.state(tx.ID, Approved)
	if got.Vend != VendNone || got.Evidence != 2 || !strings.Contains(got.Review, "already flagged") {
		t.Fatalf("success after a flag %+v", got)
	}
	if h.vend.count() != 0 || h.svc.Current() != nil {
		t.Fatalf("vended %d, current %v", h.vend.count(), h.svc.Current())
	}
}

// A signed outcome that is not usable as sent (here a decline without a
// nonce, which cannot be replay-checked) is kept and flagged, never
// applied: the payment stays open until its own outcome or deadline.
func TestOddDeclineIsFlaggedNotApplied(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 100)
	m := mobypay.Message{Type: "transaction_result", Status: "failed", TxnID: tx.ID, Odd: []string{"no nonce"}, Payload: `{"status":"failed"}`}
	h.svc.Report(report(&m, ""))
	got := h.wait(tx.ID, func(t Txn) bool { return t.Review != "" })
	if got.State != Sent || got.Evidence != 1 || !strings.Contains(got.Review, "not usable as sent: no nonce") {
		t.Fatalf("odd decline %+v", got)
	}
}

// A stale (or nonce-less) message passes no replay guard, so a replayer
// could grow the journal one fsync per copy: identical copies are dropped.
func TestLateCopiesJournaledOnce(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 100)
	m := mobypay.Message{Type: "transaction_result", Status: "success", TxnID: tx.ID, Nonce: "n1",
		Payload: `{"nonce":"n1","status":"success","txn_id":"` + tx.ID + `","type":"transaction_result"}`}
	stale := report(&m, "timestamp outside window")
	for range 50 { // Record, not Report: each copy is handled before the next
		if _, err := h.svc.Record(context.Background(), stale); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := h.j.EvidenceFor(tx.ID); len(got) != 1 {
		t.Fatalf("%d evidence records for 50 copies of one stale message", len(got))
	}
}

// A new connection that takes over the session carrying a payment (the
// POS app restarted) is a drop for the payment: the old session's answer
// may be lost, so an outcome that never comes is unknown, not timed out.
func TestSessionReplacedMidPaymentIsADrop(t *testing.T) {
	h := start(t, fastConfig())
	h.svc.Link(POSState{Provider: "mobypay", State: "connected", Peer: "10.0.0.5:4000"})
	tx := h.pay("card", 100)
	h.svc.Link(POSState{Provider: "mobypay", State: "connected", Peer: "10.0.0.5:4001"})
	if got := h.wait(tx.ID, func(t Txn) bool { return t.Dropped }); got.State != Sent {
		t.Fatalf("after the takeover %+v", got)
	}
}

// Peers still sending after the loop stopped must not hang the shutdown.
func TestReportAfterStopDoesNotBlock(t *testing.T) {
	j, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	svc := NewService(fastConfig(), j, nil, nil, &fakeProvider{sent: make(chan sent, 1)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	svc.Run(ctx)
	done := make(chan struct{})
	go func() {
		for range 200 { // past both channel buffers
			svc.Report(ack("TXN1", "processing"))
			svc.Link(POSState{Provider: "mobypay", State: "disconnected"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Report/Link blocked after the service stopped")
	}
}

// A plan choice the journal cannot record is refused with the journal's
// own error, not a stand-in: the controller's log should say why.
func TestSelectPlanReturnsTheJournalError(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("ipp", 10000)
	h.svc.Report(ack(tx.ID, "processing"))
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: []Plan{{ID: "pay-in-full"}, {ID: "6m", TotalInstallments: 6}}})
	h.state(tx.ID, PlansOffered)
	h.j.Close()
	_, err := h.svc.SelectPlan(context.Background(), tx.ID, "6m")
	if !errors.Is(err, berrors.ErrDatabaseNotOpen) || !strings.Contains(err.Error(), `select plan "6m" for `+tx.ID) {
		t.Fatalf("select with the journal closed: %v", err)
	}
}
