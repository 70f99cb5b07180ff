package payment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// String writes the amount with two decimals; any int64, negative included
// (the magnitude is taken as uint64 so that the most negative value is
// written correctly too).
func (s Sen) String() string {
	return string(s.appendText(make([]byte, 0, 24)))
}

func (s Sen) appendText(b []byte) []byte {
	u := uint64(s)
	if s < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/100, 10)
	return append(b, '.', byte('0'+u%100/10), byte('0'+u%10))
}

// MarshalJSON writes the decimal string.
func (s Sen) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 26), '"')
	return append(s.appendText(b), '"'), nil
}

// UnmarshalJSON reads back whatever MarshalJSON writes, for any int64,
// negative included: the journal must read every record it wrote (a
// peer's result may state a negative amount, and that is kept as stated).
// It also reads a JSON number ("7.5", "-1") exactly; null leaves the value
// as it is, as encoding/json does for its own types. Operator input goes
// through ParseAmount, which stays strict.
func (s *Sen) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	text := b
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		text = text[1 : len(text)-1]
	}
	v, ok := parseSen(text)
	if !ok {
		return fmt.Errorf("payment: amount %.40s: want a decimal number of RM with at most two decimals in the int64 range of sen", b)
	}
	*s = v
	return nil
}

// parseSen reads an optional '-', digits and at most two decimals as sen,
// refusing anything outside the int64 range.
func parseSen(b []byte) (Sen, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	intPart, frac, hasDot := bytes.Cut(b, []byte("."))
	if len(intPart) == 0 || len(frac) > 2 || (hasDot && len(frac) == 0) {
		return 0, false
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -2^63 is representable
	}
	var u uint64
	digit := func(c byte) bool {
		if c < '0' || c > '9' {
			return false
		}
		d := uint64(c - '0')
		if u > (limit-d)/10 {
			return false
		}
		u = u*10 + d
		return true
	}
	for _, c := range intPart {
		if !digit(c) {
			return 0, false
		}
	}
	for i := range 2 {
		c := byte('0')
		if i < len(frac) {
			c = frac[i]
		}
		if !digit(c) {
			return 0, false
		}
	}
	if neg {
		return Sen(-u), true
	}
	return Sen(u), true
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
	Raw               json.RawMessage `json:"raw,omitempty"` // the plan as signed
}

