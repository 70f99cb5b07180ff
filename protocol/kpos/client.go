package kpos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Common carries the header fields of every message.
type Common struct {
	MsgVer           string `json:"msgVer"`
	BillerType       string `json:"billerType"`
	CallerDeviceType string `json:"callerDeviceType"`
	CallerDeviceVer  string `json:"callerDeviceVer"`
	SequenceNo       string `json:"sequenceNo"`
}

// Payment is the payment object of a submit. Only mrn and requiredPayment
// are documented; amount and currency follow the serial notification and
// the other modes (12-digit minor units, ISO 4217 numeric) [U].
type Payment struct {
	MRN             string `json:"mrn"`
	RequiredPayment string `json:"requiredPayment"`
	PaymentMethod   string `json:"paymentMethod"`
	Amount          string `json:"amount"`
	Currency        string `json:"currency"`
}

// SubmitRequest is 0011.
type SubmitRequest struct {
	Common
	SellerID     string   `json:"sellerId"`
	MID          string   `json:"mid"`
	IsPaymentReq string   `json:"isPaymentReq"`
	Payment      *Payment `json:"payment,omitempty"`
	IsInvoiceReq string   `json:"isInvoiceReq"`
}

// InquiryRequest is 001X.
type InquiryRequest struct {
	Common
	MID string `json:"mid"`
	MRN string `json:"mrn"`
}

// AbortRequest is 0031.
type AbortRequest struct {
	Common
	SellerID string `json:"sellerId"`
	MID      string `json:"mid"`
	MRN      string `json:"mrn"`
	DeviceSN string `json:"deviceSN"`
}

// HostReply is the union of the host's answers: submit and abort carry a
// resultCode; an inquiry answer carries the payment's outcome fields too.
type HostReply struct {
	SequenceNo    string `json:"sequenceNo"`
	ResultCode    string `json:"resultCode"`
	AdvMsg        string `json:"advMsg,omitempty"`
	AuthIDResp    string `json:"authIdResp,omitempty"`
	PaymentScheme string `json:"paymentScheme,omitempty"`
	MaskedPAN     string `json:"maskedPAN,omitempty"`
	HTR           string `json:"htr,omitempty"`
	PaymentMethod string `json:"paymentMethod,omitempty"`
	// MTI and Plaintext are kept as evidence.
	MTI       string `json:"-"`
	Plaintext string `json:"-"`
}

// AmountField writes sen as the 12-digit minor-unit amount.
func AmountField(sen int64) string { return fmt.Sprintf("%012d", sen) }

// Client calls the Finexus host.
type Client struct {
	BaseURL      string // e.g. https://host/fnx-fintech/sandbox/mqpos-host
	Keys         *Keys
	SourceSystem string
	HTTP         *http.Client
}

// Submit sends 0011 to /api/submit.
func (c *Client) Submit(ctx context.Context, r *SubmitRequest) (HostReply, error) {
	return c.call(ctx, "/api/submit", MTISubmit, r)
}

// Inquire sends 001X to /api/paymentInquiry.
func (c *Client) Inquire(ctx context.Context, r *InquiryRequest) (HostReply, error) {
	return c.call(ctx, "/api/paymentInquiry", MTIInquiry, r)
}

// Abort sends 0031 to /api/submit/abort.
func (c *Client) Abort(ctx context.Context, r *AbortRequest) (HostReply, error) {
	return c.call(ctx, "/api/submit/abort", MTIAbort, r)
}

// call posts one signed, encrypted message and opens the signed answer.
// The answer's MTI is taken as sent: the documentation does not give the
// reply MTIs [U].
func (c *Client) call(ctx context.Context, path, mti string, v any) (HostReply, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return HostReply{}, err
	}
	body, sig, err := c.Keys.Seal(mti, plain)
	if err != nil {
		return HostReply{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return HostReply{}, fmt.Errorf("kpos: %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Signature", sig)
	if c.SourceSystem != "" {
		req.Header.Set("sourceSystem", c.SourceSystem)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return HostReply{}, fmt.Errorf("kpos: %s: %w", path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return HostReply{}, fmt.Errorf("kpos: %s: reading answer: %w", path, err)
	}
	if len(rb) > MaxBody {
		return HostReply{}, fmt.Errorf("kpos: %s: answer over %d bytes", path, MaxBody)
	}
	if resp.StatusCode != http.StatusOK {
		return HostReply{}, fmt.Errorf("kpos: %s: HTTP %s", path, resp.Status)
	}
	rmti, rplain, err := c.Keys.Open(rb, resp.Header.Get("Signature"))
	if err != nil {
		return HostReply{}, fmt.Errorf("kpos: %s: answer: %w", path, err)
	}
	var hr HostReply
	if err := json.Unmarshal(rplain, &hr); err != nil {
		return HostReply{}, fmt.Errorf("%w: %s answer: %w", ErrInvalid, path, err)
	}
	if len(hr.ResultCode) != 5 {
		return HostReply{}, fmt.Errorf("%w: %s answer without a 5-character resultCode", ErrInvalid, path)
	}
	hr.MTI, hr.Plaintext = rmti, string(rplain)
	return hr, nil
}
