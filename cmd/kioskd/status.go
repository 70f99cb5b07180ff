package main

// kioskd status and kioskd logs: what the running daemon says of itself.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
)

func cmdStatus(e *cli.Env, args []string) int {
	fs := e.Flags()
	asJSON := fs.Bool("json", false, "print the status as JSON")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	var st control.Status
	raw, err := c.StatusJSON(context.Background())
	if err != nil {
		return clientFail(e, err)
	}
	if *asJSON {
		e.Stdout.Write(append(raw, '\n'))
		return exitOK
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return clientFail(e, &control.DecodeError{What: "the answer to GET /v1/status", Raw: raw, Err: err})
	}
	w := e.Stdout
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
		fmt.Fprintf(w, "payment in progress: %s\n", st.Current.Summary())
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

func cmdLogs(e *cli.Env, args []string) int {
	fs := e.Flags()
	n := fs.Int("n", 100, "how many lines (the daemon keeps the last 1000)")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	lines, err := c.Logs(context.Background(), *n)
	if err != nil {
		return clientFail(e, err)
	}
	for _, l := range lines {
		fmt.Fprintln(e.Stdout, l)
	}
	return exitOK
}
