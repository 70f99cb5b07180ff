package mobypay

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Message types.
const (
	TypeTransactionRequest = "transaction_request"
	TypeIPPPlanSelection   = "ipp_plan_selection"
	TypeCancelTransaction  = "cancel_transaction"
	TypeAck                = "ack"
	TypeTransactionResult  = "transaction_result"
	TypeError              = "error"
)

// Statuses of ack and transaction_result. They are matched exactly: the
// reference kiosk's substring match would take "unsuccessful" for success.
const (
	StatusProcessing   = "processing"
	StatusReceived     = "received"
	StatusPlanReceived = "plan_received"
	StatusSuccess      = "success"
	StatusApproved     = "approved"
	StatusFailed       = "failed"
	StatusIPPPlans     = "ipp_plans"
)

// Payment modes.
const (
	ModeCard      = "card"
	ModeBNPL      = "bnpl"
	ModeDuitNowQR = "duitnow_qr"
	ModeIPP       = "ipp"
)

// ValidMode reports whether m is one of the four payment modes.
func ValidMode(m string) bool {
	switch m {
	case ModeCard, ModeBNPL, ModeDuitNowQR, ModeIPP:
		return true
	}
	return false
}

// Message is a decoded payload. Known fields are typed; Payload keeps the
// whole canonical payload, unknown fields included, as evidence.
//
// Decoding is total: a field of an unexpected JSON type or value is left
// zero (TxnID and AmountText excepted) and described in Odd, so that every
// correctly signed message can reach the journal. Only a Clean message may
// be taken at its typed word: a clean success is IsSuccess() && Clean().
//
// A string field that carries a JSON number holds the number's canonical
// text and is not odd (a POS that sends 410 for "410" should not lose its
// outcome over it), except the words type, status, payment_mode and a
// plan's frequency, which must be strings. A JSON null is the same as an
// absent field.
type Message struct {
	Type string
	// TxnID is the txn_id as text, whatever its JSON type, so that ids
	// compare as text: a string's value, otherwise the canonical JSON text
	// of the value (123, 1.5, true, {"a":1}); empty when absent or null. Any
	// type but a string or a finite number is also noted in Odd.
	TxnID     string
	Status    string // as sent; a known status in other case is noted in Odd
	Timestamp string // epoch milliseconds, as sent
	Nonce     string
	KioskID   string
	PosID     string

	PaymentMode       string
	TransactionID     string
	AuthorizationCode string
	CardLast4         string
	PlanID            string
	ErrorMessage      string // transaction_result failed: error_message
	Text              string // error: message

	// Amount and HasAmount hold the amount when it is a finite JSON
	// number. NaN, ±Infinity (a literal beyond the double range included)
	// and anything that is not a number leave them zero and are noted in
	// Odd, so AmountSen never sees them.
	Amount    float64
	HasAmount bool
	// AmountText is the canonical JSON text of the amount as signed,
	// whatever its type: 1.0, -1.0, 2 (an integer stays one), NaN,
	// Infinity, null, and for a string its JSON text with the quotes,
	// "1.00", so that it can never be taken for a number. Empty when the
	// payload has no amount.
	AmountText string
	Plans      []Plan

	// Odd describes, one entry per field, what Decode found unexpected:
	// `amount is a string "1.00"`, `amount is NaN`, `plans is not an
	// array`, `plan 2 is not an object` (plans are counted from 0),
	// `transaction_id is an object`, `status "SUCCESS" differs from
	// "success" in case`, `no type`, `no nonce`. Nil for a clean message.
	Odd []string

	Payload string
}

// Plan is one IPP plan offered in transaction_result ipp_plans.
type Plan struct {
	ID                string // planId
	Frequency         string
	TotalInstallments int64
	Raw               string // the plan's canonical JSON
}

