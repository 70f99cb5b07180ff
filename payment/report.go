package payment

// What the terminals report and how the service acts on it: evidence,
// state changes, the approval and the vend.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// ReportKind says what a provider learned.
type ReportKind int

// Report kinds.
const (
	ReportOther    ReportKind = iota // nothing to act on; kept as evidence
	ReportAck                        // the terminal acknowledged (Status says which)
	ReportPlans                      // IPP plans offered
	ReportApproved                   // final success
	ReportDeclined                   // final failure
	ReportError                      // the terminal could not process the request
)

// Report is one authentic message about a transaction, normalised.
type Report struct {
	TxnID     string
	Kind      ReportKind
	Status    string // ack status
	Amount    *Sen   // amount stated by the result, if any
	AmountBad bool   // an amount was stated that is not a whole number of sen
	// AmountText is the amount as the message stated it (canonical JSON
	// text), whatever its type, kept next to the parsed sen.
	AmountText string
	// Odd, when set, says why an authentic message is not usable as sent
	// (a field of the wrong type, a status in another case): it is
	// journaled and, if it looks like a success, flagged, never acted on.
	Odd       string
	Plans     []Plan
	PlanID    string
	POSTxnID  string
	AuthCode  string
	CardLast4 string
	PosID     string
	Message   string // decline reason or error text
	// Late, when set, says why the message must not be acted on (stale
	// timestamp); it is journaled and flagged, never applied.
	Late string
	// Repeatable marks messages a peer may send again unchanged (KPOS
	// retries a notification it thinks was lost). They are compared with
	// what is journaled and a repeat is dropped. MobyPay needs no such
	// check: its nonces are refused by the replay guard before this.
	Repeatable bool
	// Provider is the provider whose peer sent the message. A report about
	// another provider's payment is journaled, never acted on.
	Provider string
	Evidence Evidence
}

// Report hands the service an authentic message. It blocks only while the
// loop is busy, which bounds memory under a flood of valid messages.
func (s *Service) Report(r Report) {
	select {
	case s.reports <- r:
	case <-s.stopped: // nobody will read it; recovery settles the payment
	}
}

// Recorded says what became of a report handed to Record.
type Recorded struct {
	Known     bool // about a journaled transaction
	Duplicate bool // the same message was journaled before; nothing changed
	Txn       Txn  // the transaction after the report (if known)
}

// Record hands the service an authentic message and returns once it is
// durably journaled (or the journal failed), for peers that must not be
// told "received" before that: KPOS notifications.
func (s *Service) Record(ctx context.Context, r Report) (Recorded, error) {
	var out Recorded
	var err error
	if derr := s.do(ctx, func() {
		// Durable before it returns: nothing of it may be held (soon).
		s.commitNow = true
		out, err = s.onReport(r)
		s.commitNow = false
	}); derr != nil {
		return Recorded{}, derr
	}
	return out, err
}

