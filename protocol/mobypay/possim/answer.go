package possim

// How the simulator answers each kiosk message, behaviour by behaviour, and writes the frames.

import (
	"fmt"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

func (s *Sim) onRequest(m *mobypay.Message) error {
	b := s.cfg.Behaviour
	if b == Error {
		return s.send(s.errorFrame(m.TxnID, "Unable to process transaction"))
	}
	if m.TxnID == "" || !m.HasAmount || !mobypay.ValidMode(m.PaymentMode) {
		return s.send(s.errorFrame(m.TxnID, "Invalid transaction request"))
	}
	if s.txns[m.TxnID] != nil {
		return s.send(s.errorFrame(m.TxnID, "Transaction already in progress"))
	}
	t := &simTxn{id: m.TxnID, amount: m.Amount, mode: m.PaymentMode}
	s.txns[t.id] = t
	ack := s.ackFrame(t.id, mobypay.StatusProcessing)
	if b == IPP || (b == Approve && t.mode == mobypay.ModeIPP) {
		t.awaitingPlan = true
		return s.send(ack, s.plansFrame(t))
	}
	switch b {
	case Merged:
		delete(s.txns, t.id)
		return s.sendMerged(ack, s.resultFrame(t, ""))
	case AckOnly, CancelLate:
		return s.send(ack)
	case Slow:
		if err := s.send(ack); err != nil {
			return err
		}
		s.after(s.cfg.Delay, t.id)
		return nil
	case Drop:
		if err := s.send(ack); err != nil {
			return err
		}
		s.log.Info("dropping the connection mid-payment", "txn_id", t.id)
		return errDropped
	}
	if err := s.send(ack); err != nil {
		return err
	}
	return s.finish(t, "")
}

// after queues txn id's result for d from now, unless the session ends.
func (s *Sim) after(d time.Duration, id string) {
	ctx, due := s.sctx, s.due
	s.swg.Add(1)
	go func() {
		defer s.swg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			select {
			case due <- id:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
}

func (s *Sim) onPlanSelection(m *mobypay.Message) error {
	t := s.txns[m.TxnID]
	if t == nil || !t.awaitingPlan {
		return s.send(s.errorFrame(m.TxnID, "No installment plan pending for this transaction"))
	}
	if m.PlanID != "pay-in-full" && m.PlanID != "ipp-6m" {
		return s.send(s.errorFrame(m.TxnID, "Unknown installment plan"))
	}
	t.awaitingPlan = false
	if err := s.send(s.ackFrame(t.id, mobypay.StatusPlanReceived)); err != nil {
		return err
	}
	return s.finish(t, m.PlanID)
}

// onCancel: every behaviour (but silent) acks a cancel with "received",
// known transaction or not. What follows is a guess at the app, which the
// seed leaves open ("nothing promises a final result"): the app aborts a
// payment still in flight and reports it as failed USER_ABORT, the same
// failure its samples show for an aborted card payment. A transaction
// already finished, or never seen, gets the ack alone. ackonly never sends
// a result, and cancel-late plays the race the kiosk must survive: the
// customer had already paid, so a success follows the ack.
func (s *Sim) onCancel(m *mobypay.Message) error {
	frames := []simFrame{s.ackFrame(m.TxnID, mobypay.StatusReceived)}
	if t := s.txns[m.TxnID]; t != nil {
		switch s.cfg.Behaviour {
		case AckOnly:
		case CancelLate:
			delete(s.txns, t.id)
			frames = append(frames, s.resultFrame(t, ""))
		default:
			delete(s.txns, t.id)
			frames = append(frames, s.failedFrame(t, "USER_ABORT"))
		}
	}
	return s.send(frames...)
}

// finish sends t's final result as the behaviour shapes it.
func (s *Sim) finish(t *simTxn, planID string) error {
	delete(s.txns, t.id)
	res := s.resultFrame(t, planID)
	if s.cfg.Behaviour == Replay {
		return s.send(res, res)
	}
	return s.send(res)
}

// send writes each frame with its own write (in pieces for split).
func (s *Sim) send(frames ...simFrame) error {
	for _, f := range frames {
		if err := s.write(f.b); err != nil {
			return err
		}
		s.sent(f)
	}
	return nil
}

// sendMerged writes all frames with one write.
func (s *Sim) sendMerged(frames ...simFrame) error {
	var b []byte
	for _, f := range frames {
		b = append(b, f.b...)
	}
	if err := s.write(b); err != nil {
		return err
	}
	for _, f := range frames {
		s.sent(f)
	}
	return nil
}

func (s *Sim) sent(f simFrame) {
	s.event(Event{Kind: Sent, Msg: mobypay.Message{Type: f.typ, TxnID: f.txn, Status: f.status}})
	s.log.Info("sent", "type", f.typ, "status", f.status, "txn_id", f.txn)
}

func (s *Sim) write(b []byte) error {
	s.log.Debug("frames out", "bytes", string(b))
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	piece := len(b)
	if s.cfg.Behaviour == Split {
		piece = simPiece
	}
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := s.conn.Write(b[:n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}
