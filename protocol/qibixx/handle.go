package qibixx

import (
	"errors"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// handle acts on one line from the board; nil is an overlong line.
func (r *Reader) handle(line []byte) {
	r.lines.Add(1)
	var m Msg
	var err error
	if line == nil {
		err = ErrTooLong
	} else {
		m, err = ParseLine(line)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.refused.Add(1)
		if ok, n := r.badLines.allow(r.cfg.Now()); ok {
			r.log.Warn("line from the board refused", "err", err, "line", string(clip(line)), "refused_since_last", n)
		}
		if m.Kind == KindVendRequest {
			// The board waits for an answer to what it could not tell
			// kioskd: no sale on a price nobody can read.
			r.interrupt(mdb.CauseVendCancel, "a new vend request")
			r.refuse(mdb.CausePrice, -1, 0)
		}
		return
	}
	switch m.Kind {
	case KindStatus:
		r.status(m)
	case KindVendRequest:
		r.request(m)
	case KindVendSuccess, KindVendFailure:
		if r.v.phase != vendApproved {
			r.odd("vend outcome for no approved vend", m, line)
			return
		}
		e := mdb.Event{Kind: mdb.EventVendSucceeded, Vend: r.v.id, Price: r.v.approved, Item: r.v.item}
		if m.Kind == KindVendFailure {
			e.Kind = mdb.EventVendFailed
		}
		r.log.Info("vend outcome", "vend", r.v.id, "outcome", e.Kind.String())
		r.v = vend{}
		r.vendsDone++
		r.event(e)
	case KindError:
		// A command the board refused. An approval it refused may still
		// have been half taken: the vend stays open, and the VMC's next
		// move (or its silence) decides.
		r.odd("the board refused a command", m, line)
	case KindSetOK, KindPolled:
	default:
		// c,0 and c,1 appear in Qibixx's session example as the board's
		// word on C,0 and C,1: nothing to act on, nothing odd.
		if m.Prefix == 'c' && m.Text != "0" && m.Text != "1" {
			r.odd("cashless line not understood", m, line)
		}
	}
}

// odd logs a line that is well formed but out of place, rate-limited.
func (r *Reader) odd(what string, m Msg, line []byte) {
	if ok, n := r.oddLines.allow(r.cfg.Now()); ok {
		r.log.Warn(what, "line", string(clip(line)), "kind", m.Kind.String(), "state", r.state.String(), "held_back", n)
	}
}

// status follows the slave's state. A vend the state leaves behind
// without its outcome is interrupted: the VMC cancelled it, reset the
// reader or ended the session.
func (r *Reader) status(m Msg) {
	prev := r.state
	switch m.Status {
	case StatusInactive:
		r.interrupt(mdb.CauseReset, "reader reset")
		r.state = mdb.StateInactive
		r.vendsDone = 0
		if prev != mdb.StateInactive {
			r.event(mdb.Event{Kind: mdb.EventReset})
		}
	case StatusDisabled:
		r.interrupt(mdb.CauseReset, "reader disabled")
		r.state = mdb.StateDisabled
		r.vendsDone = 0
		if prev != mdb.StateDisabled {
			r.event(mdb.Event{Kind: mdb.EventDisabled})
		}
	case StatusEnabled:
		r.interrupt(mdb.CauseVendCancel, "session ended")
		r.state = mdb.StateEnabled
		r.vendsDone = 0
		switch prev {
		case mdb.StateSessionIdle, mdb.StateVend:
			r.event(mdb.Event{Kind: mdb.EventSessionCompleted})
		case mdb.StateEnabled:
		default:
			r.event(mdb.Event{Kind: mdb.EventEnabled})
		}
	case StatusIdle:
		// Back in the session. A vend still waiting was cancelled at
		// the machine; an approved one is not ended by this: the board
		// goes back to idle once it has passed the approval on, and the
		// VMC's report follows.
		if r.v.phase == vendPending {
			r.interrupt(mdb.CauseVendCancel, "vend cancelled at the machine")
		}
		r.state = mdb.StateSessionIdle
	}
	if r.state != prev {
		r.log.Info("reader state", "state", r.state.String(), "was", prev.String())
	}
}

// request starts a vend, or refuses it.
func (r *Reader) request(m Msg) {
	// A VMC that asks again has moved on from the vend before.
	r.interrupt(mdb.CauseVendCancel, "a new vend request")
	r.state = mdb.StateVend
	sen, err := m.Price.Sen(r.cfg.Scale.Decimals)
	switch {
	case err != nil || sen == 0:
		if ok, n := r.badLines.allow(r.cfg.Now()); ok {
			r.log.Warn("vend request price not usable", "units", m.Price.Units, "decimals", m.Price.Frac, "configured", r.cfg.Scale.Decimals, "err", err, "refused_since_last", n)
		}
		r.refuse(mdb.CausePrice, -1, m.Item)
		return
	case r.vendsDone > 0 && !r.cfg.Multivend:
		r.refuse(mdb.CauseMultivend, sen, m.Item)
		return
	case r.ev.free() < eventReserve:
		r.refuse(mdb.CauseBacklog, sen, m.Item)
		return
	}
	r.nextVend++
	r.v = vend{id: r.nextVend, phase: vendPending, price: sen, item: m.Item,
		deadline: r.cfg.Now().Add(r.cfg.MaxResponse - r.cfg.VendMargin)}
	r.event(mdb.Event{Kind: mdb.EventVendRequested, Vend: r.v.id, Price: sen, Item: m.Item})
}

// refuse denies the vend request at once, with no payment.
func (r *Reader) refuse(c mdb.Cause, sen int64, item uint16) {
	if err := r.sendLocked(AppendStop(nil)); err != nil && !errors.Is(err, ErrLinkDown) {
		r.log.Error("vend refusal not sent", "err", err)
	}
	r.event(mdb.Event{Kind: mdb.EventVendRefused, Cause: c, Price: sen, Item: item})
}
