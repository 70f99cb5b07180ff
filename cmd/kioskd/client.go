package main

// The typed client of the daemon's control socket, shared by the client commands.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// client talks to a running kioskd over its control socket.
type client struct {
	hc   *http.Client
	path string
}

type clientFlags struct{ config, control string }

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "find the daemon through this config's control socket (default: $KIOSKD_CONFIG, /data/kioskd.toml, /etc/kioskd/kioskd.toml)")
	fs.StringVar(&c.control, "control", "", "control socket path (overrides -config)")
}

// configSearch is where client commands look for the machine's config
// when given neither -config nor -control: on an image the data
// partition's config takes precedence over the one in /etc.
var configSearch = []string{"/data/kioskd.toml", "/etc/kioskd/kioskd.toml"}

// configPath returns -config, else $KIOSKD_CONFIG, else the first config
// that exists on this machine, else "" (the embedded default).
func (c *clientFlags) configPath() string {
	if c.config != "" {
		return c.config
	}
	if p := os.Getenv("KIOSKD_CONFIG"); p != "" {
		return p
	}
	for _, p := range configSearch {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func (c *clientFlags) client() (*client, error) {
	path := c.control
	if path == "" {
		cfg, err := loadConfig(c.configPath())
		if err != nil {
			return nil, err
		}
		path = cfg.Control.Socket
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &client{hc: &http.Client{Transport: tr}, path: path}, nil
}

// apiError is an answer from the daemon that is not a success.
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return e.Msg }

// noAnswerError is a request the daemon did not answer: it could not
// be connected to (or did not answer the event stream in time), or it
// went away before it finished answering.
type noAnswerError struct {
	path      string
	midAnswer bool
	err       error
}

func (e *noAnswerError) Error() string {
	if e.midAnswer {
		return fmt.Sprintf("kioskd at %s went away while answering: %v", e.path, e.err)
	}
	return fmt.Sprintf("kioskd not reachable at %s: %v", e.path, e.err)
}

func (e *noAnswerError) Unwrap() error { return e.err }

// decodeError is an answer from the daemon that this client cannot read.
type decodeError struct {
	what string
	raw  []byte
	err  error
}

func (e *decodeError) Error() string { return fmt.Sprintf("cannot decode %s: %v", e.what, e.err) }

func (e *decodeError) Unwrap() error { return e.err }

// answered reports whether err came with an answer from the daemon (a
// refusal or one it cannot decode), as opposed to a lost or missing one.
func answered(err error) bool {
	var ae *apiError
	var de *decodeError
	return errors.As(err, &ae) || errors.As(err, &de)
}

// sentNothing reports an error that proves the request never left this
// process: the control socket could not even be connected to.
func sentNothing(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.send(ctx, method, path, nil, body, out)
	return err
}

// send makes one request and decodes a success into out. It returns the
// success's status code; an error is an *apiError (the daemon said no), a
// *decodeError (it answered something out cannot hold), a *noAnswerError
// (no complete answer: the daemon is unreachable or went away) or one
// from making the request (nothing was sent).
func (c *client) send(ctx context.Context, method, path string, hdr http.Header, body, out any) (int, error) {
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
		return 0, &noAnswerError{path: c.path, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		if e.Error == "" {
			e.Error = method + " " + path + ": " + resp.Status
		}
		return 0, &apiError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	// Read the whole answer first, so that a daemon that goes away
	// mid-answer is told apart from an answer that cannot be decoded.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, &noAnswerError{path: c.path, midAnswer: true, err: err}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, &decodeError{what: "the answer to " + method + " " + path, raw: b, err: err}
	}
	return resp.StatusCode, nil
}

// streamItem is one event from the daemon's stream or, with err set, one
// that cannot be decoded; kind and txn say what it was about either way
// (as far as can be told).
type streamItem struct {
	ev   payment.Event
	kind string
	txn  string
	err  error
}

// eventStream is an open GET /v1/events. Its channel closes when the
// stream ends; err then says why (nil: the daemon closed it).
type eventStream struct {
	ch     <-chan streamItem
	ended  chan struct{}
	cancel context.CancelFunc
	err    error
}

// close stops the stream; a nil stream is fine.
func (s *eventStream) close() {
	if s != nil {
		s.cancel()
	}
}

// dead reports a stream that has ended.
func (s *eventStream) dead() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// stream opens the event stream, which lives until ctx ends or it is
// closed. The daemon answers it at once (with the present state): no
// answer within requestTimeout, or before wait ends, is an error.
func (c *client) stream(ctx, wait context.Context) (*eventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	timer := time.AfterFunc(requestTimeout, cancel)
	stop := context.AfterFunc(wait, cancel)
	resp, err := c.hc.Do(req)
	late := !timer.Stop()
	if !stop() {
		late = true
	}
	if late {
		if err == nil {
			resp.Body.Close()
		}
		err = errors.New("no answer to GET /v1/events in time")
	}
	if err != nil {
		cancel()
		return nil, &noAnswerError{path: c.path, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, &apiError{resp.StatusCode, "event stream: " + resp.Status}
	}
	ch := make(chan streamItem, 16)
	s := &eventStream{ch: ch, ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(ch)
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		kind := ""
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				kind = ""
				continue
			}
			if k, ok := strings.CutPrefix(line, "event:"); ok {
				kind = strings.TrimSpace(k)
				continue
			}
			data, ok := strings.CutPrefix(line, "data:")
			if !ok {
				continue // a comment (keep-alive) or a field we do not use
			}
			select {
			case ch <- decodeEvent(kind, strings.TrimPrefix(data, " ")):
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() == nil {
			s.err = sc.Err()
		}
	}()
	return s, nil
}

// decodeEvent decodes one event's data. One that cannot be decoded still
// names its kind and payment where it can, so that it can be reported.
func decodeEvent(kind, data string) streamItem {
	it := streamItem{kind: kind}
	if err := json.Unmarshal([]byte(data), &it.ev); err != nil {
		var head struct {
			Kind string `json:"kind"`
			Txn  struct {
				ID string `json:"txn_id"`
			} `json:"txn"`
		}
		json.Unmarshal([]byte(data), &head)
		it.ev, it.err, it.txn = payment.Event{}, err, head.Txn.ID
		if it.kind == "" {
			it.kind = head.Kind
		}
		return it
	}
	if it.kind == "" {
		it.kind = it.ev.Kind
	}
	if it.ev.Txn != nil {
		it.txn = it.ev.Txn.ID
	}
	return it
}

// events is the stream's decodable events, for a caller waiting for one
// of them. It ends at the first event it cannot decode, so that such a
// caller fails instead of waiting for an event it would never see.
func (c *client) events(ctx context.Context) (<-chan payment.Event, error) {
	s, err := c.stream(ctx, ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan payment.Event, 16)
	go func() {
		defer close(ch)
		defer s.close()
		for it := range s.ch {
			if it.err != nil {
				return
			}
			select {
			case ch <- it.ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// clientFail reports a client command's error and returns its exit code:
// no answer from the daemon, a refusal or an unreadable answer, or else
// the command's own config or arguments (nothing was sent).
func clientFail(e *env, err error) int {
	fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
	var na *noAnswerError
	switch {
	case errors.As(err, &na):
		return exitUnreachable
	case answered(err):
		return exitFail
	}
	return exitUsage
}

// done reports a payment that will not change any more.
func done(t payment.Txn) bool { return t.State.Final() && t.Vend != payment.VendReleasing }

func payExit(t payment.Txn) int {
	switch {
	case t.State == payment.Approved && t.Review == "" && t.Vend == payment.VendReleased:
		return exitOK
	case t.State == payment.Declined || t.State == payment.Cancelled:
		return exitDeclined
	}
	return exitUnclear
}

func describe(t payment.Txn) string {
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
	if t.Vend != payment.VendNone {
		fmt.Fprintf(&b, " vend=%s", t.Vend)
	}
	if t.Error != "" {
		fmt.Fprintf(&b, " error=%q", t.Error)
	}
	if t.Review != "" {
		fmt.Fprintf(&b, " REVIEW: %s", t.Review)
	}
	return b.String()
}
