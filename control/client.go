package control

// The typed Go client of the control socket, used by the kioskd CLI and
// by any Go program that drives a kiosk.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client talks to a running kioskd over its control socket.
type Client struct {
	hc     *http.Client
	socket string
	// FirstAnswer bounds the wait for the event stream's first answer
	// (the daemon answers at once, with the present state).
	FirstAnswer time.Duration
}

// NewClient returns a client of the daemon listening on socket. It does
// not connect until a request is made.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{hc: &http.Client{Transport: tr}, socket: socket, FirstAnswer: 10 * time.Second}
}

// Socket returns the control socket's path.
func (c *Client) Socket() string { return c.socket }

// APIError is an answer from the daemon that is not a success.
type APIError struct {
	Code int    // the HTTP status
	Msg  string // the daemon's Error, or the method, path and status
}

func (e *APIError) Error() string { return e.Msg }

// NoAnswerError is a request the daemon did not answer: it could not be
// connected to (or did not answer the event stream in time), or it went
// away before it finished answering.
type NoAnswerError struct {
	Socket    string
	MidAnswer bool
	Err       error
}

func (e *NoAnswerError) Error() string {
	if e.MidAnswer {
		return fmt.Sprintf("kioskd at %s went away while answering: %v", e.Socket, e.Err)
	}
	return fmt.Sprintf("kioskd not reachable at %s: %v", e.Socket, e.Err)
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

// DecodeError is an answer from the daemon that this client cannot read.
// Raw is the answer as it came.
type DecodeError struct {
	What string
	Raw  []byte
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("cannot decode %s: %v", e.What, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

// Answered reports whether err came with an answer from the daemon (a
// refusal or one that cannot be decoded), as opposed to a lost or
// missing one.
func Answered(err error) bool {
	var ae *APIError
	var de *DecodeError
	return errors.As(err, &ae) || errors.As(err, &de)
}

// SentNothing reports an error that proves the request never left this
// process: the control socket could not even be connected to.
func SentNothing(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// send makes one request and decodes a success into out (unless nil). It
// returns the success's status code; an error is an *APIError (the
// daemon said no), a *DecodeError (it answered something out cannot
// hold), a *NoAnswerError (no complete answer: the daemon is unreachable
// or went away) or one from making the request (nothing was sent).
func (c *Client) send(ctx context.Context, method, path string, hdr http.Header, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kioskd"+path, rd)
	if err != nil {
		return 0, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, &NoAnswerError{Socket: c.socket, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		if e.Error == "" {
			e.Error = method + " " + path + ": " + resp.Status
		}
		return 0, &APIError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	// Read the whole answer first, so that a daemon that goes away
	// mid-answer is told apart from an answer that cannot be decoded.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, &NoAnswerError{Socket: c.socket, MidAnswer: true, Err: err}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, &DecodeError{What: "the answer to " + method + " " + path, Raw: b, Err: err}
	}
	return resp.StatusCode, nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	_, err := c.send(ctx, http.MethodGet, path, nil, nil, out)
	return err
}

func (c *Client) post(ctx context.Context, path string, body, out any) error {
	_, err := c.send(ctx, http.MethodPost, path, nil, body, out)
	return err
}

func txnPath(id, action string) string {
	p := "/v1/payments/" + url.PathEscape(id)
	if action != "" {
		p += "/" + action
	}
	return p
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.get(ctx, "/v1/status", &st)
	return st, err
}

// StatusJSON is GET /v1/status as the daemon wrote it, so that a field
// this client does not know is passed on, not lost.
func (c *Client) StatusJSON(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.get(ctx, "/v1/status", &raw)
	return raw, err
}

// Pay asks for a payment (POST /v1/payments) with an optional
// Idempotency-Key. created is false when the key was used before and the
// answer is the payment already made.
func (c *Client) Pay(ctx context.Context, req PayRequest, key string) (t Txn, created bool, err error) {
	var hdr http.Header
	if key != "" {
		hdr = http.Header{HeaderIdempotencyKey: {key}}
	}
	code, err := c.send(ctx, http.MethodPost, "/v1/payments", hdr, req, &t)
	if err == nil && t.ID == "" {
		err = &DecodeError{What: "the answer to POST /v1/payments", Err: errors.New("no txn_id")}
	}
	return t, code == http.StatusCreated, err
}

// Payment is GET /v1/payments/{id}.
func (c *Client) Payment(ctx context.Context, id string) (Txn, error) {
	var t Txn
	err := c.get(ctx, txnPath(id, ""), &t)
	return t, err
}

// PaymentEvidence is GET /v1/payments/{id}?evidence=1.
func (c *Client) PaymentEvidence(ctx context.Context, id string) (TxnWithEvidence, error) {
	var t TxnWithEvidence
	err := c.get(ctx, txnPath(id, "")+"?evidence=1", &t)
	return t, err
}

// Journal is GET /v1/payments: the last n payments, newest first (0: all).
func (c *Client) Journal(ctx context.Context, n int) ([]Txn, error) {
	var list []Txn
	err := c.get(ctx, "/v1/payments?limit="+strconv.Itoa(n), &list)
	return list, err
}

// Cancel is POST /v1/payments/{id}/cancel.
func (c *Client) Cancel(ctx context.Context, id string) (Txn, error) {
	var t Txn
	err := c.post(ctx, txnPath(id, "cancel"), nil, &t)
	return t, err
}

// SelectPlan is POST /v1/payments/{id}/plan.
func (c *Client) SelectPlan(ctx context.Context, id, planID string) (Txn, error) {
	var t Txn
	err := c.post(ctx, txnPath(id, "plan"), PlanRequest{PlanID: planID}, &t)
	return t, err
}

// Reviews is GET /v1/reviews: the payments to look at; all adds those
// settled already.
func (c *Client) Reviews(ctx context.Context, all bool) ([]Txn, error) {
	path := "/v1/reviews"
	if all {
		path += "?all=1"
	}
	var list []Txn
	err := c.get(ctx, path, &list)
	return list, err
}

// Settle is POST /v1/payments/{id}/settle.
func (c *Client) Settle(ctx context.Context, id, note string) (Txn, error) {
	var t Txn
	err := c.post(ctx, txnPath(id, "settle"), SettleRequest{Note: note}, &t)
	return t, err
}

// Evidence is GET /v1/evidence: the last n messages about no known
// payment, newest first (0: all kept), each as the daemon wrote it so
// that one this client cannot decode is still shown.
func (c *Client) Evidence(ctx context.Context, n int) ([]json.RawMessage, error) {
	var list []json.RawMessage
	err := c.get(ctx, "/v1/evidence?limit="+strconv.Itoa(n), &list)
	return list, err
}

// Quarantine is GET /v1/quarantine.
func (c *Client) Quarantine(ctx context.Context) ([]Quarantined, error) {
	var list []Quarantined
	err := c.get(ctx, "/v1/quarantine", &list)
	return list, err
}

// Logs is GET /v1/logs: the daemon's last n log lines.
func (c *Client) Logs(ctx context.Context, n int) ([]string, error) {
	var lines []string
	err := c.get(ctx, "/v1/logs?n="+strconv.Itoa(n), &lines)
	return lines, err
}

// Selftest is POST /v1/selftest; relay also pulses the vend relay.
func (c *Client) Selftest(ctx context.Context, relay bool) ([]Check, error) {
	path := "/v1/selftest"
	if relay {
		path += "?relay=1"
	}
	var res []Check
	err := c.post(ctx, path, nil, &res)
	return res, err
}

// Pair is POST /v1/pair/print: print the pairing slip.
func (c *Client) Pair(ctx context.Context) (PairPrinted, error) {
	var p PairPrinted
	err := c.post(ctx, "/v1/pair/print", nil, &p)
	return p, err
}

// Health is GET /v1/health?min_up=D.
func (c *Client) Health(ctx context.Context, minUp time.Duration) (Health, error) {
	var h Health
	err := c.get(ctx, "/v1/health?min_up="+url.QueryEscape(minUp.String()), &h)
	return h, err
}

// Update is POST /v1/update: the update as it started.
func (c *Client) Update(ctx context.Context, req UpdateRequest) (Update, error) {
	var u Update
	err := c.post(ctx, "/v1/update", req, &u)
	return u, err
}
