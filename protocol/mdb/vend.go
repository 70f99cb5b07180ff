package mdb

import "time"

// The Vend command: a vend's request, its outcome from the VMC, and the
// reader's own deadline for the payment side's answer.

func (d *Device) vendCmd(sub byte, data []byte) []Word {
	switch sub {
	case 0x00:
		if len(data) < 5 {
			return d.outOfSequence(sub)
		}
		return d.vendRequest(uint16(data[1])<<8|uint16(data[2]), uint16(data[3])<<8|uint16(data[4]))
	case 0x01: // Vend Cancel
		switch {
		case d.state == StateVend && d.v.phase == vendPending:
			d.endVend(Event{Kind: EventVendCancelled, Cause: CauseVendCancel})
			return d.ack()
		case d.state == StateVend && d.v.phase == vendApproval:
			// The VMC cancels, so it has not seen our Vend Approved
			// (it would be dispensing otherwise): take it back.
			d.dropCode(rspVendApproved)
			d.endVend(Event{Kind: EventVendCancelled, Cause: CauseVendCancel, Approved: true})
			return d.ack()
		case d.state == StateSessionIdle && d.queued(rspVendDenied):
			// Our denial crossed the cancel; it answers both.
			return d.ack()
		}
		return d.outOfSequence(sub)
	case 0x02, 0x03: // Vend Success, Vend Failure
		if d.state != StateVend || !(d.v.phase == vendApproved || d.v.phase == vendApproval && d.v.sent) {
			return d.outOfSequence(sub)
		}
		// With the approval still queued, its ACK was lost on the way:
		// the VMC would not report the vend otherwise.
		d.dropCode(rspVendApproved)
		e := Event{Kind: EventVendSucceeded, Vend: d.v.id, Price: d.v.approved, Item: d.v.item}
		if sub == 0x02 {
			if len(data) >= 3 {
				e.Item = uint16(data[1])<<8 | uint16(data[2])
			}
		} else {
			e.Kind = EventVendFailed
		}
		d.event(e)
		d.v = vend{}
		d.vendsDone++
		d.state = StateSessionIdle
		return d.ack()
	case 0x04: // Session Complete
		switch d.state {
		case StateVend, StateInactive:
			return d.outOfSequence(sub)
		case StateEnabled:
			if d.beginQueued {
				// The VMC has our Begin Session though we missed its
				// ACK; the session it completes is real.
				d.dropCode(rspBeginSession)
				d.beginQueued = false
			}
		}
		// In Enabled or Disabled with no session this only resyncs a VMC
		// that believes in one: it gets the End Session it waits for.
		// Whatever the VMC has not ACKed about the session it ends is
		// moot now, and read after End Session it would be about the
		// next one.
		d.dropCode(rspVendDenied)
		d.dropCode(rspSessionCancel)
		off := d.stayOff || d.state == StateDisabled
		d.state = StateEnabled
		if off {
			d.state = StateDisabled
		}
		d.stayOff = false
		d.implicit = false
		d.vendsDone = 0
		d.push(msg1(rspEndSession))
		d.event(Event{Kind: EventSessionCompleted})
		return d.ack()
	case 0x05: // Cash Sale
		if len(data) < 5 || d.state == StateVend {
			return d.outOfSequence(sub)
		}
		scaled := uint16(data[1])<<8 | uint16(data[2])
		e := Event{Kind: EventCashSale, Item: uint16(data[3])<<8 | uint16(data[4]), Price: -1, Detail: scaled}
		if sen, err := d.cfg.Scale.ToSen(scaled); err == nil {
			e.Price = sen
		}
		d.event(e)
		return d.ack()
	}
	// Negative Vend and anything else: options we never offer.
	return d.outOfSequence(sub)
}

func (d *Device) vendRequest(scaled, item uint16) []Word {
	if d.state != StateVend {
		// A VMC that asks for a vend is not waiting for the answer to
		// an earlier one: a Vend Denied still queued was received
		// (its ACK lost). Sent again now, it would read as the answer
		// to this request.
		d.dropCode(rspVendDenied)
	}
	switch {
	case d.state == StateSessionIdle:
	case d.state == StateEnabled && d.beginQueued:
		// A Vend Request proves the VMC has our Begin Session.
		d.dropCode(rspBeginSession)
		d.beginDelivered()
	case d.state == StateEnabled && d.options&OptionAlwaysIdle != 0:
		d.state = StateSessionIdle
		d.implicit = true
		d.vendsDone = 0
	default:
		return d.outOfSequence(0x00)
	}
	refuse := func(c Cause, sen int64) []Word {
		d.push(msg1(rspVendDenied))
		d.event(Event{Kind: EventVendRefused, Cause: c, Price: sen, Item: item, Detail: scaled})
		return d.ack()
	}
	sen, err := d.cfg.Scale.ToSen(scaled)
	switch {
	case err != nil || scaled == 0 || scaled == 0xFFFF:
		return refuse(CausePrice, -1)
	case d.vendsDone > 0 && !d.cfg.Multivend:
		return refuse(CauseMultivend, sen)
	case d.ev.free() < eventReserve:
		return refuse(CauseBacklog, sen)
	}
	d.nextVend++
	d.v = vend{
		id:       d.nextVend,
		phase:    vendPending,
		price:    sen,
		item:     item,
		deadline: d.cfg.Now().Add(d.cfg.MaxResponse - d.cfg.VendMargin),
	}
	d.state = StateVend
	d.event(Event{Kind: EventVendRequested, Vend: d.v.id, Price: sen, Item: item})
	return d.ack()
}

// endVend denies the vend in progress and reports e about it.
func (d *Device) endVend(e Event) {
	e.Vend, e.Price, e.Item = d.v.id, d.v.price, d.v.item
	d.push(msg1(rspVendDenied))
	d.v = vend{}
	d.state = StateSessionIdle
	d.event(e)
}

func (d *Device) checkDeadline(now time.Time) {
	if d.state == StateVend && d.v.phase == vendPending && !now.Before(d.v.deadline) {
		d.endVend(Event{Kind: EventVendTimedOut})
	}
}