// planJSON is Plan on disk and on the wire. Raw is written as JSON ("raw")
// only when encoding/json gives it back byte for byte; anything else (the
// canonical form may hold NaN or Infinity, which is not JSON, or '<', '>'
// and '&', which encoding/json rewrites as \u003c...) is written as a
// string ("raw_text"), so that a plan never makes a record unwritable or
// comes back changed.
type planJSON struct {
	ID                string          `json:"id"`
	Frequency         string          `json:"frequency,omitempty"`
	TotalInstallments int64           `json:"total_installments"`
	Raw               json.RawMessage `json:"raw,omitempty"`
	RawText           *string         `json:"raw_text,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (p Plan) MarshalJSON() ([]byte, error) {
	pj := planJSON{ID: p.ID, Frequency: p.Frequency, TotalInstallments: p.TotalInstallments}
	switch {
	case len(p.Raw) == 0:
	case rawExact(p.Raw):
		pj.Raw = p.Raw
	default:
		s := string(p.Raw)
		pj.RawText = &s
	}
	return json.Marshal(pj)
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *Plan) UnmarshalJSON(b []byte) error {
	var pj planJSON
	if err := json.Unmarshal(b, &pj); err != nil {
		return err
	}
	*p = Plan{ID: pj.ID, Frequency: pj.Frequency, TotalInstallments: pj.TotalInstallments, Raw: pj.Raw}
	if pj.RawText != nil {
		p.Raw = json.RawMessage(*pj.RawText)
	}
	if len(p.Raw) == 0 {
		p.Raw = nil
	}
	return nil
}

// rawExact reports whether encoding/json writes raw unchanged: it is
// valid, compact JSON with nothing that the HTML-safe encoder escapes.
func rawExact(raw []byte) bool {
	if !json.Valid(raw) || bytes.ContainsAny(raw, "<>&\u2028\u2029") {
		return false
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return false
	}
	return bytes.Equal(c.Bytes(), raw)
}

// Txn is one payment as journaled.
type Txn struct {
	ID       string `json:"txn_id"`
	Provider string `json:"provider"`
	Mode     string `json:"mode"`
	Amount   Sen    `json:"amount"`
	State    State  `json:"state"`
	Vend     Vend   `json:"vend"`

	// PulsesTotal is the coin-pulse train of a pulses-mode vend (Amount
	// over the pulse value), journaled with the move to releasing and
	// never changed; PulsesDone counts the pulses completed, journaled
	// after each one and before the next starts, so a crash leaves at
	// most one pulse in doubt. Both are zero for a one-pulse vend.
	PulsesTotal int `json:"pulses_total,omitempty"`
	PulsesDone  int `json:"pulses_done,omitempty"`

	Plans  []Plan `json:"plans,omitempty"`
	PlanID string `json:"plan_id,omitempty"`

	POSTransactionID string `json:"pos_transaction_id"`
	AuthCode         string `json:"auth_code,omitempty"`
	CardLast4        string `json:"card_last4,omitempty"`
	PosID            string `json:"pos_id,omitempty"`
	PaidAmount       *Sen   `json:"paid_amount,omitempty"` // as the result stated it, in sen
	// PaidAmountText is the amount as the result stated it, as canonical
	// number text ("-1.0", "NaN", "\"1.00\""), kept even when it is no
	// whole number of sen and PaidAmount is therefore nil.
	PaidAmountText string `json:"paid_amount_text,omitempty"`

	// Key is the controller's idempotency key (its order id): at most one
	// payment per key, ever (the journal indexes it).
	Key string `json:"idempotency_key,omitempty"`
	// Quarantined marks a record that could not be decoded and was moved
	// aside at start; only ID, State, Vend, Review, Settled and the times
	// are meaningful (see Quarantined.Txn). Never set on a stored record.
	Quarantined bool `json:"quarantined,omitempty"`

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
	if nu.ID != old.ID || nu.Amount != old.Amount || nu.Mode != old.Mode || nu.Provider != old.Provider || nu.Key != old.Key {
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
	return checkPulses(old, nu)
}

// checkPulses holds a pulse train's record to what the relay can have
// done: the train is fixed as the vend starts, the count of pulses given
// only grows, only while releasing, never past the train, and a train is
// released only once every pulse is on record.
func checkPulses(old, nu *Txn) error {
	if nu.PulsesTotal != old.PulsesTotal {
		if old.PulsesTotal != 0 || old.Vend != VendNone || nu.Vend != VendReleasing || nu.PulsesTotal < 0 {
			return fmt.Errorf("%w: %s pulse train %d -> %d outside the move to releasing", ErrTransition, old.ID, old.PulsesTotal, nu.PulsesTotal)
		}
	}
	if nu.PulsesDone != old.PulsesDone {
		switch {
		case nu.PulsesDone < old.PulsesDone:
			return fmt.Errorf("%w: %s pulses done %d -> %d", ErrTransition, old.ID, old.PulsesDone, nu.PulsesDone)
		case nu.PulsesDone > nu.PulsesTotal:
			return fmt.Errorf("%w: %s pulses done %d of a train of %d", ErrTransition, old.ID, nu.PulsesDone, nu.PulsesTotal)
		case old.Vend != VendReleasing || nu.Vend != VendReleasing:
			return fmt.Errorf("%w: %s pulses done %d -> %d while vend %s -> %s", ErrTransition, old.ID, old.PulsesDone, nu.PulsesDone, old.Vend, nu.Vend)
		}
	}
	if nu.Vend == VendReleased && nu.Vend != old.Vend && nu.PulsesDone != nu.PulsesTotal {
		return fmt.Errorf("%w: %s released with %d of %d pulses on record", ErrTransition, old.ID, nu.PulsesDone, nu.PulsesTotal)
	}
	return nil
}

// pulsesConfirmed is a train's progress as a review reads it.
func (t *Txn) pulsesConfirmed() string {
	return fmt.Sprintf("%d of %d pulses confirmed", t.PulsesDone, t.PulsesTotal)
}

// Summary is the payment on one line, as kioskd's commands print it:
// state, id, mode and amount, then whichever of the POS's transaction id,
// auth code, plan, vend state, error and review are set.
func (t Txn) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s RM %s", t.State, t.ID, t.Mode, t.Amount)
	if t.POSTransactionID != "" {
		fmt.Fprintf(&b, " pos_txn=%s", t.POSTransactionID)
	}
	if t.AuthCode != "" {
		fmt.Fprintf(&b, " auth=%s", t.AuthCode)
	}
	if t.PlanID != "" {
		fmt.Fprintf(&b, " plan=%s", t.PlanID)
	}
	if t.Vend != VendNone && t.Vend != "" {
		fmt.Fprintf(&b, " vend=%s", t.Vend)
	}
	if t.PulsesTotal > 0 {
		fmt.Fprintf(&b, " pulses=%d/%d", t.PulsesDone, t.PulsesTotal)
	}
	if t.Error != "" {
		fmt.Fprintf(&b, " error=%q", t.Error)
	}
	if t.Review != "" {
		fmt.Fprintf(&b, " REVIEW: %s", t.Review)
	}
	return b.String()
}
