package main

// kioskd cancel and kioskd plan: acting on the payment in progress.

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
)

// cmdCancel cancels TXN_ID or, without one, the payment in progress as
// the daemon's status names it. With none in progress there is nothing to
// do, which is exit 0 as for a cancel already requested: a controller
// that cancels to be sure nothing is running gets its answer either way.
// A cancel's exit code never says how the payment ended (a success that
// arrives during the grace still wins); pay and the journal do.
func cmdCancel(e *cli.Env, args []string) int {
	fs := e.Flags()
	c, code, ok := dial(e, fs, args, 0, 1)
	if !ok {
		return code
	}
	ctx := context.Background()
	id := fs.Arg(0)
	if id == "" {
		st, err := c.Status(ctx)
		if err != nil {
			return clientFail(e, err)
		}
		if st.Current == nil {
			fmt.Fprintln(e.Stdout, "no payment in progress")
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
		fmt.Fprintf(e.Stdout, "no payment in progress (%s ended before the cancel): %s\n", id, t.Summary())
		return exitOK
	}
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintln(e.Stdout, t.Summary())
	return exitOK
}

func cmdPlan(e *cli.Env, args []string) int {
	fs := e.Flags()
	c, code, ok := dial(e, fs, args, 2, 2)
	if !ok {
		return code
	}
	t, err := c.SelectPlan(context.Background(), fs.Arg(0), fs.Arg(1))
	if err != nil {
		return clientFail(e, err)
	}
	fmt.Fprintln(e.Stdout, t.Summary())
	return exitOK
}
