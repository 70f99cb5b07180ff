package payment

import (
	"errors"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// IPPAutoSelect is how a plan is chosen when the controller does not
// choose one.
type IPPAutoSelect string

// The IPP auto-selection policies.
const (
	IPPSelectNone   IPPAutoSelect = "none"   // wait for the controller
	IPPSelectSingle IPPAutoSelect = "single" // take the plan when only one is offered
	IPPSelectFirst  IPPAutoSelect = "first"  // take the first plan offered
)

// SuccessAfterCancel is what a success that arrives after the kiosk asked
// to cancel does.
type SuccessAfterCancel string

// The policies for a success after a cancel.
const (
	AfterCancelVend   SuccessAfterCancel = "vend"   // the customer paid: release the product
	AfterCancelReview SuccessAfterCancel = "review" // record it, do not vend, flag for review
)

// Validate reports every problem of the config at once, each naming its
// key as the config file spells it (cancel_grace, timeouts.card.ack),
// so that the caller needs only to put its section before it. Zero
// durations are allowed where NewService gives a default.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, g := range []struct {
		key string
		d   time.Duration
	}{{"cancel_grace", c.CancelGrace}, {"reconnect_grace", c.ReconnectGrace}} {
		if g.d != 0 && (g.d < time.Second || g.d > 10*time.Minute) {
			bad("%s %s: want 1s to 10m", g.key, g.d)
		}
	}
	switch c.IPPAutoSelect {
	case IPPSelectNone, IPPSelectSingle, IPPSelectFirst:
	default:
		bad("ipp_auto_select %q: want none, single or first", c.IPPAutoSelect)
	}
	switch c.SuccessAfterCancel {
	case AfterCancelVend, AfterCancelReview:
	default:
		bad("success_after_cancel %q: want vend or review", c.SuccessAfterCancel)
	}
	for mode, t := range c.Timeouts {
		if !mobypay.ValidMode(mode) {
			bad("timeouts.%s: not a payment mode", mode)
			continue
		}
		for _, d := range []struct {
			key string
			d   time.Duration
		}{{"ack", t.Ack}, {"result", t.Result}, {"plan", t.Plan}} {
			if d.d != 0 && (d.d < time.Second || d.d > time.Hour) {
				bad("timeouts.%s.%s %s: want 1s to 1h", mode, d.key, d.d)
			}
		}
	}
	return errors.Join(errs...)
}
