package payment

// The payment in progress's deadlines, link changes and timeouts.

import "time"

type timerKind int

const (
	timerNone timerKind = iota
	timerAck
	timerResult
	timerPlan
	timerGrace
	timerReconnect
	timerHard
	timerVend // an AsyncVender's outcome
	byOperator
)

// deadlines are the payment in progress's absolute limits. Nothing a peer
// does moves them later: a reconnect neither restarts the phase that was
// running nor grants a fresh reconnect grace, so a flapping link or a POS
// repeating an ack cannot keep a payment (and the kiosk) busy. The timer
// is armed for the earliest of them.
type deadlines struct {
	phase   timerKind // ack, result, plan or grace
	phaseAt time.Time
	// While the link is down mid-payment, downAt is when it went and
	// reconnectAt when the reconnect budget runs out. budget is what is
	// left of the payment's one ReconnectGrace.
	downAt, reconnectAt time.Time
	budget              time.Duration
	hard                time.Time // the whole payment, a safety net
}

// arm sets the deadline of the payment's current phase, d from now.
func (s *Service) arm(k timerKind, d time.Duration) {
	s.dl.phase, s.dl.phaseAt = k, time.Now().Add(d)
	s.schedule()
}

// begin sets the deadlines of a new payment once its request is out (a
// KPOS submit may itself take a while).
func (s *Service) begin(t *Txn) {
	s.dl = deadlines{budget: s.cfg.ReconnectGrace, hard: time.Now().Add(s.MaxDuration(t.Mode))}
}

// MaxDuration is the longest a payment in mode can stay open: every phase
// used to its limit, one after the other (IPP waits for a result twice:
// for the plans and after the selection), then the cancel grace. The
// reconnect grace is spent inside those phases, never added to them.
func (s *Service) MaxDuration(mode string) time.Duration {
	tm := s.timeouts(mode)
	d := tm.Ack + tm.Result + s.cfg.CancelGrace
	if mode == "ipp" {
		d += tm.Plan + tm.Result
	}
	return d
}

// schedule arms the timer for the earliest deadline of the payment.
func (s *Service) schedule() {
	s.timer.Stop()
	s.timerFor = timerNone
	if s.cur == nil {
		return
	}
	k, at := timerHard, s.dl.hard
	if s.dl.phase != timerNone && s.dl.phaseAt.Before(at) {
		k, at = s.dl.phase, s.dl.phaseAt
	}
	if !s.dl.reconnectAt.IsZero() && s.dl.reconnectAt.Before(at) {
		k, at = timerReconnect, s.dl.reconnectAt
	}
	s.timerFor = k
	s.timer.Reset(max(time.Until(at), 0))
}

func (s *Service) disarm() {
	s.timer.Stop()
	s.timerFor = timerNone
	s.dl = deadlines{}
}

func (s *Service) timeouts(mode string) Timeouts {
	t := s.cfg.Timeouts[mode]
	if t.Ack <= 0 {
		t.Ack = 15 * time.Second
	}
	if t.Result <= 0 {
		t.Result = 2 * time.Minute
	}
	if t.Plan <= 0 {
		t.Plan = time.Minute
	}
	return t
}

