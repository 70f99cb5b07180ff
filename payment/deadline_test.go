package payment

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A link that drops every 2 s used to re-arm the 30 s reconnect grace and
// the ack timer on every drop: the payment stayed "sent" for as long as
// the flapping went on, blocking every other sale.
func TestFlappingLinkCannotExtendAPayment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, slowConfig())
		tx := h.pay("card", 100)
		synctest.Wait()
		commits0 := h.j.Commits()
		writes := 0
		began := time.Now()
		for i := 0; i < 36; i++ { // 72 s of flapping
			h.svc.Link(linkDown)
			time.Sleep(time.Second)
			h.svc.Link(linkUp)
			time.Sleep(time.Second)
			synctest.Wait()
			writes += h.published(tx.ID)
		}
		got, err := h.j.Get(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != Unknown || got.Error != "no ack from the terminal" || !strings.Contains(got.Review, "link lost") {
			t.Fatalf("after %s of flapping: %+v", time.Since(began), got)
		}
		if got.UpdatedAt.Sub(began) > 15*time.Second {
			t.Fatalf("timed out %s after the request, want the 15 s ack deadline", got.UpdatedAt.Sub(began))
		}
		// sent, dropped once, unknown; flaps change nothing more. Sent
		// rides in the commit of the drop (Service.soon).
		if writes != 3 {
			t.Fatalf("%d steps for one payment under flapping", writes)
		}
		if c := h.j.Commits() - commits0; c != 2 {
			t.Fatalf("%d journal commits for one payment under flapping, want 2", c)
		}
	})
}

// The reconnect grace is one budget per payment: two outages of 20 s use
// up a 30 s budget 10 s into the second one.
func TestReconnectGraceIsOneBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, slowConfig())
		tx := h.pay("card", 100)
		h.svc.Report(ack(tx.ID, "processing"))
		h.state(tx.ID, Acked)
		h.svc.Link(linkDown)
		time.Sleep(20 * time.Second)
		h.svc.Link(linkUp)
		time.Sleep(5 * time.Second)
		h.svc.Link(linkDown)
		synctest.Wait()
		down := time.Now()
		time.Sleep(time.Minute)
		synctest.Wait()
		got, _ := h.j.Get(tx.ID)
		if d := got.UpdatedAt.Sub(down); got.State != Unknown || d != 10*time.Second {
			t.Fatalf("unknown %s into the second outage, want 10s (%+v)", d, got)
		}
		if !strings.Contains(got.Review, "link lost") {
			t.Fatalf("review %q", got.Review)
		}
	})
}

// A POS that repeats "plan_received" must not push the result deadline
// back: it runs from the plan selection.
func TestRepeatedAckDoesNotExtendResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, slowConfig())
		tx := h.pay("ipp", 10000)
		h.svc.Report(ack(tx.ID, "processing"))
		h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: []Plan{{ID: "6m"}}})
		h.state(tx.ID, PlansOffered)
		if _, err := h.svc.SelectPlan(t.Context(), tx.ID, "6m"); err != nil {
			t.Fatal(err)
		}
		h.expectSent("plan")
		selected := time.Now()
		for range 20 {
			time.Sleep(10 * time.Second)
			h.svc.Report(ack(tx.ID, "plan_received"))
		}
		got := h.state(tx.ID, TimedOut)
		if d := got.UpdatedAt.Sub(selected); d != 2*time.Minute+30*time.Second {
			t.Fatalf("timed out %s after the selection, want result 2m + cancel grace 30s", d)
		}
	})
}

// No plan chosen: the payment is cancelled at the plan deadline, from the
// offer, and times out after the cancel grace.
func TestPlanTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := slowConfig()
		tm := cfg.Timeouts["ipp"]
		h := start(t, cfg)
		tx := h.pay("ipp", 10000)
		h.svc.Report(ack(tx.ID, "processing"))
		h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: []Plan{{ID: "6m"}}})
		h.state(tx.ID, PlansOffered)
		offered := time.Now()
		time.Sleep(tm.Plan - time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != PlansOffered {
			t.Fatalf("a nanosecond before the plan deadline: %+v", got)
		}
		time.Sleep(time.Nanosecond)
		if got := h.journaled(tx.ID); got.State != CancelRequested || got.Error != "no plan selected in time" {
			t.Fatalf("at the plan deadline: %+v", got)
		}
		h.expectSent("cancel")
		time.Sleep(cfg.CancelGrace)
		if got := h.journaled(tx.ID); got.State != TimedOut || got.UpdatedAt.Sub(offered) != tm.Plan+cfg.CancelGrace {
			t.Fatalf("after the cancel grace: %+v", got)
		}
	})
}

// A relay that never answers holds the loop for VendTimeout, not for
// ever: the vend is then failed and flagged, and the kiosk is free.
func TestVendTimeoutBoundsTheRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := slowConfig()
		cfg.VendTimeout = 7 * time.Second
		h := start(t, cfg)
		h.vend.hang = true // before the payment: the loop reads it under the vender's lock
		tx := h.pay("card", 100)
		h.svc.Report(success(tx.ID, 100))
		approved := time.Now()
		time.Sleep(cfg.VendTimeout - time.Nanosecond)
		if got := h.journaled(tx.ID); got.Vend != VendReleasing {
			t.Fatalf("a nanosecond before the vend timeout: %+v", got)
		}
		time.Sleep(time.Nanosecond)
		got := h.journaled(tx.ID)
		if got.Vend != VendFailed || !strings.Contains(got.Review, "vend failed: context deadline exceeded") ||
			got.UpdatedAt.Sub(approved) != cfg.VendTimeout {
			t.Fatalf("at the vend timeout: %+v", got)
		}
		if h.svc.Current() != nil {
			t.Fatal("the kiosk is still busy after the failed vend")
		}
	})
}
