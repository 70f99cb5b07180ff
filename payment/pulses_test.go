package payment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func pulseConfig() Config {
	cfg := fastConfig()
	cfg.PulseValue, cfg.MaxPulses = 100, 10 // RM 1.00 a pulse, up to RM 10.00
	return cfg
}

// In pulses mode an amount the machine cannot be credited exactly is
// refused before anything is journaled or sent.
func TestPulsesRefusedAtCreation(t *testing.T) {
	h := start(t, pulseConfig())
	for _, c := range []struct {
		amount Sen
		want   string
	}{
		{250, "amount 2.50 is not a whole number of pulses of RM 1.00"},
		{1, "amount 0.01 is not a whole number of pulses of RM 1.00"},
		{1100, "amount 11.00 is 11 pulses of RM 1.00, more than the 10 a payment may give (RM 10.00)"},
	} {
		_, err := h.svc.Create(context.Background(), CreateRequest{Mode: "card", Amount: c.amount})
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("amount %s: %v, want %q", c.amount, err, c.want)
		}
	}
	if l, _ := h.j.List(0); len(l) != 0 {
		t.Fatalf("refusals journaled %d payments", len(l))
	}
	h.pay("card", 1000) // ten pulses exactly is fine
}

// An approved RM 5.00 is 5 pulses, each journaled before the next: one
// commit per pulse, then released with all 5 on record.
func TestPulsesTrainJournaled(t *testing.T) {
	h := start(t, pulseConfig())
	tx := h.pay("card", 500)
	h.svc.Report(success(tx.ID, 500))
	var seen []int
	got := h.wait(tx.ID, func(t Txn) bool {
		if t.Vend == VendReleasing {
			seen = append(seen, t.PulsesDone)
			if t.PulsesTotal != 5 {
				h.t.Fatalf("releasing with a train of %d", t.PulsesTotal)
			}
		}
		return t.Vend == VendReleased
	})
	if fmt.Sprint(seen) != "[0 1 2 3 4 5]" {
		t.Fatalf("journaled progress %v, want releasing then one commit per pulse", seen)
	}
	if got.PulsesTotal != 5 || got.PulsesDone != 5 || got.Review != "" || h.vend.given(tx.ID) != 5 {
		t.Fatalf("released %+v after %d pulses", got, h.vend.given(tx.ID))
	}
	if s := got.Summary(); !strings.Contains(s, "vend=released pulses=5/5") {
		t.Fatalf("summary %q", s)
	}
}

// A relay error mid-train fails the vend with the confirmed count in the
// review, and the train goes no further.
func TestPulsesRelayErrorMidTrain(t *testing.T) {
	h := start(t, pulseConfig())
	h.vend.failAt = 2
	tx := h.pay("card", 500)
	h.svc.Report(success(tx.ID, 500))
	got := h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendFailed })
	if !strings.Contains(got.Review, "vend failed: relay: GPIO17: line busy; 2 of 5 pulses confirmed; refund may be owed") {
		t.Fatalf("review %q", got.Review)
	}
	if got.PulsesDone != 2 || h.vend.given(tx.ID) != 2 {
		t.Fatalf("%+v after %d pulses", got, h.vend.given(tx.ID))
	}
}

// A pulse whose count cannot be journaled is the last one: the vender
// is told to stop, so no pulse ever follows one that is not on record.
func TestPulsesStopWhenTheJournalFails(t *testing.T) {
	h := start(t, pulseConfig())
	tx := h.pay("card", 500)
	h.vend.crash = func(k int, phase string) bool {
		if k == 3 && phase == "ended" {
			h.j.db.Close() // the disk goes away after pulse 3
		}
		return false
	}
	h.svc.Report(success(tx.ID, 500))
	h.wait(tx.ID, func(t Txn) bool { return t.PulsesDone == 2 })
	h.svc.Ping(context.Background()) // the vend has returned once the loop answers
	if n := h.vend.given(tx.ID); n != 3 {
		t.Fatalf("%d pulses given with the journal gone after pulse 3, want 3", n)
	}
}

