package main

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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// Exit codes of kioskd pay.
const (
	exitDeclined = 1 // declined or cancelled: no money taken
	exitUnclear  = 3 // timed out, unknown, or paid but needs an operator
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
// *decodeError (it answered something out cannot hold) or anything else
// (no complete answer: the daemon is unreachable or went away).
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
		return 0, fmt.Errorf("kioskd not reachable at %s: %w", c.path, err)
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
		return 0, fmt.Errorf("kioskd at %s went away while answering: %w", c.path, err)
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
		return nil, fmt.Errorf("kioskd not reachable at %s: %w", c.path, err)
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

func clientFail(e *env, err error) int {
	fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
	if answered(err) {
		return exitFail
	}
	return exitUsage // daemon unreachable
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

// How kioskd pay keeps in touch with the daemon. Variables so that tests
// can shorten them.
var (
	// requestTimeout bounds one look-up (and the event stream's first
	// answer) once pay is following a payment. A payment request itself
	// is bounded only by -timeout: the daemon may be waiting on a
	// payment host before it answers.
	requestTimeout = 10 * time.Second
	// reconnectWindow is how long pay keeps trying to reach the daemon
	// again after losing it (or -timeout, whichever ends first), asking
	// at retryFirst, doubling up to retryMax.
	reconnectWindow = 30 * time.Second
	retryFirst      = 100 * time.Millisecond
	retryMax        = 2 * time.Second
)

// defaultPayTimeout is longer than the longest payment the default
// config allows (BNPL and DuitNow QR: 15 s to the ack, 5 min to the
// result, then up to 30 s of cancel grace and 30 s of reconnect grace),
// so that on a healthy kiosk pay always sees the daemon's own outcome.
const defaultPayTimeout = 10 * time.Minute

// checkKey applies the control API's rule for an Idempotency-Key: 1 to
// 64 printable ASCII characters. Leading and trailing spaces are refused
// too, since HTTP would drop them.
func checkKey(k string) error {
	if len(k) < 1 || len(k) > 64 || strings.TrimSpace(k) != k {
		return fmt.Errorf("-key %q: want 1 to 64 printable ASCII characters, e.g. the order id", k)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return fmt.Errorf("-key %q: want 1 to 64 printable ASCII characters, e.g. the order id", k)
		}
	}
	return nil
}

// payer follows one kioskd pay to its outcome.
type payer struct {
	e        *env
	c        *client
	progress io.Writer
	asJSON   bool
	key      string
	timeout  time.Duration
	st       *eventStream // nil while the daemon is out of reach
}

func cmdPay(e *env, args []string) int {
	fs := newFlags(e, "pay", "-amount RM [-mode card|bnpl|duitnow_qr|ipp] [-plan ID] [-key ORDER_ID] [-timeout D] [-json]")
	var cf clientFlags
	cf.register(fs)
	amount := fs.String("amount", "", "amount in RM, e.g. 12.50")
	mode := fs.String("mode", "card", "card, bnpl, duitnow_qr or ipp")
	plan := fs.String("plan", "", "IPP plan to choose when offered")
	provider := fs.String("provider", "", "payment provider (default mobypay)")
	key := fs.String("key", "", "idempotency key, e.g. the controller's order id: asking again with the same key returns the payment already made instead of making a second one, and lets pay repeat a request that got no answer")
	timeout := fs.Duration("timeout", defaultPayTimeout, "give up waiting after this long (0: no limit) and exit 3; the payment is not cancelled")
	asJSON := fs.Bool("json", false, "print the final transaction as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *amount == "" || fs.NArg() > 0 || *timeout < 0 {
		fs.Usage()
		return exitUsage
	}
	if _, err := payment.ParseAmount(*amount); err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	if *key != "" {
		if err := checkKey(*key); err != nil {
			fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
			return exitUsage
		}
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if *timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), *timeout)
	}
	defer cancel()
	p := &payer{e: e, c: c, progress: e.stdout, asJSON: *asJSON, key: *key, timeout: *timeout}
	if *asJSON {
		p.progress = e.stderr
	}
	defer func() { p.st.close() }()
	// Subscribe before asking, so no step of the payment is missed.
	if p.st, err = c.stream(ctx, ctx); err != nil {
		return clientFail(e, err) // nothing was asked: safe to retry
	}
	t, code, ok := p.create(ctx, payment.PaymentRequest{Amount: *amount, Mode: *mode, PlanID: *plan, Provider: *provider})
	if !ok {
		return code
	}
	return p.follow(ctx, t)
}

