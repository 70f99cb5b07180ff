package main

// The other client commands: cancel, plan, status, journal, review and logs.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// cmdCancel cancels TXN_ID or, without one, the payment in progress as
// the daemon's status names it. With none in progress there is nothing to
// do, which is exit 0 as for a cancel already requested: a controller
// that cancels to be sure nothing is running gets its answer either way.
// A cancel's exit code never says how the payment ended (a success that
// arrives during the grace still wins); pay and the journal do.
func cmdCancel(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	if code, ok := e.parse(fs, args, 0, 1); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	ctx := context.Background()
	id := fs.Arg(0)
	if id == "" {
		st, err := c.Status(ctx)
		if err != nil {
			return clientFail(e, err)
		}
		if st.Current == nil {
			fmt.Fprintln(e.stdout, "no payment in progress")
			return exitOK
		}
		id = st.Current.ID
	}
	t, err := c.Cancel(ctx, id)
	var ae *control.APIError
	if fs.NArg() == 0 && errors.As(err, &ae) && ae.Code == http.StatusConflict {
		// The payment ended between the look-up and the cancel. Any
		// payment started since is not cancelled: nobody has seen it.
		if t, err = c.Payment(ctx, id); err != nil {
			return clientFail(e, err)
		}
		fmt.Fprintf(e.stdout, "no payment in progress (%s ended before the cancel): %s\n", id, describe(t))
		return exitOK
	}
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintln(e.stdout, describe(t))
	return exitOK
}

func cmdPlan(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	if code, ok := e.parse(fs, args, 2, 2); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	t, err := c.SelectPlan(context.Background(), fs.Arg(0), fs.Arg(1))
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintln(e.stdout, describe(t))
	return exitOK
}

func cmdStatus(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	var st control.Status
	raw, err := c.StatusJSON(context.Background())
	if err != nil {
		return clientFail(e, err)
	}
	if *asJSON {
		e.stdout.Write(append(raw, '\n'))
		return exitOK
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return clientFail(e, &control.DecodeError{What: "the answer to GET /v1/status", Raw: raw, Err: err})
	}
	w := e.stdout
	fmt.Fprintf(w, "kiosk %s, kioskd %s, board %s, up %s\n", st.KioskID, st.Version, st.Board, time.Duration(st.UptimeS)*time.Second)
	fmt.Fprintf(w, "pos server on %s; connect the POS to %s\n", st.POSListen, strings.Join(st.POSConnectTo, " or "))
	for _, p := range st.POS {
		peer := ""
		if p.Peer != "" {
			peer = " " + p.Peer
		}
		fmt.Fprintf(w, "%s: %s%s since %s\n", p.Provider, p.State, peer, p.Since.Format(time.RFC3339))
	}
	if wd := st.Hardware.Watchdog; wd.Device != "" {
		feeding := "fed"
		switch {
		case wd.Stalled != "":
			feeding = "NOT fed: " + wd.Stalled + " stalled"
		case !wd.Feeding:
			feeding = "not fed"
		}
		fmt.Fprintf(w, "watchdog: %s, timeout %s, %s\n", wd.Device, wd.Timeout, feeding)
	}
	if st.Current != nil {
		fmt.Fprintf(w, "payment in progress: %s\n", describe(*st.Current))
	} else {
		fmt.Fprintln(w, "no payment in progress")
	}
	ps := st.POSStats
	fmt.Fprintf(w, "pos messages: %d accepted, %d late, %d bad signature, %d malformed, %d replayed, %d oversize\n",
		ps.Received, ps.Late, ps.BadSignature, ps.Malformed, ps.Replayed, ps.Oversize)
	fmt.Fprintf(w, "pos connections: %d sessions, %d refused, %d held pending, %d took over, %d squatters displaced; %d pings, %d signed without a nonce\n",
		ps.Sessions, ps.Rejected, ps.Pending, ps.Promoted, ps.Displaced, ps.Pings, ps.NoNonce)
	return exitOK
}

func cmdJournal(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", 20, "how many payments (or messages with -unknown), newest first (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	unknown := fs.Bool("unknown", false, "list the signed messages that named no known payment (kept by the daemon, bounded in count and age) instead of payments")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *n < 0 {
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
	list, err := c.Journal(context.Background(), *n)
	if err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	return exitOK
}

// journalUnknown lists GET /v1/evidence: the evidence about no known
// payment, newest first. -json passes each object on as the daemon wrote
// it, so no field is lost to this client's idea of Evidence.
func journalUnknown(e *env, c *control.Client, n int, asJSON bool) int {
	list, err := c.Evidence(context.Background(), n)
	if err != nil {
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
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	all := fs.Bool("all", false, "include payments already settled")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	list, err := c.Reviews(context.Background(), *all)
	if err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	if len(list) == 0 && !*asJSON {
		fmt.Fprintln(e.stdout, "nothing to review")
	}
	return exitOK
}

func cmdReviewSettle(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	note := fs.String("note", "", "how it was settled, e.g. \"refunded RM 12.50 in cash\"")
	if code, ok := e.parse(fs, args, 1, 1); !ok {
		return code
	}
	if *note == "" {
		fmt.Fprintln(e.stderr, "kioskd: review settle: -note is required: it is what the journal keeps of how it was settled")
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	t, err := c.Settle(context.Background(), fs.Arg(0), *note)
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintf(e.stdout, "settled %s: %s\n", t.ID, t.Settled)
	return exitOK
}

func cmdLogs(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	n := fs.Int("n", 100, "how many lines (the daemon keeps the last 1000)")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	lines, err := c.Logs(context.Background(), *n)
	if err != nil {
		return clientFail(e, err)
	}
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	return exitOK
}
