package main

// kioskd journal and kioskd review: the payments the daemon has journaled.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/payment"
)

func cmdJournal(e *cli.Env, args []string) int {
	fs := e.Flags()
	n := fs.Int("n", 20, "how many payments (or messages with -unknown), newest first (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	unknown := fs.Bool("unknown", false, "list the signed messages that named no known payment (kept by the daemon, bounded in count and age) instead of payments")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	if *n < 0 {
		fs.Usage()
		return exitUsage
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
func journalUnknown(e *cli.Env, c *control.Client, n int, asJSON bool) int {
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
				e.Stdout.Write(b.Bytes())
			}
			continue
		}
		var ev payment.Evidence
		if err := json.Unmarshal(raw, &ev); err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: cannot decode evidence %s: %v\n", raw, err)
			code = exitFail
			continue
		}
		fmt.Fprintln(e.Stdout, ev.Summary())
	}
	if len(list) == 0 && !asJSON {
		fmt.Fprintln(e.Stdout, "no messages about unknown payments")
	}
	return code
}

// printTxns writes payments one per line, or one JSON object per line.
func printTxns(e *cli.Env, list []payment.Txn, asJSON bool) {
	enc := json.NewEncoder(e.Stdout)
	for _, t := range list {
		if asJSON {
			enc.Encode(t)
			continue
		}
		fmt.Fprintf(e.Stdout, "%s %s\n", t.CreatedAt.Local().Format("2006-01-02 15:04:05"), t.Summary())
		if t.Settled != "" {
			fmt.Fprintf(e.Stdout, "    settled %s\n", t.Settled)
		}
	}
}

func cmdReview(e *cli.Env, args []string) int {
	fs := e.Flags()
	all := fs.Bool("all", false, "include payments already settled")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	list, err := c.Reviews(context.Background(), *all)
	if err != nil {
		return clientFail(e, err)
	}
	printTxns(e, list, *asJSON)
	if len(list) == 0 && !*asJSON {
		fmt.Fprintln(e.Stdout, "nothing to review")
	}
	return exitOK
}

func cmdReviewSettle(e *cli.Env, args []string) int {
	fs := e.Flags()
	note := fs.String("note", "", "how it was settled, e.g. \"refunded RM 12.50 in cash\"")
	c, code, ok := dial(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	if *note == "" {
		fmt.Fprintln(e.Stderr, "kioskd: review settle: -note is required: it is what the journal keeps of how it was settled")
		fs.Usage()
		return exitUsage
	}
	t, err := c.Settle(context.Background(), fs.Arg(0), *note)
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintf(e.Stdout, "settled %s: %s\n", t.ID, t.Settled)
	return exitOK
}
