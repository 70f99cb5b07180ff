package payment

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is a transaction's payment state. It only moves forward.
type State string

// Payment states.
const (
	Created         State = "created"
	Sent            State = "sent"
	Acked           State = "acked"
	PlansOffered    State = "plans_offered"
	PlanSelected    State = "plan_selected"
	CancelRequested State = "cancel_requested"
	Approved        State = "approved"
	Declined        State = "declined"
	Cancelled       State = "cancelled"
	TimedOut        State = "timed_out"
	Unknown         State = "unknown"
)

// rank orders states; a transition must go to a higher rank. All final
// states share the top rank, so no final state ever changes.
func (s State) rank() int {
	switch s {
	case Created:
		return 1
	case Sent:
		return 2
	case Acked:
		return 3
	case PlansOffered:
		return 4
	case PlanSelected:
		return 5
	case CancelRequested:
		return 6
	case Approved, Declined, Cancelled, TimedOut, Unknown:
		return 9
	}
	return 0
}

// Final reports whether the state is an outcome.
func (s State) Final() bool { return s.rank() == 9 }

// Valid reports a known state.
func (s State) Valid() bool { return s.rank() > 0 }

// Vend is the product release state, separate from the payment state.
type Vend string

// Vend states: none → releasing → released | failed. releasing is
// journaled before the relay moves; a releasing found at boot becomes
// unknown and is never pulsed again.
const (
	VendNone      Vend = "none"
	VendReleasing Vend = "releasing"
	VendReleased  Vend = "released"
	VendFailed    Vend = "failed"
	VendUnknown   Vend = "vend_unknown"
)

func vendMove(from, to Vend) bool {
	switch from {
	case VendNone:
		return to == VendReleasing
	case VendReleasing:
		return to == VendReleased || to == VendFailed || to == VendUnknown
	}
	return false
}

// Sen is an amount in integer sen (1/100 RM). It is written as a decimal
// string ("12.50") in JSON so that no float ever carries money.
type Sen int64

func (s Sen) String() string {
	neg := ""
	v := int64(s)
	if v < 0 {
		neg, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", neg, v/100, v%100)
}

// MarshalJSON writes the decimal string.
func (s Sen) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// UnmarshalJSON reads a decimal string or a JSON number, exactly.
func (s *Sen) UnmarshalJSON(b []byte) error {
	v, err := ParseAmount(strings.Trim(string(b), `"`))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseAmount reads "12.50", "12.5" or "12" as sen, refusing more than two
// decimals, signs and anything that is not plain decimal.
func ParseAmount(s string) (Sen, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || len(frac) > 2 || (hasDot && frac == "") || len(intPart) > 12 {
		return 0, fmt.Errorf("amount %q: want RM with at most two decimals, e.g. 12.50", s)
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q: want RM with at most two decimals, e.g. 12.50", s)
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	v, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return Sen(v), nil
}

// Plan is an IPP plan as offered by the POS.
type Plan struct {
	ID                string          `json:"id"`
	Frequency         string          `json:"frequency,omitempty"`
	TotalInstallments int64           `json:"total_installments"`
	Raw               json.RawMessage `json:"raw,omitempty"`
}

// Txn is one payment as journaled.
type Txn struct {
	ID       string `json:"txn_id"`
	Provider string `json:"provider"`
	Mode     string `json:"mode"`
	Amount   Sen    `json:"amount"`
	State    State  `json:"state"`
	Vend     Vend   `json:"vend"`

	Plans  []Plan `json:"plans,omitempty"`
	PlanID string `json:"plan_id,omitempty"`

	POSTransactionID string `json:"pos_transaction_id"`
	AuthCode         string `json:"auth_code,omitempty"`
	CardLast4        string `json:"card_last4,omitempty"`
	PosID            string `json:"pos_id,omitempty"`
	PaidAmount       *Sen   `json:"paid_amount,omitempty"` // as the result stated it

	Error string `json:"error"`
	// Review, when set, says why an operator must look at this payment:
	// a late or mismatched result, an interrupted vend, a lost link.
	Review   string `json:"review,omitempty"`
	Settled  string `json:"settled,omitempty"` // operator's note once reviewed
	Dropped  bool   `json:"pos_dropped,omitempty"`
	Evidence int    `json:"evidence"` // count of journaled messages about it

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// flag adds a review reason, keeping earlier ones.
func (t *Txn) flag(reason string) {
	if t.Review == "" {
		t.Review = reason
	} else if !strings.Contains(t.Review, reason) {
		t.Review += "; " + reason
	}
}

// ErrTransition is returned for a move the invariants forbid.
var ErrTransition = errors.New("payment: transition not allowed")

// checkMove enforces, at the storage layer, that states only move forward
// and the vend state only along none → releasing → released|failed|unknown,
// and that a vend only starts for an approved payment with nothing to review.
func checkMove(old, nu *Txn) error {
	if nu.ID != old.ID || nu.Amount != old.Amount || nu.Mode != old.Mode || nu.Provider != old.Provider {
		return fmt.Errorf("%w: identity of %s changed", ErrTransition, old.ID)
	}
	if !nu.State.Valid() {
		return fmt.Errorf("%w: unknown state %q", ErrTransition, nu.State)
	}
	if nu.State != old.State && nu.State.rank() <= old.State.rank() {
		return fmt.Errorf("%w: %s %s -> %s", ErrTransition, old.ID, old.State, nu.State)
	}
	if nu.Vend != old.Vend {
		if !vendMove(old.Vend, nu.Vend) {
			return fmt.Errorf("%w: %s vend %s -> %s", ErrTransition, old.ID, old.Vend, nu.Vend)
		}
		if nu.Vend == VendReleasing && (nu.State != Approved || nu.Review != "") {
			return fmt.Errorf("%w: %s vend without a clean approval (state %s, review %q)", ErrTransition, old.ID, nu.State, nu.Review)
		}
	}
	return nil
}