// create asks for the payment. Until the daemon answers with a txn id
// the outcome of a request that got no answer is unknown (the daemon may
// have created the payment and sent it to the terminal): only a request
// that was never sent is reported as "not reachable" (exit 2, safe to
// retry). With -key the request is repeated, which the daemon answers
// with the payment already made; without it pay exits 3.
func (p *payer) create(ctx context.Context, req payment.PaymentRequest) (payment.Txn, int, bool) {
	var hdr http.Header
	if p.key != "" {
		hdr = http.Header{"Idempotency-Key": {p.key}}
	}
	post := func(ctx context.Context) (payment.Txn, int, error) {
		var t payment.Txn
		status, err := p.c.send(ctx, http.MethodPost, "/v1/payments", hdr, req, &t)
		if err == nil && t.ID == "" {
			err = &decodeError{what: "the answer to POST /v1/payments", err: errors.New("no txn_id")}
		}
		return t, status, err
	}
	t, status, err := post(ctx)
	if err == nil {
		return p.accepted(t, status)
	}
	var ae *apiError
	var de *decodeError
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(p.e.stderr, "kioskd: payment refused: %v\n", err)
		if ae.Code == http.StatusServiceUnavailable {
			return t, exitDeclined, false
		}
		return t, exitFail, false
	case errors.As(err, &de):
		return t, p.unreadable(de), false
	case sentNothing(err):
		fmt.Fprintf(p.e.stderr, "kioskd: payment refused: %v\n", err)
		return t, exitUsage, false
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("no answer within -timeout %s", p.timeout)
	}
	if p.key == "" {
		fmt.Fprintf(p.e.stderr, "kioskd: the payment request got no answer (%v). The daemon may have created the payment and sent it to the terminal: its outcome is unknown. Do not simply ask again: look it up with `kioskd journal`, and pay with -key ORDER_ID so that asking again is safe.\n", err)
		return t, exitUnclear, false
	}
	wctx, cancel := context.WithTimeout(ctx, reconnectWindow)
	defer cancel()
	if ctx.Err() == nil {
		fmt.Fprintf(p.e.stderr, "kioskd: the payment request got no answer (%v); asking again with the same key %q\n", err, p.key)
	}
	for wait := retryFirst; ctx.Err() == nil; wait = min(2*wait, retryMax) {
		if !sleepCtx(wctx, wait) {
			break
		}
		// The daemon may have restarted: subscribe again before asking.
		if p.st == nil || p.st.dead() {
			p.st.close()
			if p.st, err = p.c.stream(ctx, wctx); err != nil {
				continue
			}
		}
		t, status, err = post(wctx)
		if err == nil {
			return p.accepted(t, status)
		}
		if errors.As(err, &de) {
			return t, p.unreadable(de), false
		}
		if answered(err) {
			fmt.Fprintf(p.e.stderr, "kioskd: asking again with key %q: payment refused: %v. The first request's outcome is unknown: look it up with `kioskd journal` before asking again.\n", p.key, err)
			return t, exitUnclear, false
		}
	}
	why := fmt.Sprintf("within %s", reconnectWindow)
	if ctx.Err() != nil {
		why = fmt.Sprintf("within -timeout %s", p.timeout)
	}
	fmt.Fprintf(p.e.stderr, "kioskd: no answer for key %q %s (%v). The payment may exist and may still complete: look it up with `kioskd journal`; asking again with `kioskd pay -key %s` and the same amount is safe.\n", p.key, why, err, p.key)
	return t, exitUnclear, false
}

// accepted reports the daemon's answer: 201 a new payment, 200 the one
// already made with this key (which is followed the same way, and may
// already be over).
func (p *payer) accepted(t payment.Txn, status int) (payment.Txn, int, bool) {
	if status == http.StatusOK && p.key != "" {
		fmt.Fprintf(p.progress, "%s %s RM %s: %s (already made for key %q)\n", t.ID, t.Mode, t.Amount, t.State, p.key)
	} else {
		fmt.Fprintf(p.progress, "%s %s RM %s: %s\n", t.ID, t.Mode, t.Amount, t.State)
	}
	return t, 0, true
}

// unreadable reports a payment the daemon accepted with an answer this
// client cannot decode: it exists, its outcome is unknown here.
func (p *payer) unreadable(de *decodeError) int {
	var head struct {
		ID string `json:"txn_id"`
	}
	json.Unmarshal(de.raw, &head)
	id := head.ID
	if id == "" {
		id = "(no txn_id)"
	}
	fmt.Fprintf(p.e.stderr, "kioskd: the daemon accepted payment %s but its answer cannot be decoded: %v. The outcome is unknown: look it up with `kioskd journal` or `kioskd review`.\n", id, de.err)
	return exitUnclear
}