func (s *Service) onLink(st POSState) {
	st.Since = time.Now()
	s.mu.Lock()
	prev := s.pos[st.Provider]
	s.pos[st.Provider] = st
	s.mu.Unlock()
	s.publish(Event{Kind: "pos", POS: &st})
	if s.cur == nil || s.cur.Provider != st.Provider || s.cur.State.Final() {
		return
	}
	if st.State == "connected" {
		switch {
		case !s.dl.reconnectAt.IsZero():
			s.dl.budget -= st.Since.Sub(s.dl.downAt)
			s.dl.downAt, s.dl.reconnectAt = time.Time{}, time.Time{}
			s.schedule()
		case prev.State == "connected" && prev.Peer != st.Peer && !s.cur.Dropped:
			// A new connection took over from the one that carried the
			// payment (a POS app restart): what the old one would have
			// sent may be lost, as in a drop.
			s.log.Warn("POS session replaced mid-payment", "txn_id", s.cur.ID, "old", prev.Peer, "new", st.Peer)
			s.move(nil, func(t *Txn) { t.Dropped = true })
		}
		return
	}
	if !s.dl.reconnectAt.IsZero() {
		return // still down: the budget is already running
	}
	// The terminal dropped mid-payment. Its result may still come after it
	// reconnects, within what is left of the payment's one reconnect
	// budget; if not, the outcome is unknown.
	s.log.Warn("POS link lost mid-payment", "txn_id", s.cur.ID, "state", s.cur.State, "reconnect_budget", s.dl.budget)
	s.dl.downAt, s.dl.reconnectAt = st.Since, st.Since.Add(max(s.dl.budget, 0))
	if !s.cur.Dropped {
		if _, ok := s.move(nil, func(t *Txn) { t.Dropped = true }); !ok {
			return
		}
	}
	s.schedule()
}

func (s *Service) onTimer(k timerKind) {
	if s.cur == nil {
		return
	}
	if s.vending() {
		// Approved and handed to the machine: no inquiry or cancel can
		// change that, and whatever the machine says later is evidence.
		if k == timerVend || k == timerHard {
			s.log.Error("no vend outcome by the vend's deadline", "txn_id", s.cur.ID)
			s.endVend(nil, VendUnknown, "no outcome from the machine within the vend deadline")
		}
		return
	}
	if s.inquire() {
		return
	}
	t := s.cur
	switch k {
	case timerAck:
		// No ack: the terminal may never have seen the request. Ask it to
		// cancel in case it did; a result that still comes is flagged.
		s.log.Warn("no ack from POS", "txn_id", t.ID)
		cerr := s.providers[t.Provider].Cancel(t)
		s.move(nil, func(t *Txn) {
			t.Error = "no ack from the terminal"
			switch {
			case t.Dropped:
				// The ack may have been lost with the link and the cancel
				// may not arrive: the terminal may still take the money.
				t.State = Unknown
				t.flag("POS link lost mid-payment and no ack; the card may have been charged")
			case cerr != nil:
				t.State = Unknown
				t.flag("no ack and the cancel was not confirmed (" + cerr.Error() + "); the card may have been charged")
			default:
				t.State = TimedOut
			}
		})
	case timerResult, timerPlan:
		what := "no result from the terminal"
		if k == timerPlan {
			what = "no plan selected in time"
		}
		s.log.Warn(what+"; cancelling", "txn_id", t.ID)
		s.cancel(t.ID, k, what)
	case timerGrace:
		switch {
		case t.Dropped:
			s.move(nil, func(t *Txn) {
				t.State = Unknown
				t.flag("POS link lost mid-payment and no result after cancel")
			})
		case s.cancelErr != nil:
			// The terminal (or its host) did not take the cancel: the
			// payment may still have gone through.
			s.move(nil, func(t *Txn) {
				t.State = Unknown
				t.flag("cancel not confirmed (" + s.cancelErr.Error() + ") and no result; the card may have been charged")
			})
		case s.cancelBy == byOperator:
			s.move(nil, func(t *Txn) { t.State = Cancelled })
		default:
			s.move(nil, func(t *Txn) { t.State = TimedOut })
		}
	case timerReconnect:
		s.move(nil, func(t *Txn) {
			t.State = Unknown
			t.flag("POS link lost mid-payment; outcome unknown")
		})
	case timerHard:
		s.log.Error("payment open past its absolute deadline", "txn_id", t.ID, "state", t.State)
		if t.State != CancelRequested {
			s.providers[t.Provider].Cancel(t) // best effort: stop the terminal taking money
		}
		s.move(nil, func(t *Txn) {
			t.State = Unknown
			t.flag("no outcome within the payment's absolute deadline")
		})
	}
}