// IsSuccess reports a final successful result; "success" and "approved"
// mean the same. Only IsSuccess() && Clean() may be acted on.
func (m *Message) IsSuccess() bool {
	return m.Type == TypeTransactionResult && (m.Status == StatusSuccess || m.Status == StatusApproved)
}

// LooksLikeSuccess reports a message that a person would read as a
// successful result: type transaction_result and status success or
// approved, both ignoring ASCII case. A signed message that looks like a
// success but is not a clean one must be flagged, never dropped.
func (m *Message) LooksLikeSuccess() bool {
	return equalFoldASCII(m.Type, TypeTransactionResult) &&
		(equalFoldASCII(m.Status, StatusSuccess) || equalFoldASCII(m.Status, StatusApproved))
}

// Clean reports that Decode found nothing odd: every known field had the
// expected type, and type, nonce and timestamp were present.
func (m *Message) Clean() bool { return len(m.Odd) == 0 }

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// TimestampMillis parses the timestamp. Python's reference does int() on
// it, so a JSON number is accepted as well as a string of digits.
func (m *Message) TimestampMillis() (int64, error) {
	return parseMillis(m.Timestamp)
}

func parseMillis(s string) (int64, error) {
	if s == "" {
		return 0, newError("no timestamp")
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return 0, errorf("timestamp %.20q is not epoch milliseconds", s)
	}
	return ms, nil
}

// AmountSen converts the amount to integer sen. It succeeds only when the
// float sent is exactly the double nearest to a whole number of sen, so an
// amount such as 0.30000000000000004 never passes for 0.30.
func (m *Message) AmountSen() (int64, bool) {
	if !m.HasAmount {
		return 0, false
	}
	return FloatToSen(m.Amount)
}

// FloatToSen is the inverse of the kiosk's own amount encoding.
func FloatToSen(f float64) (int64, bool) {
	if math.IsNaN(f) || math.Abs(f) > float64(MaxAmountSen)/100 {
		return 0, false
	}
	n := math.Round(f * 100)
	if n/100 != f {
		return 0, false
	}
	return int64(n), true
}

var errNotOpened = newError("decode: no payload opened")

// Decode fills m from the payload of the last Open. It fails only when
// that Open did not get as far as a canonical payload (or there was none);
// after a successful Open it always succeeds, odd fields being described in
// m.Odd. After an Open that failed with ErrSignature it decodes the payload
// that was not signed, for diagnostics only. It must be called before the
// frame passed to Open is reused and before the codec builds or seals a
// message of its own (which replaces the canonical bytes it reads).
//
// Field values are taken as substrings of one string copy of the canonical
// payload whenever their canonical form needs no escapes (all realistic
// traffic), which keeps a clean message to a couple of allocations; only
// odd fields cost more.
func (c *Codec) Decode(m *Message) error {
	if c.root < 0 || int(c.root) >= len(c.p.nodes) {
		return errNotOpened
	}
	root := c.p.nodes[c.root]
	if s, e := c.span(c.root); s != 0 || e != len(c.canon) { // a builder ran since
		return errNotOpened
	}
	*m = Message{Payload: string(c.canon)}
	typeOK, nonceOK, timestampOK := true, true, true
	for _, k := range c.p.kids[root.kids : root.kids+root.nkids] {
		switch string(c.p.key(k)) {
		case "type":
			typeOK = c.str(m, &m.Type, -1, "type", k, asWord)
		case "txn_id":
			c.str(m, &m.TxnID, -1, "txn_id", k, asID)
		case "status":
			c.str(m, &m.Status, -1, "status", k, asWord)
		case "timestamp":
			timestampOK = c.str(m, &m.Timestamp, -1, "timestamp", k, asText)
		case "nonce":
			nonceOK = c.str(m, &m.Nonce, -1, "nonce", k, asText)
		case "kiosk_id":
			c.str(m, &m.KioskID, -1, "kiosk_id", k, asText)
		case "pos_id":
			c.str(m, &m.PosID, -1, "pos_id", k, asText)
		case "payment_mode":
			c.str(m, &m.PaymentMode, -1, "payment_mode", k, asWord)
		case "transaction_id":
			c.str(m, &m.TransactionID, -1, "transaction_id", k, asText)
		case "authorization_code":
			c.str(m, &m.AuthorizationCode, -1, "authorization_code", k, asText)
		case "card_last4":
			c.str(m, &m.CardLast4, -1, "card_last4", k, asText)
		case "plan_id":
			c.str(m, &m.PlanID, -1, "plan_id", k, asText)
		case "error_message":
			c.str(m, &m.ErrorMessage, -1, "error_message", k, asText)
		case "message":
			c.str(m, &m.Text, -1, "message", k, asText)
		case "amount":
			c.amount(m, k)
		case "plans":
			c.plans(m, k)
		}
	}
	if m.Type == "" && typeOK {
		m.Odd = append(m.Odd, "no type")
	}
	if m.Nonce == "" && nonceOK {
		m.Odd = append(m.Odd, "no nonce")
	}
	if m.Timestamp == "" && timestampOK {
		m.Odd = append(m.Odd, "no timestamp")
	}
	caseOdd(m, "type", m.Type, knownTypes)
	caseOdd(m, "status", m.Status, knownStatuses)
	return nil
}