// follow waits for the payment's outcome. From here on every failure
// exits 3 with the txn id and its last known state: the daemon has the
// payment, and it may still complete.
func (p *payer) follow(ctx context.Context, t payment.Txn) int {
	// Ctrl-C asks the kiosk to cancel, then waits for the outcome.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	last := t.State
	for !done(t) {
		var items <-chan streamItem
		if p.st != nil {
			items = p.st.ch
		}
		select {
		case <-sig:
			fmt.Fprintf(p.progress, "%s: cancelling\n", t.ID)
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			if err := p.c.do(rctx, http.MethodPost, "/v1/payments/"+t.ID+"/cancel", nil, nil); err != nil {
				fmt.Fprintf(p.e.stderr, "kioskd: cancel: %v\n", err)
			}
			cancel()
		case <-ctx.Done():
			return p.unclear(t, fmt.Sprintf("no outcome within -timeout %s", p.timeout))
		case it, open := <-items:
			var code int
			var ok bool
			switch {
			case !open:
				why := "the event stream ended"
				if p.st.err != nil {
					why += ": " + p.st.err.Error()
				}
				p.st.close()
				p.st = nil
				t, code, ok = p.reconnect(ctx, t, why)
			case it.err != nil:
				about := ""
				if it.txn != "" {
					about = " about " + it.txn
				}
				fmt.Fprintf(p.e.stderr, "kioskd: cannot decode a %q event%s from the daemon: %v; looking %s up instead\n", it.kind, about, it.err, t.ID)
				t, code, ok = p.lookUp(ctx, t)
			case it.ev.Txn != nil && it.ev.Txn.ID == t.ID:
				t, ok = *it.ev.Txn, true
			default:
				continue
			}
			if !ok {
				return code
			}
		}
		if t.State != last {
			last = t.State
			line := fmt.Sprintf("%s: %s", t.ID, t.State)
			if t.State == payment.PlansOffered {
				ids := make([]string, len(t.Plans))
				for i, p := range t.Plans {
					ids[i] = p.ID
				}
				line += " (" + strings.Join(ids, ", ") + "); choose with: kioskd plan " + t.ID + " PLAN_ID"
			}
			fmt.Fprintln(p.progress, line)
		}
	}
	p.print(t)
	return payExit(t)
}

// get reads the payment's record, bounded by requestTimeout.
func (p *payer) get(ctx context.Context, id string) (payment.Txn, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var t payment.Txn
	_, err := p.c.send(ctx, http.MethodGet, "/v1/payments/"+id, nil, nil, &t)
	return t, err
}

// retryable reports a look-up worth repeating: no answer, or the daemon
// not ready yet (starting or stopping).
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code == http.StatusServiceUnavailable
	}
	return !answered(err)
}

// lookUp reads the record while the event stream still runs; a lost
// answer turns into a reconnect.
func (p *payer) lookUp(ctx context.Context, t payment.Txn) (payment.Txn, int, bool) {
	nt, err := p.get(ctx, t.ID)
	switch {
	case err == nil:
		return nt, 0, true
	case ctx.Err() != nil:
		return t, p.unclear(t, fmt.Sprintf("no outcome within -timeout %s", p.timeout)), false
	case !retryable(err):
		return t, p.unclear(t, fmt.Sprintf("%s cannot be looked up: %v", t.ID, err)), false
	}
	p.st.close()
	p.st = nil
	return p.reconnect(ctx, t, err.Error())
}

// reconnect finds the daemon again after losing it: subscribe (so that
// nothing after the look-up is missed), then read the record; repeated
// with a doubling pause for up to reconnectWindow or -timeout.
func (p *payer) reconnect(ctx context.Context, t payment.Txn, why string) (payment.Txn, int, bool) {
	fmt.Fprintf(p.e.stderr, "kioskd: lost contact with the daemon (%s); looking %s up again\n", why, t.ID)
	wctx, cancel := context.WithTimeout(ctx, reconnectWindow)
	defer cancel()
	var err error
	for wait := retryFirst; ; wait = min(2*wait, retryMax) {
		var st *eventStream
		if st, err = p.c.stream(ctx, wctx); err == nil {
			var nt payment.Txn
			if nt, err = p.get(wctx, t.ID); err == nil {
				fmt.Fprintf(p.e.stderr, "kioskd: reconnected; %s is %s\n", nt.ID, nt.State)
				p.st = st
				return nt, 0, true
			}
			st.close()
			if !retryable(err) {
				return t, p.unclear(t, fmt.Sprintf("%s cannot be looked up: %v", t.ID, err)), false
			}
		}
		if !sleepCtx(wctx, wait) {
			break
		}
	}
	if ctx.Err() != nil {
		return t, p.unclear(t, fmt.Sprintf("no outcome within -timeout %s (the daemon did not answer again: %v)", p.timeout, err)), false
	}
	return t, p.unclear(t, fmt.Sprintf("the daemon did not answer again within %s: %v", reconnectWindow, err)), false
}

