package mdb

// EventKind says what happened on the bus that the payment side must
// know about.
type EventKind uint8

const (
	_ EventKind = iota
	// EventReset: the VMC reset the reader. Any vend it interrupted
	// was reported just before, as EventVendCancelled (Cause
	// CauseReset) or EventVendUnconfirmed.
	EventReset
	// EventSetup: the VMC sent its configuration; Detail is its level.
	EventSetup
	// EventEnabled and EventDisabled: Reader Enable and Reader Disable.
	EventEnabled
	EventDisabled
	// EventVendRequested: start a payment of Price sen for Item; answer
	// with Approve(Vend, amount) or Deny(Vend).
	EventVendRequested
	// EventVendCancelled: the vend is off before the VMC saw an
	// approval (Cause says why). If Approved, the payment side had
	// already approved it: the money must be voided or refunded.
	EventVendCancelled
	// EventVendTimedOut: no answer came before the VMC's patience
	// (MaxResponse less VendMargin) ran out; the device denied the
	// vend. A payment still running must be cancelled, and one that
	// succeeds later must be refunded: Approve now fails.
	EventVendTimedOut
	// EventVendSucceeded: the VMC dispensed Item (vend released).
	EventVendSucceeded
	// EventVendFailed: the VMC approved but could not dispense; a refund
	// of Price sen is owed.
	EventVendFailed
	// EventVendUnconfirmed: the VMC was reset after it may have
	// received Vend Approved and before it reported Vend Success or
	// Failure. The standard says to take such a reset as a success;
	// kioskd's rule is that an unconfirmed vend is shown for review
	// (vend_unknown), never approved again.
	EventVendUnconfirmed
	// EventVendRefused: the device denied a Vend Request by itself (Cause
	// says why); no payment was started. Price is -1 when the wire price
	// could not be converted.
	EventVendRefused
	// EventSessionCompleted: Session Complete; the device answered End
	// Session.
	EventSessionCompleted
	// EventSessionCancelled: a Begin Session the VMC had not seen yet
	// was withdrawn (Reader Disable or Reader Cancel).
	EventSessionCancelled
	// EventReaderCancelled: Reader Cancel in the Enabled state (abort a
	// pre-authorisation, if one is running).
	EventReaderCancelled
	// EventCashSale: the VMC sold Item for Price sen in cash (audit).
	// Price is -1 when the wire price could not be converted; Detail
	// then holds the scaled wire value.
	EventCashSale
	// EventOutOfSequence: a command the current state does not allow;
	// Detail is the first byte and the sub-command (AddrCmd<<8 | sub).
	// The device answered Command Out Of Sequence; the VMC will reset it.
	EventOutOfSequence
)

var eventNames = [...]string{
	EventReset:            "reset",
	EventSetup:            "setup",
	EventEnabled:          "enabled",
	EventDisabled:         "disabled",
	EventVendRequested:    "vend-requested",
	EventVendCancelled:    "vend-cancelled",
	EventVendTimedOut:     "vend-timed-out",
	EventVendSucceeded:    "vend-succeeded",
	EventVendFailed:       "vend-failed",
	EventVendUnconfirmed:  "vend-unconfirmed",
	EventVendRefused:      "vend-refused",
	EventSessionCompleted: "session-completed",
	EventSessionCancelled: "session-cancelled",
	EventReaderCancelled:  "reader-cancelled",
	EventCashSale:         "cash-sale",
	EventOutOfSequence:    "out-of-sequence",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "EventKind(?)"
}

// Cause says why a vend was cancelled or refused.
type Cause uint8

const (
	CauseNone          Cause = iota
	CauseVendCancel          // the VMC sent Vend Cancel
	CauseReset               // the VMC sent Reset
	CausePrice               // the price cannot be converted, or is zero
	CauseMultivend           // a second vend in a session, multivend off
	CauseBacklog             // the payment side is not draining events
	CauseSessionCancel       // the payment side called CancelSession
)

// Event is one thing for the payment side. It is a plain value so that
// recording one on the hot path allocates nothing.
type Event struct {
	Kind     EventKind
	Vend     uint32 // the vend's id, for the vend events; ids start at 1
	Price    int64  // sen
	Item     uint16
	Approved bool // EventVendCancelled: an approval was withdrawn
	Cause    Cause
	Detail   uint16
}

// eventCap is the event ring's size; eventReserve slots are kept for the
// outcomes of vends already started (a Vend Request is refused when
// fewer are free), so that a success, failure or unconfirmed vend is
// never lost to a payment side that is slow to drain.
const (
	eventCap     = 64
	eventReserve = 8
)

type eventRing struct {
	buf  [eventCap]Event
	head int
	n    int
	lost uint64
}

func (r *eventRing) free() int { return eventCap - r.n }

func (r *eventRing) push(e Event) {
	if r.n == eventCap {
		r.lost++
		return
	}
	r.buf[(r.head+r.n)%eventCap] = e
	r.n++
}

func (r *eventRing) drain(dst []Event) []Event {
	for r.n > 0 {
		dst = append(dst, r.buf[r.head])
		r.head = (r.head + 1) % eventCap
		r.n--
	}
	return dst
}
