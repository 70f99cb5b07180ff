package main

// kioskd status and kioskd logs: what the running daemon says of itself.

import (
	"context"
	"encoding/json"
	"fmt"

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
	st.WriteText(e.Stdout)
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