// unclear ends pay without an outcome: the last known record goes to
// stdout as a final one would, and stderr says what is not known.
func (p *payer) unclear(t payment.Txn, why string) int {
	fmt.Fprintf(p.e.stderr, "kioskd: %s; %s was last known as %s. The payment was not cancelled and may still complete: look it up with `kioskd journal` (stop it with `kioskd cancel %s`).\n", why, t.ID, t.State, t.ID)
	p.print(t)
	return exitUnclear
}

func (p *payer) print(t payment.Txn) {
	if p.asJSON {
		json.NewEncoder(p.e.stdout).Encode(t)
	} else {
		fmt.Fprintln(p.e.stdout, describe(t))
	}
}

// sleepCtx waits d, or until ctx ends (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func cmdCancel(e *env, args []string) int {
	return txnAction(e, "cancel", args, func(c *client, id string, rest []string) (payment.Txn, error) {
		var t payment.Txn
		return t, c.do(context.Background(), http.MethodPost, "/v1/payments/"+id+"/cancel", nil, &t)
	})
}

func cmdPlan(e *env, args []string) int {
	return txnAction(e, "plan", args, func(c *client, id string, rest []string) (payment.Txn, error) {
		var t payment.Txn
		if len(rest) != 1 {
			return t, errors.New("usage: kioskd plan TXN_ID PLAN_ID")
		}
		return t, c.do(context.Background(), http.MethodPost, "/v1/payments/"+id+"/plan", map[string]string{"plan_id": rest[0]}, &t)
	})
}

func txnAction(e *env, name string, args []string, f func(*client, string, []string) (payment.Txn, error)) int {
	fs := newFlags(e, name, "[-config FILE | -control PATH] TXN_ID")
	var cf clientFlags
	cf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	t, err := f(c, fs.Arg(0), fs.Args()[1:])
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintln(e.stdout, describe(t))
	return exitOK
}

func cmdStatus(e *env, args []string) int {
	fs := newFlags(e, "status", "[-config FILE | -control PATH] [-json]")
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	var st struct {
		KioskID   string             `json:"kiosk_id"`
		Version   string             `json:"version"`
		Board     string             `json:"board"`
		Listen    string             `json:"pos_listen"`
		ConnectTo []string           `json:"pos_connect_to"`
		POS       []payment.POSState `json:"pos"`
		Current   *payment.Txn       `json:"current"`
		Stats     map[string]int64   `json:"pos_stats"`
		Uptime    int64              `json:"uptime_s"`
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), http.MethodGet, "/v1/status", nil, &raw); err != nil {
		return clientFail(e, err)
	}
	if *asJSON {
		e.stdout.Write(append(raw, '\n'))
		return exitOK
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return clientFail(e, err)
	}
	w := e.stdout
	fmt.Fprintf(w, "kiosk %s, kioskd %s, board %s, up %s\n", st.KioskID, st.Version, st.Board, time.Duration(st.Uptime)*time.Second)
	fmt.Fprintf(w, "pos server on %s; connect the POS to %s\n", st.Listen, strings.Join(st.ConnectTo, " or "))
	for _, p := range st.POS {
		peer := ""
		if p.Peer != "" {
			peer = " " + p.Peer
		}
		fmt.Fprintf(w, "%s: %s%s since %s\n", p.Provider, p.State, peer, p.Since.Format(time.RFC3339))
	}
	if st.Current != nil {
		fmt.Fprintf(w, "payment in progress: %s\n", describe(*st.Current))
	} else {
		fmt.Fprintln(w, "no payment in progress")
	}
	fmt.Fprintf(w, "pos messages: %d accepted, %d late, %d bad signature, %d malformed, %d replayed, %d oversize\n",
		st.Stats["received"], st.Stats["late"], st.Stats["bad_signature"], st.Stats["malformed"], st.Stats["replayed"], st.Stats["oversize"])
	return exitOK
}

