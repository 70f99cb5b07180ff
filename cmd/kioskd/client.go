package main

// How the client commands find the daemon, and what they make of its answers.

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/payment"
)

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

func (c *clientFlags) client() (*control.Client, error) {
	path := c.control
	if path == "" {
		cfg, err := config.Load(c.configPath())
		if err != nil {
			return nil, err
		}
		path = cfg.Control.Socket
	}
	cl := control.NewClient(path)
	cl.FirstAnswer = requestTimeout
	return cl, nil
}

// clientFail reports a client command's error and returns its exit code:
// no answer from the daemon, a refusal or an unreadable answer, or else
// the command's own config or arguments (nothing was sent).
func clientFail(e *cli.Env, err error) int {
	fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
	var na *control.NoAnswerError
	switch {
	case errors.As(err, &na):
		return exitUnreachable
	case control.Answered(err):
		return exitFail
	}
	return exitUsage
}

func payExit(t payment.Txn) int {
	switch {
	case t.State == payment.Approved && t.Review == "" && t.Vend == payment.VendReleased:
		return exitOK
	case t.State == payment.Declined || t.State == payment.Cancelled:
		return exitDeclined
	}
	return exitUnclear
}

// dial starts a client command: the flags the command registered on fs
// and -config/-control parsed, min to max arguments checked, and a
// client of the daemon they name (nothing is sent yet); or the exit
// code to return.
func dial(e *cli.Env, fs *flag.FlagSet, args []string, min, max int) (*control.Client, int, bool) {
	c, _, code, ok := dialFlags(e, fs, args, min, max)
	return c, code, ok
}

// dialFlags is dial for a command that needs more of the config than
// the socket: it returns the parsed -config/-control too.
func dialFlags(e *cli.Env, fs *flag.FlagSet, args []string, min, max int) (*control.Client, *clientFlags, int, bool) {
	cf := new(clientFlags)
	cf.register(fs)
	if code, ok := e.Parse(fs, args, min, max); !ok {
		return nil, nil, code, false
	}
	c, err := cf.client()
	if err != nil {
		return nil, nil, clientFail(e, err), false
	}
	return c, cf, 0, true
}
