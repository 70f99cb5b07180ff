package main

// kioskd sim: acting on a running kioskd's simulated board.

import (
	"context"
	"fmt"

	"github.com/kioskd/kioskd/internal/cli"
)

// cmdSimPress presses and releases a price button of a sim-board
// kioskd, as a finger would, and prints the button's counters once it
// is back up; the payment it started is in status and the journal. A
// press while a payment is in progress is ignored there, as on a real
// machine. Any other board has no such route: the daemon answers 404.
func cmdSimPress(e *cli.Env, args []string) int {
	fs := e.Flags()
	c, code, ok := dial(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	b, err := c.SimPress(context.Background(), fs.Arg(0))
	if err != nil {
		return clientFail(e, err)
	}
	// The counters, not the last payment, say what this press did: a
	// press during a payment leaves the last payment as it was.
	line := fmt.Sprintf("pressed %s: %d presses, %d ignored", b.Name, b.Presses, b.Ignored)
	if b.LastTxn != "" {
		line += fmt.Sprintf("; last payment %s (RM %s %s)", b.LastTxn, b.Price, b.Mode)
	}
	if b.LastError != "" {
		line += "; last press started no payment: " + b.LastError
	}
	fmt.Fprintln(e.Stdout, line)
	return exitOK
}