func cmdJournal(e *env, args []string) int {
	fs := newFlags(e, "journal", "[-config FILE | -control PATH] [-unknown] [-n N] [-json]")
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", 20, "how many payments (or messages with -unknown), newest first (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	unknown := fs.Bool("unknown", false, "list the signed messages that named no known payment (kept by the daemon, bounded in count and age) instead of payments")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 || *n < 0 {
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	if *unknown {
		return journalUnknown(e, c, *n, *asJSON)
	}
	var list []payment.Txn
	if err := c.do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/payments?limit=%d", *n), nil, &list); err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	return exitOK
}

// journalUnknown lists GET /v1/evidence: the evidence about no known
// payment, newest first. -json passes each object on as the daemon wrote
// it, so no field is lost to this client's idea of Evidence.
func journalUnknown(e *env, c *client, n int, asJSON bool) int {
	var list []json.RawMessage
	if err := c.do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/evidence?limit=%d", n), nil, &list); err != nil {
		return clientFail(e, err)
	}
	code := exitOK
	for _, raw := range list {
		if asJSON {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err == nil {
				b.WriteByte('\n')
				e.stdout.Write(b.Bytes())
			}
			continue
		}
		var ev payment.Evidence
		if err := json.Unmarshal(raw, &ev); err != nil {
			fmt.Fprintf(e.stderr, "kioskd: cannot decode evidence %s: %v\n", raw, err)
			code = exitFail
			continue
		}
		fmt.Fprintln(e.stdout, describeEvidence(ev))
	}
	if len(list) == 0 && !asJSON {
		fmt.Fprintln(e.stdout, "no messages about unknown payments")
	}
	return code
}

// describeEvidence is one line: when, seq, who sent what, the txn id it
// named (- for none), what the kiosk did with it, the signed payload.
func describeEvidence(ev payment.Evidence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s %s", ev.At.Local().Format("2006-01-02 15:04:05"), ev.Seq, ev.Source, ev.Type)
	if ev.Status != "" {
		fmt.Fprintf(&b, " %s", ev.Status)
	}
	id := ev.TxnID
	if id == "" {
		id = "-"
	}
	fmt.Fprintf(&b, " txn=%s disposal=%q payload=%s", id, ev.Disposal, ev.Payload)
	return b.String()
}

// printTxns writes payments one per line, or one JSON object per line.
func printTxns(e *env, list []payment.Txn, asJSON bool) {
	enc := json.NewEncoder(e.stdout)
	for _, t := range list {
		if asJSON {
			enc.Encode(t)
			continue
		}
		fmt.Fprintf(e.stdout, "%s %s\n", t.CreatedAt.Local().Format("2006-01-02 15:04:05"), describe(t))
		if t.Settled != "" {
			fmt.Fprintf(e.stdout, "    settled %s\n", t.Settled)
		}
	}
}

func cmdReview(e *env, args []string) int {
	if len(args) > 0 && args[0] == "settle" {
		fs := newFlags(e, "review settle", "[-config FILE | -control PATH] -note TEXT TXN_ID")
		var cf clientFlags
		cf.register(fs)
		note := fs.String("note", "", "how it was settled, e.g. \"refunded RM 12.50 in cash\"")
		if code, ok := parseFlags(fs, args[1:]); !ok {
			return code
		}
		if fs.NArg() != 1 || *note == "" {
			fs.Usage()
			return exitUsage
		}
		c, err := cf.client()
		if err != nil {
			return clientFail(e, err)
		}
		var t payment.Txn
		if err := c.do(context.Background(), http.MethodPost, "/v1/payments/"+fs.Arg(0)+"/settle", map[string]string{"note": *note}, &t); err != nil {
			return clientFail(e, err)
		}
		fmt.Fprintf(e.stdout, "settled %s: %s\n", t.ID, t.Settled)
		return exitOK
	}
	fs := newFlags(e, "review", "[-config FILE | -control PATH] [-all] [-json] | review settle -note TEXT TXN_ID")
	var cf clientFlags
	cf.register(fs)
	all := fs.Bool("all", false, "include payments already settled")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	path := "/v1/reviews"
	if *all {
		path += "?all=1"
	}
	var list []payment.Txn
	if err := c.do(context.Background(), http.MethodGet, path, nil, &list); err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	if len(list) == 0 && !*asJSON {
		fmt.Fprintln(e.stdout, "nothing to review")
	}
	return exitOK
}

func cmdLogs(e *env, args []string) int {
	fs := newFlags(e, "logs", "[-config FILE | -control PATH] [-n N]")
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", 100, "how many lines (the daemon keeps the last 1000)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	var lines []string
	if err := c.do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/logs?n=%d", *n), nil, &lines); err != nil {
		return clientFail(e, err)
	}
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	return exitOK
}
