package kpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Message types.
const (
	MTISubmit         = "0011"
	MTISubmitReply    = "0012" // [U] request MTI + 1, as on the serial link
	MTIInquiry        = "001X" // literal in every sample
	MTINotification   = "0025"
	MTINotificationOK = "0026"
	MTIAbort          = "0031"
	MTIAbortReply     = "0032" // [U]
)

// ResultSuccess is the resultCode of an approved payment.
const ResultSuccess = "00000"

// Outcome is what a resultCode means for the payment.
type Outcome int

// Outcomes.
const (
	Declined Outcome = iota
	Approved
	Pending // KPOS is still working: ask again, do not fail
)

func (o Outcome) String() string {
	switch o {
	case Approved:
		return "approved"
	case Pending:
		return "pending"
	}
	return "declined"
}

// Classify maps a resultCode. Only 00000 is success. KA022 (device is
// processing), KA024 (payment is in process) and KP063 (status unknown)
// mean the outcome is not known yet; everything else is a decline.
func Classify(resultCode string) Outcome {
	switch resultCode {
	case ResultSuccess:
		return Approved
	case "KA022", "KA024", "KP063":
		return Pending
	}
	return Declined
}

// Notification is the decrypted body of a 0025 payment notification.
type Notification struct {
	MsgVer           string `json:"msgVer"`
	BillerType       string `json:"billerType"`
	CallerDeviceType string `json:"callerDeviceType"`
	CallerDeviceVer  string `json:"callerDeviceVer"`
	SequenceNo       string `json:"sequenceNo"`
	MRN              string `json:"mrn"`
	ResultCode       string `json:"resultCode"`
	AuthIDResp       string `json:"authIdResp,omitempty"`
	PaymentScheme    string `json:"paymentScheme,omitempty"`
	MaskedPAN        string `json:"maskedPAN,omitempty"`
	HTR              string `json:"htr,omitempty"`
	PaymentMethod    string `json:"paymentMethod,omitempty"`
	AdvMsg           string `json:"advMsg,omitempty"`
}

// ErrInvalid wraps every validation failure of a decrypted message.
var ErrInvalid = errors.New("kpos: invalid message")

// field bounds from the notification table. maskedPAN is documented as 4
// long with a 13-character example; a PAN mask fits in 19.
var notificationFields = []struct {
	name     string
	get      func(*Notification) string
	max      int
	required bool
}{
	{"msgVer", func(n *Notification) string { return n.MsgVer }, 8, true},
	{"billerType", func(n *Notification) string { return n.BillerType }, 2, true},
	{"callerDeviceType", func(n *Notification) string { return n.CallerDeviceType }, 2, true},
	{"callerDeviceVer", func(n *Notification) string { return n.CallerDeviceVer }, 8, true},
	{"sequenceNo", func(n *Notification) string { return n.SequenceNo }, 16, true},
	{"mrn", func(n *Notification) string { return n.MRN }, 40, true},
	{"resultCode", func(n *Notification) string { return n.ResultCode }, 5, true},
	{"authIdResp", func(n *Notification) string { return n.AuthIDResp }, 16, false},
	{"paymentScheme", func(n *Notification) string { return n.PaymentScheme }, 2, false},
	{"maskedPAN", func(n *Notification) string { return n.MaskedPAN }, 19, false},
	{"htr", func(n *Notification) string { return n.HTR }, 20, false},
	{"paymentMethod", func(n *Notification) string { return n.PaymentMethod }, 2, false},
	{"advMsg", func(n *Notification) string { return n.AdvMsg }, 1000, false},
}

// ParseNotification decodes and validates a decrypted 0025 body. Unknown
// fields are tolerated (the table may grow); mistyped known fields are
// not. paymentMethod is typed Number in the docs but shown as "00": both a
// 2-digit string and a number are accepted.
func ParseNotification(plaintext []byte) (Notification, error) {
	var raw map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(plaintext))
	if err := d.Decode(&raw); err != nil {
		return Notification{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if d.More() {
		return Notification{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if pm, ok := raw["paymentMethod"]; ok && len(pm) > 0 && pm[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(pm, &n); err != nil {
			return Notification{}, fmt.Errorf("%w: paymentMethod: %w", ErrInvalid, err)
		}
		s := n.String()
		if len(s) == 1 {
			s = "0" + s
		}
		raw["paymentMethod"], _ = json.Marshal(s)
	}
	fixed, _ := json.Marshal(raw)
	var n Notification
	if err := json.Unmarshal(fixed, &n); err != nil {
		return Notification{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return n, n.Validate()
}

// Validate checks required fields and lengths.
func (n *Notification) Validate() error {
	var errs []string
	for _, f := range notificationFields {
		v := f.get(n)
		switch {
		case f.required && strings.TrimSpace(v) == "":
			errs = append(errs, f.name+" missing")
		case utf8.RuneCountInString(v) > f.max:
			errs = append(errs, fmt.Sprintf("%s longer than %d", f.name, f.max))
		case !utf8.ValidString(v):
			errs = append(errs, f.name+" not UTF-8")
		}
	}
	if n.ResultCode != "" && len(n.ResultCode) != 5 {
		errs = append(errs, "resultCode is not 5 characters")
	}
	if n.PaymentMethod != "" && (len(n.PaymentMethod) != 2 || strings.Trim(n.PaymentMethod, "0123456789") != "") {
		errs = append(errs, "paymentMethod is not 2 digits")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Outcome classifies the notification's resultCode.
func (n *Notification) Outcome() Outcome { return Classify(n.ResultCode) }

// Reply is the plaintext of our answer to a notification (0026): the
// serial twin carries only resultCode, so that is all we send.
type Reply struct {
	ResultCode string `json:"resultCode"`
}
