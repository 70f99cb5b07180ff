package payment

// The controller's commands as the loop runs them (create, cancel,
// selectPlan), and move, through which they, the reports (report.go) and
// the timers (deadline.go) change the payment in progress.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// move applies one journaled transition to the current payment and
// publishes it. A journal failure stops the payment where it is: no
// effect may follow a transition that is not on disk. The steps held by
// later are written first, in the same commit.
func (s *Service) move(ev *Evidence, fn func(t *Txn)) (Txn, bool) {
	cur := s.cur
	now := time.Now()
	steps := append(s.later, Step{At: now, Ev: ev, apply: fn})
	t, err := s.j.updateSteps(cur.ID, &s.stored, steps)
	if err != nil {
		s.journalErr = err
		s.log.Error("journal update failed", "txn_id", cur.ID, "err", err)
		return *cur, false
	}
	clear(steps)        // the closures and evidence go with the commit
	s.later = steps[:0] // the array the append may have grown, kept
	*cur, s.stored = t, t
	s.moved(t)
	return t, true
}

// moved logs and publishes the payment in progress as it now stands, and
// lets it go once it has ended.
func (s *Service) moved(t Txn) {
	// Attrs, not key-value pairs: these lines are per step of every
	// payment, and LogAttrs boxes nothing (nothing at all when Info is
	// off); the text is the same.
	ctx := context.Background()
	if t.PulsesTotal > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, "payment", slog.String("txn_id", t.ID), slog.String("state", string(t.State)), slog.String("vend", string(t.Vend)),
			slog.Int("pulses_done", t.PulsesDone), slog.Int("pulses_total", t.PulsesTotal), slog.String("review", t.Review))
	} else {
		s.log.LogAttrs(ctx, slog.LevelInfo, "payment", slog.String("txn_id", t.ID), slog.String("state", string(t.State)), slog.String("vend", string(t.Vend)),
			slog.String("review", t.Review))
	}
	if t.State.Final() && t.Vend != VendReleasing {
		s.cur = nil
		s.disarm()
		delete(s.async, t.ID)
	}
	s.publish(Event{Kind: "payment", Txn: &t})
}

// maxLater bounds the steps held for the next commit: a terminal that
// acknowledges again and again has its acks written, not kept.
const maxLater = 8

// soon is move for a step whose loss in a power cut changes no outcome:
// the payment in progress changes at once (the loop, the events and the
// API see it), and the step is written first in the next commit, by
// move, with its own outbox record at its own time. A payment has three
// commits on its happy path so: created, before the request leaves;
// approved with releasing, before the relay moves; released, after it.
//
// Only these steps are held: "sent", and the terminal's acks and other
// non-final messages. Losing them changes nothing because recovery
// treats every state before a final one alike (unknown, flagged: the
// card may have been charged), and "created" is already journaled before
// the request leaves, so the record never claims less than happened. No
// effect follows them: the ack timer only ends the payment, through a
// commit; nothing is released, charged or promised on an ack. Every
// final result, every state a person waits in (plans offered), every
// cancel and every vend step is a commit before its effect, as before.
// Held steps are bounded (maxLater), belong to the payment in progress
// only, and are written when the loop stops too (Run).
func (s *Service) soon(ev *Evidence, fn func(t *Txn)) (Txn, bool) {
	cur := s.cur
	if s.commitNow || len(s.later) >= maxLater {
		return s.move(ev, fn)
	}
	// The step is tried on the loop's own scratch value (fn may keep
	// nothing of it), and its evidence held in the loop's own array,
	// which maxLater bounds: a held step costs no allocation of its own.
	nu := &s.next
	*nu = *cur
	nu.Plans = slices.Clone(cur.Plans)
	fn(nu)
	if nu.State.Final() || nu.Vend != cur.Vend || nu.Review != cur.Review {
		// Not a step that may wait: written now.
		return s.move(ev, fn)
	}
	if err := checkMove(cur, nu); err != nil {
		s.journalErr = err
		s.log.Error("payment step refused", "txn_id", cur.ID, "err", err)
		return *cur, false
	}
	now := time.Now()
	var held *Evidence
	if ev != nil {
		held = &s.laterEv[len(s.later)]
		*held = *ev
		nu.Evidence++
	}
	nu.UpdatedAt = now
	s.later = append(s.later, Step{At: now, Ev: held, apply: fn})
	*cur = *nu
	s.moved(*nu)
	return *cur, true
}

// holds reports whether payload is a message soon holds for id's next
// commit: a repeat of it is as much a repeat as one of the journal's.
func (s *Service) holds(id, payload string) bool {
	if s.cur == nil || s.cur.ID != id {
		return false
	}
	for _, st := range s.later {
		if st.Ev != nil && st.Ev.Payload == payload {
			return true
		}
	}
	return false
}

// flushLater writes the held steps of the payment in progress on their
// own, when the loop stops.
func (s *Service) flushLater() {
	if s.cur == nil || len(s.later) == 0 {
		return
	}
	if _, err := s.j.UpdateSteps(s.cur.ID, s.later); err != nil {
		s.log.Error("journal update failed at stop", "txn_id", s.cur.ID, "err", err)
	}
	s.later = nil
}