func (s *Service) onReport(r Report) (Recorded, error) {
	// The loop's own value (its pointer goes no further than the commit
	// or the copy soon holds), so that a report allocates no evidence.
	ev := &s.ev
	*ev = r.Evidence
	ev.TxnID = r.TxnID
	var t Txn
	var err error
	if s.cur != nil && s.cur.ID == r.TxnID {
		t = *s.cur // the loop's copy is the journal's, without a read
	} else {
		t, err = s.j.Get(r.TxnID)
	}
	if errors.Is(err, ErrNotFound) {
		ev.Disposal = "refused: unknown transaction"
		if ok, held := s.unknownLog.allow(time.Now()); ok {
			s.log.Warn("message for an unknown transaction; kept as evidence", "txn_id", r.TxnID, "type", ev.Type, "status", ev.Status, "more_since_last_line", held)
		}
		if err := s.j.AddEvidence(ev, time.Now()); err != nil {
			s.log.Error("journal evidence failed", "err", err)
			return Recorded{}, err
		}
		return Recorded{}, nil
	}
	if err != nil {
		s.log.Error("journal read failed", "txn_id", r.TxnID, "err", err)
		return Recorded{}, err
	}
	// A peer that retries (KPOS re-posts a notification it thinks was
	// lost) gets the same answer and changes nothing.
	if r.Repeatable {
		dup, err := s.j.HasEvidence(t.ID, ev.Payload)
		dup = dup || s.holds(t.ID, ev.Payload)
		if err != nil {
			return Recorded{}, err
		}
		if dup {
			if ok, held := s.repeatLog.allow(time.Now()); ok {
				s.log.Info("repeated message; already journaled", "txn_id", t.ID, "type", ev.Type, "status", ev.Status, "more_since_last_line", held)
			}
			return Recorded{Known: true, Duplicate: true, Txn: t}, nil
		}
	}
	switch {
	case r.Late != "":
	case r.Provider != "" && r.Provider != t.Provider:
		r.Late = "sent by " + r.Provider + " about a " + t.Provider + " payment"
	case r.Odd != "" && r.Kind != ReportApproved:
		// approve flags an odd success itself (the customer may have
		// paid); any other odd message is recorded, never applied.
		r.Late = "not usable as sent: " + r.Odd
	}
	s.journalErr = nil
	// A payment being vended is settled: a message about it now (the
	// POS repeating its result) is evidence, as for a finished payment.
	if s.cur != nil && s.cur.ID == r.TxnID && r.Late == "" && !s.vending() {
		s.apply(r, ev)
		return Recorded{Known: true, Txn: s.curOr(t)}, s.journalErr
	}
	// Known, but late or about a payment no longer in progress: record it,
	// never act on it, and flag what could mean the customer paid.
	var flag string
	switch {
	case r.Late != "":
		ev.Disposal = "not acted on: " + r.Late
		if r.Kind == ReportApproved || r.Kind == ReportDeclined || r.Kind == ReportError {
			flag = "signed " + ev.Type + " " + ev.Status + " not acted on (" + r.Late + ")"
			if r.Kind == ReportApproved {
				flag += "; customer may have paid"
			}
		}
	case r.Kind == ReportApproved && t.State == Approved:
		ev.Disposal = "duplicate result"
	case r.Kind == ReportApproved:
		ev.Disposal = "not acted on: payment already " + string(t.State)
		flag = "success reported after the payment was " + string(t.State) + "; customer may have paid"
	default:
		ev.Disposal = "not acted on: payment " + string(t.State)
	}
	if ok, held := s.lateLog.allow(time.Now()); ok {
		s.log.Warn("message about a payment not in progress; kept as evidence", "txn_id", t.ID, "state", t.State,
			"type", ev.Type, "status", ev.Status, "disposal", ev.Disposal, "more_since_last_line", held)
	}
	apply := func(x *Txn) {
		if flag != "" {
			x.flag(flag)
		}
	}
	if s.cur != nil && s.cur.ID == t.ID {
		nt, _ := s.move(ev, apply)
		return Recorded{Known: true, Txn: nt}, s.journalErr
	}
	nt, err := s.j.Update(t.ID, time.Now(), ev, func(x *Txn) error { apply(x); return nil })
	if err != nil {
		s.log.Error("journal update failed", "txn_id", t.ID, "err", err)
		return Recorded{Known: true, Txn: t}, err
	}
	s.publish(Event{Kind: "payment", Txn: &nt})
	return Recorded{Known: true, Txn: nt}, nil
}

// curOr returns the payment in progress, or t once it has finished: as
// the loop last wrote it, which is the journal's (no read), or else as
// the journal has it.
func (s *Service) curOr(t Txn) Txn {
	if s.cur != nil {
		return *s.cur
	}
	if s.stored.ID == t.ID {
		return s.stored
	}
	if nt, err := s.j.Get(t.ID); err == nil {
		return nt
	}
	return t
}

