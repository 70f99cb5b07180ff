package main

// kioskd health and kioskd update: the A/B update's two commands
// (docs/update.md). The health gate script runs health after a boot and
// marks the slot good on a 0; update asks the daemon to install a
// bundle and reboot.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/machine"
)

// updatePoll is how often kioskd update looks at the daemon's status:
// the update takes minutes, its states change a few times.
const updatePoll = 250 * time.Millisecond

// installedBeforeGone reports whether the daemon that stopped answering
// had installed the bundle of this update: its pending-update record,
// written after rauc install and before the reboot command, names the
// bundle and is not older than the update. The reboot stops kioskd
// (rcK) before rebooting, and may do so before a poll sees the
// rebooting state; the record on the data partition still says so.
func installedBeforeGone(cf *clientFlags, bundle string, started time.Time) bool {
	cfg, err := config.Load(cf.configPath())
	if err != nil || started.IsZero() {
		return false
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, machine.PendingUpdateFile))
	if err != nil {
		return false
	}
	var p machine.PendingUpdate
	return json.Unmarshal(b, &p) == nil && p.Bundle == bundle && !p.At.Before(started)
}

// cmdHealth exits 0 when healthy, 1 when not or when the daemon does not
// answer (a boot whose kioskd is down is not good), 2 on a usage error.
func cmdHealth(e *cli.Env, args []string) int {
	fs := e.Flags()
	minUp := fs.Duration("min-up", control.DefaultMinUp, "how long kioskd must have been up")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	if *minUp < 0 {
		fmt.Fprintln(e.Stderr, "kioskd: -min-up must be 0s or more")
		return exitUsage
	}
	h, err := c.Health(context.Background(), *minUp)
	if err != nil {
		if code := clientFail(e, err); code == exitUsage {
			return code
		}
		return exitFail
	}
	if *asJSON {
		json.NewEncoder(e.Stdout).Encode(h)
	} else {
		for _, ch := range h.Checks {
			word := "ok  "
			if !ch.OK {
				word = "FAIL"
			}
			fmt.Fprintf(e.Stdout, "%s %-9s %s\n", word, ch.Name, ch.Detail)
		}
		verdict := "healthy"
		if !h.Healthy {
			verdict = "NOT healthy"
		}
		slot := h.Slot
		if slot == "" {
			slot = "-"
		}
		fmt.Fprintf(e.Stdout, "%s: kioskd %s, slot %s, up %ds, busy %v\n", verdict, h.Version, slot, h.UpS, h.Busy)
	}
	if !h.Healthy {
		return exitFail
	}
	return exitOK
}

// cmdUpdate exits 0 once the bundle is installed and the reboot started,
// 1 when the daemon refused or the update failed (the reason on
// stderr), 2 on a usage error, 4 when the daemon did not answer.
func cmdUpdate(e *cli.Env, args []string) int {
	fs := e.Flags()
	wait := fs.Duration("wait", 0, "how long to wait for the payment in progress (default [update] wait, 10m)")
	force := fs.Bool("force", false, "install even a version that failed and was rolled back before")
	asJSON := fs.Bool("json", false, "print the update's last state as JSON")
	c, cf, code, ok := dialFlags(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	if *wait < 0 {
		fmt.Fprintln(e.Stderr, "kioskd: -wait must be more than 0s")
		return exitUsage
	}
	req := control.UpdateRequest{Bundle: fs.Arg(0), Force: *force}
	if *wait > 0 {
		req.Wait = wait.String()
	}
	progress := func(u control.Update) {
		if !*asJSON {
			fmt.Fprintf(e.Stdout, "%s: %s\n", u.State, u.Reason)
		}
	}
	u, err := c.UpdateAndWait(context.Background(), req, updatePoll, progress)
	var na *control.NoAnswerError
	if err != nil && errors.As(err, &na) {
		switch {
		case u.State == control.UpdateRebooting:
			err = nil // the reboot took the daemon away
		case installedBeforeGone(cf, req.Bundle, u.StartedAt):
			// The reboot stopped kioskd before a poll saw it coming.
			u.State, u.Reason = control.UpdateRebooting, "kioskd went away after "+machine.PendingUpdateFile+" was written: the bundle is installed"
			progress(u)
			err = nil
		}
	}
	if *asJSON && !u.StartedAt.IsZero() {
		json.NewEncoder(e.Stdout).Encode(u)
	}
	if err != nil {
		return clientFail(e, err)
	}
	if u.State == control.UpdateFailed {
		fmt.Fprintf(e.Stderr, "kioskd: %s\n", u.Reason)
		return exitFail
	}
	return exitOK
}
