package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The async half of the simulation: on a seed in async mode
// (simConfig.Async) every payment is created with an AsyncVender, the
// simulated vending machine below, as kioskd's [mdb] mode does. The
// machine is told to vend on the loop (StartVend) and reports later, when
// the schedule says so ("vended" steps, VendDone), or never; the vend's
// own deadline, crashes and power cuts while it dispenses, a refused start
// and reports that come too late are all in the schedule.
//
// After every step (checkAsync, and StartVend itself): the machine is told
// at most once per payment, across restarts, and only with a clean
// approval journaled as releasing; a payment still releasing is one the
// machine is dispensing in this process's life, before its vend deadline;
// after a restart it is vend_unknown; a vend_unknown that no report and no
// restart explain was journaled at or after the deadline; released and
// failed are what the machine reported (or its refusal); and a report the
// kiosk does not act on changes nothing but the evidence.

// simMachine is what the vending machine knows of one vend it was told
// to start. It survives a restart of kioskd: the machine is not restarted.
type simMachine struct {
	deadline time.Time // the start plus Config.AsyncVendTimeout
	life     int       // simWorld.restarts when it was started
	refused  bool      // StartVend returned an error: nothing was dispensed
	applied  Vend      // the outcome the kiosk took from it ("" until one)
}

// simAsync is the vending machine (an MDB VMC behind machine/mdb.go).
type simAsync struct{ w *simWorld }

func (a simAsync) StartVend(t Txn) error {
	w := a.w
	if w.dead {
		return errors.New("power cut")
	}
	w.starts[t.ID]++
	w.note += "; vend started " + t.ID
	if w.starts[t.ID] > 1 {
		w.fail("vend started once", "StartVend for %s called %d times", t.ID, w.starts[t.ID])
	}
	// The same rule as for the relay: releasing, clean, on disk first.
	w.checkVend(t)
	m := &simMachine{deadline: time.Now().Add(w.cfg.Async), life: w.restarts}
	w.machines[t.ID] = m
	fault := w.vendFault
	w.vendFault = ""
	switch fault {
	case "start_refused":
		m.refused = true
		return errors.New("mdb: the VMC denied the vend")
	case "crash_before_start":
		m.refused = true
		w.powerCut()
		return errors.New("power cut")
	case "crash_in_start":
		// The machine dispenses; the kiosk is gone before it knows.
		w.powerCut()
		return nil
	}
	return nil
}

// handed says whether id's product was handed to a vend device that may
// have released it: the relay pulsed, or the machine took the vend.
func (w *simWorld) handed(id string) bool {
	m := w.machines[id]
	return w.pulses[id] > 0 || m != nil && !m.refused
}

// simOutcomePayload is the evidence payload VendDone journals for o.
func simOutcomePayload(o VendOutcome) string {
	b, _ := json.Marshal(struct {
		Vend   Vend   `json:"vend"`
		Reason string `json:"reason,omitempty"`
	}{o.Vend, o.Reason})
	return string(b)
}

// vended is the machine reporting st.Msg for payment st.Txn. Only a vend
// it is dispensing in this life of kioskd, before the deadline (the loop
// has run every timer due by now), is settled by it; anything else is
// evidence and ErrNotActive, or ErrNotFound for an id never issued.
func (w *simWorld) vended(st simStep) {
	id, tx := w.resolve(st.Txn)
	o := VendOutcome{Vend: simVendOutcomes[st.Msg], Reason: "VMC reports " + st.Msg, Source: "mdb"}
	pre, gerr := w.j.Get(id)
	if cur := w.svc.Current(); gerr == nil && cur != nil && cur.ID == id {
		// The service's view: steps it holds for its next commit (soon)
		// are journaled with the report.
		pre = *cur
	}
	m := w.machines[id]
	active := gerr == nil && pre.Vend == VendReleasing && m != nil && !m.refused && m.life == w.restarts
	fate := "applied"
	switch {
	case gerr != nil:
		fate = "unknown payment"
	case active:
	case m == nil || m.refused:
		fate = "not being vended"
	case m.life != w.restarts:
		fate = "late: after a restart"
	case m.applied != "":
		fate = "late: after an outcome"
	default:
		fate = "late: after the deadline"
	}
	w.reports[fate]++
	if tx != nil {
		tx.evidence = append(tx.evidence, simOutcomePayload(o))
	}
	got, err := w.svc.VendDone(context.Background(), id, o)
	w.note = fmt.Sprintf("machine reports %s for %s (%s): vend=%s %v", st.Msg, id, fate, got.Vend, err) + w.note
	if w.dead {
		return
	}
	switch {
	case active:
		if err != nil || got.Vend != o.Vend {
			w.fail("vend outcome applied", "%s %s while it is vended: vend=%s %v", st.Msg, id, got.Vend, err)
		}
		m.applied = o.Vend
	case gerr != nil:
		if !errors.Is(err, ErrNotFound) {
			w.fail("vend outcome", "%s for unknown %s: %v", st.Msg, id, err)
		}
	default:
		post, perr := w.j.Get(id)
		a, b := pre, post
		a.Evidence, a.UpdatedAt, b.Evidence, b.UpdatedAt = 0, time.Time{}, 0, time.Time{}
		switch {
		case !errors.Is(err, ErrNotActive):
			w.fail("late outcome is evidence only", "%s for %s (%s): %v, want ErrNotActive", st.Msg, id, fate, err)
		case perr != nil || post.Evidence != pre.Evidence+1 || !sameTxn(a, b):
			w.fail("late outcome is evidence only", "%s for %s (%s) changed %s vend=%s evidence=%d review=%q into %s vend=%s evidence=%d review=%q (%v)",
				st.Msg, id, fate, pre.State, pre.Vend, pre.Evidence, pre.Review, post.State, post.Vend, post.Evidence, post.Review, perr)
		}
	}
}

