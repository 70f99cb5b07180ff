package main

// kioskd pay: ask the daemon for a payment and follow it to its outcome, through lost contact.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/payment"
)

// How kioskd pay keeps in touch with the daemon (control.PayOptions
// says what each bounds). Variables so that tests can shorten them.
var (
	requestTimeout  = 10 * time.Second
	reconnectWindow = 30 * time.Second
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

func cmdPay(e *cli.Env, args []string) int {
	fs := e.Flags()
	var cf clientFlags
	cf.register(fs)
	amount := fs.String("amount", "", "amount in RM, e.g. 12.50")
	mode := fs.String("mode", "card", "card, bnpl, duitnow_qr or ipp")
	plan := fs.String("plan", "", "IPP plan to choose when offered")
	provider := fs.String("provider", "", "payment provider (default mobypay)")
	key := fs.String("key", "", "idempotency key, e.g. the controller's order id: asking again with the same key returns the payment already made instead of making a second one, and lets pay repeat a request that got no answer")
	timeout := fs.Duration("timeout", defaultPayTimeout, "give up waiting after this long (0: no limit) and exit 3; the payment is not cancelled")
	asJSON := fs.Bool("json", false, "print the final transaction as JSON")
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return code
	}
	if *amount == "" || *timeout < 0 {
		fs.Usage()
		return exitUsage
	}
	if _, err := payment.ParseAmount(*amount); err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	if *key != "" {
		if err := checkKey(*key); err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
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
	p := &payReport{e: e, progress: e.Stdout, asJSON: *asJSON, key: *key, timeout: *timeout}
	if *asJSON {
		p.progress = e.Stderr
	}
	// Once the daemon has the payment, Ctrl-C asks the kiosk to cancel it
	// and pay waits for the outcome; before, it ends pay as any command.
	sig := make(chan os.Signal, 1)
	step := func(s control.Progress) {
		if s.Step == control.Accepted {
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		}
		p.step(s)
	}
	cancels := make(chan struct{}, 1)
	go func() {
		for range sig {
			select {
			case cancels <- struct{}{}:
			default:
			}
		}
	}()
	defer func() { signal.Stop(sig); close(sig) }()
	t, out, err := c.PayAndWait(ctx, control.PayRequest{Amount: *amount, Mode: *mode, PlanID: *plan, Provider: *provider},
		control.PayOptions{Key: *key, Cancel: cancels, Progress: step, RequestTimeout: requestTimeout, ReconnectWindow: reconnectWindow})
	switch out {
	case control.Final:
		p.print(t)
		return payExit(t)
	case control.NotAsked:
		return clientFail(e, err) // nothing was asked: safe to retry
	case control.NotSent:
		fmt.Fprintf(e.Stderr, "kioskd: payment refused: %v\n", err)
		return exitUnreachable
	case control.Refused:
		fmt.Fprintf(e.Stderr, "kioskd: payment refused: %v\n", err)
		if ae := (*control.APIError)(nil); errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable {
			return exitDeclined
		}
		return exitFail
	}
	var ue *control.UnclearError
	if !errors.As(err, &ue) {
		ue = &control.UnclearError{Err: err}
	}
	return p.unclear(ctx, t, ue)
}

// payReport is what kioskd pay prints: progress on stdout (stderr with
// -json), what went wrong on stderr, the final record on stdout.
type payReport struct {
	e        *cli.Env
	progress io.Writer
	asJSON   bool
	key      string
	timeout  time.Duration
}

func (p *payReport) step(s control.Progress) {
	t := s.Txn
	switch s.Step {
	case control.Accepted:
		if s.Existing {
			fmt.Fprintf(p.progress, "%s %s RM %s: %s (already made for key %q)\n", t.ID, t.Mode, t.Amount, t.State, p.key)
		} else {
			fmt.Fprintf(p.progress, "%s %s RM %s: %s\n", t.ID, t.Mode, t.Amount, t.State)
		}
	case control.Retrying:
		fmt.Fprintf(p.e.Stderr, "kioskd: the payment request got no answer (%v); asking again with the same key %q\n", s.Err, p.key)
	case control.Changed:
		line := fmt.Sprintf("%s: %s", t.ID, t.State)
		if t.State == payment.PlansOffered {
			ids := make([]string, len(t.Plans))
			for i, p := range t.Plans {
				ids[i] = p.ID
			}
			line += " (" + strings.Join(ids, ", ") + "); choose with: kioskd plan " + t.ID + " PLAN_ID"
		}
		fmt.Fprintln(p.progress, line)
	case control.Cancelling:
		fmt.Fprintf(p.progress, "%s: cancelling\n", t.ID)
	case control.CancelFailed:
		fmt.Fprintf(p.e.Stderr, "kioskd: cancel: %v\n", s.Err)
	case control.UndecodableEvent:
		about := ""
		if s.Item.TxnID != "" {
			about = " about " + s.Item.TxnID
		}
		fmt.Fprintf(p.e.Stderr, "kioskd: cannot decode a %q event%s from the daemon: %v; looking %s up instead\n", s.Item.Kind, about, s.Err, t.ID)
	case control.LostContact:
		fmt.Fprintf(p.e.Stderr, "kioskd: lost contact with the daemon (%v); looking %s up again\n", s.Err, t.ID)
	case control.Reconnected:
		fmt.Fprintf(p.e.Stderr, "kioskd: reconnected; %s is %s\n", t.ID, t.State)
	}
}

// unclear ends pay without an outcome (exit 3), saying what is not
// known and what to do about it. Once the daemon has named the payment,
// its last known record goes to stdout as a final one would.
func (p *payReport) unclear(ctx context.Context, t payment.Txn, ue *control.UnclearError) int {
	timedOut := ctx.Err() != nil
	err := ue.Err
	if timedOut && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within -timeout %s", p.timeout)
	}
	switch ue.Why {
	case control.NoAnswer:
		fmt.Fprintf(p.e.Stderr, "kioskd: the payment request got no answer (%v). The daemon may have created the payment and sent it to the terminal: its outcome is unknown. Do not simply ask again: look it up with `kioskd journal`, and pay with -key ORDER_ID so that asking again is safe.\n", err)
		return exitUnclear
	case control.RetryRefused:
		fmt.Fprintf(p.e.Stderr, "kioskd: asking again with key %q: payment refused: %v. The first request's outcome is unknown: look it up with `kioskd journal` before asking again.\n", p.key, err)
		return exitUnclear
	case control.RetryNoAnswer:
		why := fmt.Sprintf("within %s", reconnectWindow)
		if timedOut {
			why = fmt.Sprintf("within -timeout %s", p.timeout)
		}
		fmt.Fprintf(p.e.Stderr, "kioskd: no answer for key %q %s (%v). The payment may exist and may still complete: look it up with `kioskd journal`; asking again with `kioskd pay -key %s` and the same amount is safe.\n", p.key, why, err, p.key)
		return exitUnclear
	case control.Undecodable:
		id := ue.TxnID
		if id == "" {
			id = "(no txn_id)"
		}
		var de *control.DecodeError
		if errors.As(ue.Err, &de) {
			err = de.Err
		}
		fmt.Fprintf(p.e.Stderr, "kioskd: the daemon accepted payment %s but its answer cannot be decoded: %v. The outcome is unknown: look it up with `kioskd journal` or `kioskd review`.\n", id, err)
		return exitUnclear
	}
	var why string
	switch {
	case ue.Why == control.LookUpFailed:
		why = fmt.Sprintf("%s cannot be looked up: %v", t.ID, ue.Err)
	case ue.Why == control.Lost && timedOut:
		why = fmt.Sprintf("no outcome within -timeout %s (the daemon did not answer again: %v)", p.timeout, ue.Err)
	case ue.Why == control.Lost:
		why = fmt.Sprintf("the daemon did not answer again within %s: %v", reconnectWindow, ue.Err)
	default:
		why = fmt.Sprintf("no outcome within -timeout %s", p.timeout)
	}
	fmt.Fprintf(p.e.Stderr, "kioskd: %s; %s was last known as %s. The payment was not cancelled and may still complete: look it up with `kioskd journal` (stop it with `kioskd cancel %s`).\n", why, t.ID, t.State, t.ID)
	p.print(t)
	return exitUnclear
}

func (p *payReport) print(t payment.Txn) {
	if p.asJSON {
		json.NewEncoder(p.e.Stdout).Encode(t)
	} else {
		fmt.Fprintln(p.e.Stdout, t.Summary())
	}
}