// apply acts on a fresh message about the payment in progress.
func (s *Service) apply(r Report, ev *Evidence) {
	// The closures below take these, not r: one that captured r would
	// move all of it to the heap on every report.
	posID, msg, plans := r.PosID, r.Message, r.Plans
	t := s.cur
	tm := s.timeouts(t.Mode)
	ev.Disposal = "applied"
	ignore := func() { ev.Disposal = "not acted on in state " + string(t.State); s.soon(ev, func(*Txn) {}) }
	switch r.Kind {
	case ReportAck:
		switch {
		case r.Status == "processing" && t.State == Sent:
			if _, ok := s.soon(ev, func(t *Txn) { t.State = Acked; t.PosID = posID }); ok {
				s.arm(timerResult, tm.Result)
			}
		case r.Status == "plan_received" && t.State == PlanSelected:
			// The result deadline runs from the selection: an ack that
			// the POS may repeat must not push it back.
			s.soon(ev, func(*Txn) {})
		default:
			ev.Disposal = "noted"
			s.soon(ev, func(*Txn) {})
		}
	case ReportPlans:
		if t.State != Sent && t.State != Acked || len(r.Plans) == 0 {
			ignore()
			return
		}
		out, ok := s.move(ev, func(t *Txn) { t.State = PlansOffered; t.Plans = plans })
		if !ok {
			return
		}
		if pick := s.autoPlan(out.Plans); pick != "" {
			s.log.Info("IPP plan chosen automatically", "txn_id", out.ID, "plan_id", pick, "policy", s.cfg.IPPAutoSelect)
			s.selectPlan(out.ID, pick)
			return
		}
		s.arm(timerPlan, tm.Plan)
	case ReportApproved:
		s.approve(r, ev)
	case ReportDeclined:
		s.move(ev, func(t *Txn) {
			switch {
			case t.State != CancelRequested:
				t.State = Declined
			case s.cancelBy == byOperator:
				t.State = Cancelled
			default: // we cancelled because time ran out
				t.State = TimedOut
			}
			switch {
			case t.Error == "":
				t.Error = msg
			case msg != "":
				t.Error += "; terminal: " + msg
			}
			t.PosID = posID
		})
	case ReportError:
		if t.State == Sent {
			s.move(ev, func(t *Txn) { t.State = Declined; t.Error = "terminal error: " + msg })
			return
		}
		s.move(ev, func(t *Txn) {
			t.State = Unknown
			t.Error = "terminal error: " + msg
			t.flag("terminal reported an error mid-payment; the card may have been charged")
		})
	default:
		ev.Disposal = "noted"
		s.soon(ev, func(*Txn) {})
	}
}

// inquire asks an Inquirer provider for the payment's outcome and applies
// a final answer. It reports whether the payment is settled.
func (s *Service) inquire() bool {
	inq, ok := s.providers[s.cur.Provider].(Inquirer)
	if !ok {
		return false
	}
	id := s.cur.ID
	r, err := inq.Inquire(s.cur)
	if err != nil {
		s.log.Warn("inquiry failed", "txn_id", id, "err", err)
		return false
	}
	if r.Kind != ReportApproved && r.Kind != ReportDeclined {
		s.log.Info("inquiry: outcome not final yet", "txn_id", id, "status", r.Status)
		return false
	}
	r.TxnID = id
	ev := r.Evidence
	ev.TxnID = id
	s.apply(r, &ev)
	return s.cur == nil || s.cur.ID != id
}

func (s *Service) autoPlan(plans []Plan) string {
	has := func(id string) bool { return slices.ContainsFunc(plans, func(p Plan) bool { return p.ID == id }) }
	switch {
	case s.planPref != "" && has(s.planPref):
		return s.planPref
	case s.cfg.IPPAutoSelect == IPPSelectSingle && len(plans) == 1:
		return plans[0].ID
	case s.cfg.IPPAutoSelect == IPPSelectFirst:
		return plans[0].ID
	}
	return ""
}

// errNoVender is a vend without a vend device.
var errNoVender = errors.New("no vend device")