func (s *Service) create(prov Provider, req CreateRequest) (Txn, bool, error) {
	// A retry of a payment already made (in progress or not) is answered
	// before anything else, busy and not-ready included.
	if req.Key != "" {
		t, found, err := s.j.byKey(req.Key)
		switch {
		case err == nil && !found, errors.Is(err, ErrNotFound):
			// A new key; or one whose payment is gone (get's
			// ErrNotFound), which ByKey's callers took as new too.
		case err == nil && (t.Amount != req.Amount || t.Mode != req.Mode || t.Provider != prov.Name()):
			return t, false, fmt.Errorf("%w: key %q is %s (%s %s via %s)", ErrKeyMismatch, req.Key, t.ID, t.Amount, t.Mode, t.Provider)
		case err == nil:
			if s.cur != nil && s.cur.ID == t.ID {
				t = *s.cur
			}
			s.log.Info("payment exists for this idempotency key", "txn_id", t.ID, "state", t.State)
			return t, true, nil
		default:
			s.log.Error("journal read failed; payment refused", "err", err)
			return Txn{}, false, err
		}
	}
	if why := s.Paused(); why != "" {
		return Txn{}, false, &PausedError{Reason: why}
	}
	if s.cur != nil {
		return Txn{}, false, fmt.Errorf("%w: %s", ErrBusy, s.cur.ID)
	}
	s.later = s.later[:0] // only ever the payment in progress's
	if err := prov.Ready(); err != nil {
		return Txn{}, false, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	t := Txn{Provider: prov.Name(), Mode: req.Mode, Amount: req.Amount, Key: req.Key}
	if err := s.j.Create(&t, time.Now()); err != nil {
		s.log.Error("journal write failed; payment refused", "err", err)
		return Txn{}, false, err
	}
	s.cur, s.planPref, s.cancelBy, s.cancelErr = &t, req.PlanID, timerNone, nil
	s.stored = t
	if req.Vender != nil {
		s.async[t.ID] = req.Vender
	}
	if ctx := context.Background(); s.log.Enabled(ctx, slog.LevelInfo) { // Amount.String allocates
		s.log.LogAttrs(ctx, slog.LevelInfo, "payment created", slog.String("txn_id", t.ID), slog.String("mode", t.Mode),
			slog.String("amount", t.Amount.String()), slog.String("provider", t.Provider))
	}
	err := prov.Request(&t)
	if errors.Is(err, ErrNotDelivered) {
		s.log.Warn("payment request not delivered", "txn_id", t.ID, "err", err)
		out, _ := s.move(nil, func(t *Txn) { t.State = Declined; t.Error = err.Error() })
		return out, false, nil
	}
	if err != nil {
		// It may have reached the terminal: wait for the ack as usual.
		s.log.Warn("payment request may not have been delivered", "txn_id", t.ID, "err", err)
	}
	s.begin(&t)
	out, _ := s.soon(nil, func(t *Txn) { t.State = Sent })
	// Armed even when "sent" is not on disk: the payment is in progress
	// either way and must still end by its deadlines.
	s.arm(timerAck, s.timeouts(t.Mode).Ack)
	return out, false, nil
}

// cancel sends cancel_transaction and waits CancelGrace for a final
// result; why is byOperator or the timer that expired, reason its text.
func (s *Service) cancel(id string, why timerKind, reason string) (Txn, error) {
	if s.cur == nil || s.cur.ID != id {
		t, err := s.j.Get(id)
		if err != nil {
			return Txn{}, err
		}
		return t, fmt.Errorf("%w: %s is %s", ErrNotActive, id, t.State)
	}
	if s.cur.State == CancelRequested || s.cur.State.Final() {
		return *s.cur, nil
	}
	prov := s.providers[s.cur.Provider]
	if err := prov.Cancel(s.cur); err != nil {
		s.log.Warn("cancel not delivered; waiting for a result anyway", "txn_id", id, "err", err)
		s.cancelErr = err
	}
	s.cancelBy = why
	out, ok := s.move(nil, func(t *Txn) {
		t.State = CancelRequested
		if reason != "" {
			t.Error = reason
		}
	})
	if ok {
		s.arm(timerGrace, s.cfg.CancelGrace)
	}
	return out, nil
}

func (s *Service) selectPlan(id, planID string) (Txn, error) {
	if s.cur == nil || s.cur.ID != id || s.cur.State != PlansOffered {
		t, err := s.j.Get(id)
		if err != nil {
			return Txn{}, err
		}
		return t, fmt.Errorf("%w: %s is %s, not plans_offered", ErrNotActive, id, t.State)
	}
	if !slices.ContainsFunc(s.cur.Plans, func(p Plan) bool { return p.ID == planID }) {
		return *s.cur, fmt.Errorf("%w: plan %q was not offered", ErrBadRequest, planID)
	}
	s.journalErr = nil
	out, ok := s.move(nil, func(t *Txn) { t.State = PlanSelected; t.PlanID = planID })
	if !ok {
		return out, fmt.Errorf("payment: select plan %q for %s: %w", planID, id, s.journalErr)
	}
	if err := s.providers[out.Provider].SelectPlan(s.cur, planID); err != nil {
		s.log.Warn("plan selection may not have been delivered", "txn_id", id, "err", err)
	}
	s.arm(timerResult, s.timeouts(out.Mode).Result)
	return out, nil
}