var (
	knownTypes = []string{TypeTransactionRequest, TypeIPPPlanSelection, TypeCancelTransaction,
		TypeAck, TypeTransactionResult, TypeError}
	knownStatuses = []string{StatusProcessing, StatusReceived, StatusPlanReceived,
		StatusSuccess, StatusApproved, StatusFailed, StatusIPPPlans}
)

// caseOdd notes a value that is one of the known ones but for ASCII case.
func caseOdd(m *Message, field, v string, known []string) {
	if v == "" || slices.Contains(known, v) {
		return
	}
	for _, k := range known {
		if equalFoldASCII(v, k) {
			m.Odd = append(m.Odd, fmt.Sprintf("%s %q differs from %q in case", field, v, k))
			return
		}
	}
}

// odd notes that field (of plan number plan, if plan >= 0) is what.
func (m *Message) odd(plan int, field, what string) {
	if plan >= 0 {
		m.Odd = append(m.Odd, fmt.Sprintf("plan %d %s is %s", plan, field, what))
		return
	}
	m.Odd = append(m.Odd, field+" is "+what)
}

// span is where node n's canonical text lies in the canonical payload:
// its span in the frame when Open took the payload from there, else where
// AppendCanonical wrote it.
func (c *Codec) span(n int32) (start, end int) {
	nd := &c.p.nodes[n]
	if c.wire >= 0 {
		return int(nd.start - c.wire), int(nd.end - c.wire)
	}
	return int(nd.oStart), int(nd.oEnd)
}

// canonText is the canonical JSON text of node n in the payload copy.
func (c *Codec) canonText(canon string, n int32) string {
	s, e := c.span(n)
	return canon[s:e]
}

// describe names the type, and for a scalar the value, of node n:
// `a string "1.00"`, `a number 5`, `NaN`, `Infinity`, `an object`.
func (c *Codec) describe(canon string, n int32) string {
	text := c.canonText(canon, n)
	switch c.p.nodes[n].kind {
	case kObject:
		return "an object"
	case kArray:
		return "an array"
	case kString:
		return "a string " + excerpt(text)
	case kTrue, kFalse:
		return "a boolean " + text
	case kNull:
		return "null"
	case kNaN, kInf:
		return text
	}
	if text == "Infinity" || text == "-Infinity" { // a float literal beyond the double range
		return text
	}
	return "a number " + excerpt(text)
}

// excerpt bounds what Odd quotes of a value; Payload has all of it.
func excerpt(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max-3] + "..."
}

// How str reads a string field.
type strKind uint8

const (
	asWord strKind = iota // a name such as a type or status: a string only
	asText                // a string, or a finite number as its canonical text
	asID                  // as asText; any other value keeps its canonical text too
)