// checkAsync holds an async-mode payment's vend on record to what the
// machine saw.
func (w *simWorld) checkAsync(rec Txn, now time.Time) {
	n, m := w.starts[rec.ID], w.machines[rec.ID]
	bad := func(format string, args ...any) {
		w.fail("async vend on record", "%s vend=%s, StartVend called %d times: "+format, append([]any{rec.ID, rec.Vend, n}, args...)...)
	}
	if m != nil && m.applied != "" && rec.Vend != m.applied {
		bad("the kiosk took the outcome %s", m.applied)
		return
	}
	switch rec.Vend {
	case VendNone:
		if n > 0 {
			bad("the machine was told to vend it")
		}
	case VendReleasing:
		switch {
		case m == nil || m.refused:
			bad("the machine is not dispensing it")
		case m.life != w.restarts:
			w.fail("recovery settles a vend", "%s is still releasing after %d restarts since its vend started", rec.ID, w.restarts-m.life)
		case !now.Before(m.deadline):
			w.fail("absolute vend deadline", "%s is still releasing %s after its vend deadline", rec.ID, now.Sub(m.deadline))
		}
	case VendReleased:
		if m == nil || m.applied != VendReleased {
			bad("the machine reported no release")
		}
	case VendFailed:
		if m == nil || !m.refused && m.applied != VendFailed {
			bad("the machine neither refused it nor reported a failure")
		}
	case VendUnknown:
		switch {
		case m == nil:
			bad("the machine was never told")
		case m.applied == VendUnknown, m.life != w.restarts:
			// Reported so, or a restart caught it mid-vend.
		case m.refused:
			bad("the machine refused it and kioskd did not restart")
		case rec.UpdatedAt.Before(m.deadline) || now.Before(m.deadline):
			w.fail("absolute vend deadline", "%s journaled vend_unknown at %s, %s before its vend deadline, with no report and no restart",
				rec.ID, rec.UpdatedAt.Format("15:04:05.000"), m.deadline.Sub(rec.UpdatedAt))
		}
	}
}

// TestSimAsyncSchedules replays one short schedule for each thing async
// mode adds, every check on, and checks that each ends where it says: a
// generated seed reaches all of them, but only by chance.
func TestSimAsyncSchedules(t *testing.T) {
	cfg := simRegressConfig
	cfg.Async = 40 * time.Second
	sale := []simStep{{Op: "up"}, {Op: "create", Mode: "card", Amt: 1250}, {Op: "pos", Msg: "success"}}
	for _, c := range []struct {
		name    string
		steps   []simStep
		outcome string // the payment's state/vend at the end
		report  string // what became of the machine's last report
	}{
		{"released", []simStep{{Op: "vended", Msg: "released"}}, "approved/released", "applied"},
		{"failed", []simStep{{Op: "vended", Msg: "failed"}}, "approved/failed", "applied"},
		{"unknown", []simStep{{Op: "vended", Msg: "unknown"}}, "approved/vend_unknown", "applied"},
		{"twice", []simStep{{Op: "vended", Msg: "failed"}, {Op: "vended", Msg: "released"}}, "approved/failed", "late: after an outcome"},
		{"crash_while_vending", []simStep{{Op: "crash"}, {Op: "up"}, {Op: "vended", Msg: "released"}}, "approved/vend_unknown", "late: after a restart"},
		{"before_deadline", []simStep{{Op: "sleep", D: 40*time.Second - time.Millisecond}, {Op: "vended", Msg: "released"}}, "approved/released", "applied"},
		{"at_deadline", []simStep{{Op: "sleep", D: 40 * time.Second}, {Op: "vended", Msg: "released"}}, "approved/vend_unknown", "late: after the deadline"},
		{"start_refused", []simStep{{Op: "vended", Msg: "released"}}, "approved/failed", "not being vended"},
		{"crash_before_start", []simStep{{Op: "vended", Msg: "released"}}, "approved/vend_unknown", "not being vended"},
		{"crash_in_start", []simStep{{Op: "vended", Msg: "released"}}, "approved/vend_unknown", "late: after a restart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			steps := slices.Clone(sale)
			if strings.Contains(c.name, "start") {
				steps = slices.Insert(steps, 1, simStep{Op: "fault", Fault: c.name})
			}
			steps = append(steps, c.steps...)
			st := &simStats{}
			if v := simRun(t, filepath.Join(t.TempDir(), "j.db"), cfg, steps, simOptions{all: true, stats: st}); v != nil {
				t.Fatalf("%s\nschedule:\n%s", v, simFormat(steps))
			}
			if st.outcomes[c.outcome] != 1 || st.starts != 1 || st.reportFates[c.report] == 0 {
				t.Errorf("ends %v, %d vends started, reports %v; want %s, one start, a report %q", st.outcomes, st.starts, st.reportFates, c.outcome, c.report)
			}
		})
	}
}