// Power cut at every pulse boundary of a train of 3: the journal as it
// was at that instant (a consistent copy taken there) is opened again and
// recovered. Nothing is pulsed again; the review says how many pulses are
// on record; the relay gave that many or one more.
func TestPulsesCrashAtEveryBoundary(t *testing.T) {
	const n = 3
	for k := 1; k <= n; k++ {
		for _, phase := range []string{"before", "on", "ended", "reported"} {
			t.Run(fmt.Sprintf("pulse%d_%s", k, phase), func(t *testing.T) {
				dir := t.TempDir()
				h, _, stop := startAt(t, pulseConfig(), filepath.Join(dir, "journal.db"))
				cut := filepath.Join(dir, "cut.db")
				h.vend.crash = func(pk int, ph string) bool {
					if pk != k || ph != phase {
						return false
					}
					// Runs on the service loop, between its commits: the
					// copy is the disk at the instant of the cut.
					if err := h.j.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(cut, 0o600) }); err != nil {
						t.Error(err)
					}
					return true
				}
				tx := h.pay("card", n*100)
				h.svc.Report(success(tx.ID, n*100))
				h.wait(tx.ID, func(t Txn) bool { return t.Vend != VendReleasing && t.Vend != VendNone })
				given := h.vend.given(tx.ID)
				stop()

				h2, recovered, _ := startAt(t, pulseConfig(), cut)
				got, err := h2.j.Get(tx.ID)
				if err != nil {
					t.Fatal(err)
				}
				if d := given - got.PulsesDone; d < 0 || d > 1 {
					t.Fatalf("relay gave %d pulses, journal says %d: more than one in doubt", given, got.PulsesDone)
				}
				if got.PulsesTotal != n {
					t.Fatalf("train of %d on record, want %d", got.PulsesTotal, n)
				}
				if got.PulsesDone == n {
					// Every pulse on record: only "released" was lost.
					if got.Vend != VendReleased || got.Review != "" || len(recovered) != 0 {
						t.Fatalf("all pulses on record, recovered as %+v (listed %d)", got, len(recovered))
					}
				} else {
					want := fmt.Sprintf("vend_unknown: %d of %d pulses confirmed", got.PulsesDone, n)
					if got.Vend != VendUnknown || !strings.HasPrefix(got.Review, want) ||
						!strings.Contains(got.Review, fmt.Sprintf("pulse %d may or may not have been given", got.PulsesDone+1)) {
						t.Fatalf("recovered %+v, want review %q", got, want)
					}
					if len(recovered) != 1 || recovered[0].ID != tx.ID {
						t.Fatalf("not listed for the operator: %+v", recovered)
					}
				}
				// Never pulsed again: the next payment vends only itself.
				tx2 := h2.pay("card", 100)
				h2.svc.Report(success(tx2.ID, 100))
				h2.wait(tx2.ID, func(t Txn) bool { return t.Vend == VendReleased })
				if h2.vend.given(tx.ID) != 0 || h2.vend.count() != 1 {
					t.Fatalf("after recovery the relay pulsed %d for %s, %d vends", h2.vend.given(tx.ID), tx.ID, h2.vend.count())
				}
				if again, _ := h2.j.Get(tx.ID); again.Vend != got.Vend || again.PulsesDone != got.PulsesDone {
					t.Fatalf("changed after recovery: %+v", again)
				}
			})
		}
	}
}

func TestCheckPulses(t *testing.T) {
	base := Txn{ID: "T", State: Approved, Vend: VendNone, Amount: 500}
	with := func(f func(*Txn)) *Txn { x := base; f(&x); return &x }
	releasing := with(func(x *Txn) { x.Vend, x.PulsesTotal = VendReleasing, 5 })
	for _, c := range []struct {
		name    string
		old, nu *Txn
		ok      bool
	}{
		{"train set with releasing", &base, releasing, true},
		{"train set without releasing", &base, with(func(x *Txn) { x.PulsesTotal = 5 }), false},
		{"train changed while releasing", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal = VendReleasing, 6 }), false},
		{"one more pulse", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 1 }), true},
		{"two at once", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 2 }), true},
		{"past the train", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 6 }), false},
		{"backwards",
			with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 3 }),
			with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 2 }), false},
		{"pulse with the move to failed", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendFailed, 5, 1 }), false},
		{"released short", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleased, 5, 4 }), false},
		{"released whole",
			with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleasing, 5, 5 }),
			with(func(x *Txn) { x.Vend, x.PulsesTotal, x.PulsesDone = VendReleased, 5, 5 }), true},
		{"failed short", releasing, with(func(x *Txn) { x.Vend, x.PulsesTotal = VendFailed, 5 }), true},
		{"one-pulse vend released", with(func(x *Txn) { x.Vend = VendReleasing }), with(func(x *Txn) { x.Vend = VendReleased }), true},
	} {
		err := checkMove(c.old, c.nu)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrTransition) {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// An approval whose amount no train fits (only a payment created before
// the pulse value changed could have one) is recorded, never vended.
func TestPulsesApprovalThatFitsNoTrain(t *testing.T) {
	h := start(t, fastConfig())
	tx := h.pay("card", 250)
	h.svc.do(context.Background(), func() { h.svc.cfg.PulseValue, h.svc.cfg.MaxPulses = 100, 10 })
	h.svc.Report(success(tx.ID, 250))
	got := h.wait(tx.ID, func(t Txn) bool { return t.State == Approved })
	if got.Vend != VendNone || got.PulsesTotal != 0 || !strings.Contains(got.Review, "amount 2.50 is not a train of pulses of RM 1.00") || h.vend.count() != 0 {
		t.Fatalf("%+v after %d vends", got, h.vend.count())
	}
}