// approve records a success and, when it is clean, releases the product:
// approved and releasing are journaled in one commit before the relay
// moves, released or failed in the next.
func (s *Service) approve(r Report, ev *Evidence) {
	t := s.cur
	var review string
	switch {
	case r.Odd != "":
		review = "signed success not usable as sent (" + r.Odd + "); customer may have paid"
	case t.Review != "":
		// Flagged earlier (a late or odd message): the journal will not
		// let it vend, and the success must still be recorded.
		review = "success for a payment already flagged for review"
	case r.AmountBad:
		review = "result amount is not a whole number of sen"
	case r.Amount != nil && *r.Amount != t.Amount:
		review = fmt.Sprintf("amount mismatch: requested %s, result says %s", t.Amount, *r.Amount)
	case t.State == CancelRequested && s.cancelBy == byOperator && s.cfg.SuccessAfterCancel == AfterCancelReview:
		review = "success arrived after cancel; not vended by policy"
	case s.async[t.ID] == nil && s.pulsesFor(t.Amount) != nil:
		// Refused at creation; only a payment from before a config
		// change could get here, and no train fits it.
		review = fmt.Sprintf("amount %s is not a train of pulses of RM %s; customer may have paid", t.Amount, s.cfg.PulseValue)
	}
	// What the closure takes of r, so that it does not take r (see apply).
	posTxn, auth, last4, posID, planID, paid, paidText := r.POSTxnID, r.AuthCode, r.CardLast4, r.PosID, r.PlanID, r.Amount, r.AmountText
	out, ok := s.move(ev, func(x *Txn) {
		x.State = Approved
		x.POSTransactionID, x.AuthCode, x.CardLast4, x.PosID = posTxn, auth, last4, posID
		if planID != "" {
			x.PlanID = planID
		}
		x.PaidAmount, x.PaidAmountText = paid, paidText
		if review != "" {
			x.flag(review)
			ev.Disposal = "recorded, not vended: " + review
			return
		}
		x.Vend = VendReleasing
		if s.cfg.PulseValue > 0 && s.async[x.ID] == nil {
			x.PulsesTotal = int(x.Amount / s.cfg.PulseValue)
		}
	})
	if !ok || out.Vend != VendReleasing {
		if ok {
			s.log.Warn("approved payment not vended", "txn_id", out.ID, "review", out.Review)
		}
		return
	}
	if av := s.async[out.ID]; av != nil {
		s.startVend(av, out)
		return
	}
	s.release(out)
}

func (s *Service) release(t Txn) {
	err := errNoVender
	if s.vender != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.VendTimeout)
		id := t.ID // not t: a closure that took t would move it to the heap
		err = s.vender.Vend(ctx, t, func(done int) error { return s.pulsed(id, done) })
		cancel()
	}
	if t.PulsesTotal > 0 && err == nil && s.cur != nil && s.cur.PulsesDone != t.PulsesTotal {
		err = fmt.Errorf("payment: the relay reported %s", s.cur.pulsesConfirmed())
	}
	// Set once, so the closure copies it instead of moving err to the heap.
	vendErr := err
	out, ok := s.move(nil, func(x *Txn) {
		err := vendErr
		if err != nil {
			x.Vend = VendFailed
			reason := "vend failed: " + err.Error()
			if x.PulsesTotal > 0 {
				reason += "; " + x.pulsesConfirmed()
			}
			x.flag(reason + "; refund may be owed")
			return
		}
		x.Vend = VendReleased
	})
	if err != nil {
		s.log.Error("vend failed", "txn_id", t.ID, "err", err)
	} else {
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "product released", slog.String("txn_id", t.ID))
	}
	if !ok {
		// The relay moved but "released" is not on disk: recovery will
		// show vend_unknown, which is the honest record.
		s.cur = nil
		s.disarm()
		s.publish(Event{Kind: "payment", Txn: &out})
	}
	if s.printer != nil {
		s.printer.Receipt(out)
	}
}

// pulsed journals that done pulses of the current train have ended. It
// runs on the loop, inside Vend, and returns only once the count is on
// disk: the relay starts the next pulse after it, which is what bounds
// a crash's doubt to one pulse. It costs one commit per pulse.
func (s *Service) pulsed(id string, done int) error {
	if s.cur == nil || s.cur.ID != id {
		return fmt.Errorf("payment: pulse %d reported for %s, which is not being vended", done, id)
	}
	s.journalErr = nil
	if _, ok := s.move(nil, func(x *Txn) { x.PulsesDone = done }); !ok {
		return fmt.Errorf("payment: pulse %d of %d not journaled: %w", done, s.cur.PulsesTotal, s.journalErr)
	}
	return nil
}
