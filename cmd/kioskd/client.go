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

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kioskd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kioskd not reachable at %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return &apiError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// events opens the event stream; each payment.Event arrives on the channel
// until the stream ends.
func (c *client) events(ctx context.Context) (<-chan payment.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd/v1/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kioskd not reachable at %s: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("event stream: %s", resp.Status)
	}
	ch := make(chan payment.Event, 16)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e payment.Event
			if json.Unmarshal([]byte(data), &e) == nil {
				select {
				case ch <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

func clientFail(e *env, err error) int {
	fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
	var ae *apiError
	if errors.As(err, &ae) {
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

func cmdPay(e *env, args []string) int {
	fs := newFlags(e, "pay", "-amount RM [-mode card|bnpl|duitnow_qr|ipp] [-plan ID] [-json]")
	var cf clientFlags
	cf.register(fs)
	amount := fs.String("amount", "", "amount in RM, e.g. 12.50")
	mode := fs.String("mode", "card", "card, bnpl, duitnow_qr or ipp")
	plan := fs.String("plan", "", "IPP plan to choose when offered")
	provider := fs.String("provider", "", "payment provider (default mobypay)")
	asJSON := fs.Bool("json", false, "print the final transaction as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *amount == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if _, err := payment.ParseAmount(*amount); err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Subscribe before asking, so no step of the payment is missed.
	events, err := c.events(ctx)
	if err != nil {
		return clientFail(e, err)
	}
	progress := e.stdout
	if *asJSON {
		progress = e.stderr
	}
	var t payment.Txn
	err = c.do(ctx, http.MethodPost, "/v1/payments", payment.PaymentRequest{Amount: *amount, Mode: *mode, PlanID: *plan, Provider: *provider}, &t)
	if err != nil {
		fmt.Fprintf(e.stderr, "kioskd: payment refused: %v\n", err)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable {
			return exitDeclined
		}
		return clientFail(e, err)
	}
	fmt.Fprintf(progress, "%s %s RM %s: %s\n", t.ID, t.Mode, t.Amount, t.State)

	// Ctrl-C asks the kiosk to cancel, then waits for the outcome.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	last := t.State
	for !done(t) {
		select {
		case <-sig:
			fmt.Fprintf(progress, "%s: cancelling\n", t.ID)
			if err := c.do(ctx, http.MethodPost, "/v1/payments/"+t.ID+"/cancel", nil, nil); err != nil {
				fmt.Fprintf(e.stderr, "kioskd: cancel: %v\n", err)
			}
		case ev, ok := <-events:
			if !ok {
				// The stream ended (daemon restarted): read the record.
				if err := c.do(ctx, http.MethodGet, "/v1/payments/"+t.ID, nil, &t); err != nil || !done(t) {
					fmt.Fprintf(e.stderr, "kioskd: lost contact with the daemon; %s was %s\n", t.ID, t.State)
					return exitUnclear
				}
				continue
			}
			if ev.Txn == nil || ev.Txn.ID != t.ID {
				continue
			}
			t = *ev.Txn
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
				fmt.Fprintln(progress, line)
			}
		}
	}
	if *asJSON {
		json.NewEncoder(e.stdout).Encode(t)
	} else {
		fmt.Fprintln(e.stdout, describe(t))
	}
	return payExit(t)
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
	fs := newFlags(e, "journal", "[-config FILE | -control PATH] [-n N] [-json]")
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", 20, "how many payments, newest first (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	var list []payment.Txn
	if err := c.do(context.Background(), http.MethodGet, fmt.Sprintf("/v1/payments?limit=%d", *n), nil, &list); err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	return exitOK
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