// str sets *dst from a string field and reports whether the field was as
// expected. Null is absence. A finite number is its canonical text unless
// the field is a word (type, status, payment mode): a POS that sends 410
// for "410" should not lose its outcome over it. Anything else is noted in
// Odd and leaves *dst empty, unless the field is an id that compares as
// text.
func (c *Codec) str(m *Message, dst *string, plan int, field string, n int32, how strKind) bool {
	nd := &c.p.nodes[n]
	switch nd.kind {
	case kString:
		*dst = c.stringValue(m.Payload, n)
		return true
	case kNull:
		return true
	case kNumber, kFloat:
		if text := c.canonText(m.Payload, n); how != asWord && text != "Infinity" && text != "-Infinity" {
			*dst = text
			return true
		}
	}
	if how == asID {
		*dst = c.canonText(m.Payload, n)
	}
	m.odd(plan, field, c.describe(m.Payload, n))
	return false
}

// stringValue returns the decoded value of string node n.
func (c *Codec) stringValue(canon string, n int32) string {
	nd := &c.p.nodes[n]
	start, end := c.span(n)
	s := canon[start+1 : end-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	// The canonicaliser decoded this string once already; it cannot fail.
	c.p.str, _ = decodeString(c.p.str[:0], c.p.in[nd.start:nd.end])
	return string(c.p.str)
}

func (c *Codec) amount(m *Message, n int32) {
	nd := &c.p.nodes[n]
	m.AmountText = c.canonText(m.Payload, n)
	switch nd.kind {
	case kNull:
		return
	case kNumber, kFloat:
		f := parseFloat(c.p.in[nd.start:nd.end])
		if !math.IsInf(f, 0) {
			m.Amount, m.HasAmount = f, true
			return
		}
		if nd.kind == kNumber {
			m.odd(-1, "amount", c.describe(m.Payload, n)+" beyond the double range")
			return
		}
	}
	m.odd(-1, "amount", c.describe(m.Payload, n))
}

func (c *Codec) plans(m *Message, n int32) {
	nd := &c.p.nodes[n]
	switch nd.kind {
	case kNull:
		return
	case kArray:
	default:
		m.Odd = append(m.Odd, "plans is not an array")
		return
	}
	plans := make([]Plan, 0, nd.nkids)
	for i, e := range c.p.kids[nd.kids : nd.kids+nd.nkids] {
		en := &c.p.nodes[e]
		if en.kind != kObject {
			m.Odd = append(m.Odd, fmt.Sprintf("plan %d is not an object", i))
			continue
		}
		pl := Plan{Raw: c.canonText(m.Payload, e)}
		idOK := true
		for _, k := range c.p.kids[en.kids : en.kids+en.nkids] {
			switch string(c.p.key(k)) {
			case "planId":
				idOK = c.str(m, &pl.ID, i, "planId", k, asText)
			case "frequency":
				c.str(m, &pl.Frequency, i, "frequency", k, asWord)
			case "totalInstallments":
				c.installments(m, &pl.TotalInstallments, i, k)
			}
		}
		if pl.ID == "" {
			if idOK {
				m.Odd = append(m.Odd, fmt.Sprintf("plan %d without planId", i))
			}
			continue
		}
		plans = append(plans, pl)
	}
	m.Plans = plans
}

// installments reads a count: an integer, or a float with a whole value.
func (c *Codec) installments(m *Message, dst *int64, plan int, n int32) {
	nd := &c.p.nodes[n]
	raw := c.p.in[nd.start:nd.end]
	switch nd.kind {
	case kNull:
		return
	case kNumber:
		if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			*dst = v
			return
		}
	case kFloat:
		if f := parseFloat(raw); f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			*dst = int64(f)
			return
		}
	}
	m.odd(plan, "totalInstallments", c.describe(m.Payload, n))
}
