package payment

// Asynchronous vends: the product is released by a machine that takes
// seconds to tens of seconds and says afterwards what it did (a vending
// machine over MDB dispenses after Vend Approved and reports Vend Success
// or Failure). The loop must not wait for that: the watchdog probes it
// every few seconds. So the vend is started on the loop, right after
// "releasing" is journaled, and its outcome comes back through VendDone,
// on the loop again, within an absolute deadline.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AsyncVender is a vend device whose vend outlasts what the loop may
// wait. StartVend is called on the service loop, at most once per
// payment, after "releasing" is journaled; it must return at once. An
// error means nothing was released (the machine was told nothing, or
// refused): the vend is journaled failed, refund owed. Otherwise the
// vender must report the outcome with Service.VendDone; without one
// before Config.AsyncVendTimeout the vend is journaled vend_unknown.
//
// A payment is vended by an AsyncVender when its CreateRequest names
// one; others use the service's Vender (the relay).
type AsyncVender interface {
	StartVend(t Txn) error
}

// VendOutcome is what an AsyncVender learned of a vend it started.
type VendOutcome struct {
	// Vend is VendReleased, VendFailed (nothing was released: refund
	// owed) or VendUnknown (the machine cannot say, e.g. it was reset
	// mid-vend).
	Vend Vend
	// Reason says why, for the review of a failed or unknown vend.
	Reason string
	// Source names the reporter in the evidence ("mdb"); "kiosk" if empty.
	Source string
}

// DefaultAsyncVendTimeout bounds an asynchronous vend when Config leaves
// AsyncVendTimeout zero.
const DefaultAsyncVendTimeout = 2 * time.Minute

// VendDone reports the outcome of a vend an AsyncVender started. It
// returns once the outcome is journaled (or the journal failed). An
// outcome for a payment that is not being vended (its deadline passed,
// or kioskd restarted in between and recovery journaled vend_unknown) is
// kept as evidence and changes nothing: ErrNotActive.
func (s *Service) VendDone(ctx context.Context, id string, o VendOutcome) (Txn, error) {
	switch o.Vend {
	case VendReleased, VendFailed, VendUnknown:
	default:
		return Txn{}, fmt.Errorf("%w: vend outcome %q: want released, failed or vend_unknown", ErrBadRequest, o.Vend)
	}
	var out Txn
	var err error
	if derr := s.do(ctx, func() { out, err = s.vendDone(id, o) }); derr != nil {
		return Txn{}, derr
	}
	return out, err
}

// vending reports whether the payment in progress is an asynchronous vend
// waiting for its outcome.
func (s *Service) vending() bool {
	return s.cur != nil && s.cur.Vend == VendReleasing && s.async[s.cur.ID] != nil
}

// startVend hands the approved payment t to av. It runs in approve, in
// place of release, with "releasing" on disk.
func (s *Service) startVend(av AsyncVender, t Txn) {
	if err := av.StartVend(t); err != nil {
		s.log.Error("vend not started", "txn_id", t.ID, "err", err)
		s.endVend(nil, VendFailed, "vend not started: "+err.Error()+"; refund owed")
		return
	}
	// The payment's own deadlines are over (it is approved); from here
	// only the vend's runs. It is absolute: nothing the machine says
	// short of an outcome moves it.
	s.dl = deadlines{phase: timerVend, phaseAt: time.Now().Add(s.cfg.AsyncVendTimeout)}
	s.dl.hard = s.dl.phaseAt
	s.schedule()
	s.log.Info("vend started", "txn_id", t.ID, "deadline", s.cfg.AsyncVendTimeout)
}

func (s *Service) vendDone(id string, o VendOutcome) (Txn, error) {
	src := o.Source
	if src == "" {
		src = "kiosk"
	}
	payload, _ := json.Marshal(struct {
		Vend   Vend   `json:"vend"`
		Reason string `json:"reason,omitempty"`
	}{o.Vend, o.Reason})
	ev := &Evidence{TxnID: id, Source: src, Type: "vend_outcome", Status: string(o.Vend), Payload: string(payload)}
	if s.cur != nil && s.cur.ID == id && s.vending() {
		ev.Disposal = "applied"
		return s.endVend(ev, o.Vend, o.Reason), nil
	}
	// Too late: the deadline or a restart settled it. The report is
	// evidence for the operator's review, never a second outcome.
	t, err := s.j.Get(id)
	if err != nil {
		ev.Disposal = "refused: unknown transaction"
		if aerr := s.j.AddEvidence(ev, time.Now()); aerr != nil {
			s.log.Error("journal evidence failed", "err", aerr)
		}
		return Txn{}, err
	}
	ev.Disposal = "not acted on: vend " + string(t.Vend)
	s.log.Warn("vend outcome for a payment not being vended; kept as evidence", "txn_id", id, "outcome", o.Vend, "vend", t.Vend, "state", t.State)
	var nt Txn
	if s.cur != nil && s.cur.ID == id {
		nt, _ = s.move(ev, func(*Txn) {})
	} else if nt, err = s.j.Update(id, time.Now(), ev, nil); err != nil {
		s.log.Error("journal update failed", "txn_id", id, "err", err)
		return t, err
	} else {
		s.publish(Event{Kind: "payment", Txn: &nt})
	}
	return nt, fmt.Errorf("%w: %s vend is %s", ErrNotActive, id, t.Vend)
}

// endVend journals the outcome of the vend in progress, which frees the
// service for the next payment, and queues the receipt.
func (s *Service) endVend(ev *Evidence, v Vend, reason string) Txn {
	id := s.cur.ID
	delete(s.async, id)
	out, ok := s.move(ev, func(x *Txn) {
		x.Vend = v
		switch v {
		case VendFailed:
			if !strings.Contains(reason, "refund") {
				reason += "; refund owed"
			}
			x.flag(reason)
		case VendUnknown:
			x.flag(string(VendUnknown) + ": " + reason + "; refund may be owed")
		}
	})
	switch {
	case v == VendReleased:
		s.log.Info("product released", "txn_id", id)
	default:
		s.log.Error("vend not confirmed", "txn_id", id, "vend", v, "reason", reason)
	}
	if !ok {
		// The outcome is not on disk: recovery will show vend_unknown,
		// the honest record; the kiosk must not stay busy meanwhile.
		s.cur = nil
		s.disarm()
		s.publish(Event{Kind: "payment", Txn: &out})
	}
	if s.printer != nil {
		s.printer.Receipt(out)
	}
	return out
}
