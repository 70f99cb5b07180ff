package mdb

// The payment side's end of the device: the events it drains and the
// answers it gives. Each call holds the device's mutex briefly, as
// Handle does, and never blocks on the bus.

func (d *Device) event(e Event) {
	d.ev.push(e)
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// Notify is signalled (without blocking, at most one pending signal)
// whenever events are waiting; drain them with Events.
func (d *Device) Notify() <-chan struct{} { return d.notify }

// Events appends the waiting events to dst, oldest first, and forgets
// them.
func (d *Device) Events(dst []Event) []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ev.drain(dst)
}

// LostEvents counts events dropped because the ring was full. Only
// non-vend events can be lost; see eventReserve.
func (d *Device) LostEvents() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ev.lost
}

// Approve answers vend id with Vend Approved for amount sen. The amount
// may be less than the price (a discount), never more. It fails with
// ErrNoVend when that vend is not waiting (cancelled, reset, answered, or
// never was), ErrTooLate when it timed out, and ErrAmount when amount
// cannot be sent; then nothing reaches the VMC, and money already taken
// must be given back by the payment side.
func (d *Device) Approve(id uint32, amount int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == StateVend && d.v.id == id && d.v.phase == vendPending {
		d.checkDeadline(d.cfg.Now())
		if d.state != StateVend {
			return ErrTooLate
		}
	}
	if d.state != StateVend || d.v.id != id || d.v.phase != vendPending {
		return ErrNoVend
	}
	if amount > d.v.price || amount <= 0 {
		return ErrAmount
	}
	scaled, err := d.cfg.Scale.FromSen(amount)
	if err != nil {
		return err
	}
	m := msg{code: rspVendApproved, n: 3}
	m.b[0], m.b[1], m.b[2] = rspVendApproved, byte(scaled>>8), byte(scaled)
	if !d.push(m) {
		return ErrQueueFull
	}
	d.v.phase = vendApproval
	d.v.approved = amount
	return nil
}

// Deny answers vend id with Vend Denied.
func (d *Device) Deny(id uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != StateVend || d.v.id != id || d.v.phase != vendPending {
		return ErrNoVend
	}
	d.push(msg1(rspVendDenied))
	d.v = vend{}
	d.state = StateSessionIdle
	return nil
}

// CancelSession asks the VMC to end the session (Session Cancel
// Request), as a reader does when its card is taken away. A vend waiting
// for its payment is denied first (EventVendCancelled, CauseSessionCancel).
// The VMC answers with Session Complete. A vend the VMC holds an approval
// for is not affected: it ends with the VMC's report.
func (d *Device) CancelSession() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.state == StateVend && d.v.phase == vendPending:
		d.endVend(Event{Kind: EventVendCancelled, Cause: CauseSessionCancel})
	case d.state == StateSessionIdle, d.state == StateVend, d.state == StateEnabled && d.beginQueued:
		// A Begin Session still queued goes first, then the cancel; a
		// vend the VMC holds an approval for is reported first.
	default:
		return ErrNoSession
	}
	if !d.queued(rspSessionCancel) && !d.push(msg1(rspSessionCancel)) {
		return ErrQueueFull
	}
	return nil
}

// BeginSession announces a session with funds sen available (negative:
// not known, FFFFh on the wire). The reader must be enabled and idle.
func (d *Device) BeginSession(funds int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != StateEnabled || d.beginQueued {
		return ErrNotEnabled
	}
	d.queueBegin(funds)
	if !d.beginQueued {
		return ErrQueueFull
	}
	return nil
}

// Malfunction queues a Malfunction/Error response with code (error type
// in the high nibble, a subcode in the low one), reported once: kioskd's
// errors are transient by the standard's terms, e.g. 1100yyyy when the
// refund after a Vend Failure could not be made.
func (d *Device) Malfunction(code byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := msg1(rspMalfunction)
	m.b[1] = code
	m.n = 2
	if !d.push(m) {
		return ErrQueueFull
	}
	return nil
}

// State is the device's current state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Options is the optional features the VMC enabled.
func (d *Device) Options() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.options
}
