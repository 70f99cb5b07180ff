package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/internal/qrterm"
)

func cmdSelftest(e *cli.Env, args []string) int {
	fs := e.Flags()
	pulse := fs.Bool("relay", false, "also pulse the vend relay (releases a product on a real machine)")
	asJSON := fs.Bool("json", false, "print results as JSON")
	c, code, ok := dial(e, fs, args, 0, 0)
	if !ok {
		return code
	}
	res, err := c.Selftest(context.Background(), *pulse)
	if err != nil {
		return clientFail(e, err)
	}
	if *asJSON {
		json.NewEncoder(e.Stdout).Encode(res)
	}
	code = exitOK
	for _, r := range res {
		word := "pass"
		if !r.OK {
			word, code = "FAIL", exitFail
		}
		if !*asJSON {
			fmt.Fprintf(e.Stdout, "%s %-9s %s\n", word, r.Name, r.Detail)
		}
	}
	return code
}

// cmdPair shows where the POS should connect, as text and as a QR code
// the POS app can scan, and asks the daemon to print it. Without a
// running daemon the addresses come from the config.
func cmdPair(e *cli.Env, args []string) int {
	fs := e.Flags()
	var cf clientFlags
	cf.register(fs)
	print := fs.Bool("print", false, "also print the pairing slip on the receipt printer")
	light := fs.Bool("light", false, "draw the QR code for a light-background terminal")
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return code
	}
	addrs, err := pairAddrs(&cf)
	if err != nil {
		return clientFail(e, err)
	}
	for _, a := range addrs {
		text := control.PairText(a)
		fmt.Fprintf(e.Stdout, "Connect the POS to %s (scan: %q)\n", a, text)
		if err := qrterm.Write(e.Stdout, text, *light); err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
			return exitFail
		}
	}
	if *print {
		c, err := cf.client()
		if err != nil {
			return clientFail(e, err)
		}
		if _, err := c.Pair(context.Background()); err != nil {
			return clientFail(e, err)
		}
		fmt.Fprintln(e.Stdout, "pairing slip printed")
	}
	return exitOK
}

func pairAddrs(cf *clientFlags) ([]string, error) {
	if c, err := cf.client(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if st, err := c.Status(ctx); err == nil && len(st.POSConnectTo) > 0 {
			return st.POSConnectTo, nil
		}
	}
	cfg, err := config.Load(cf.configPath())
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(cfg.POS.Listen)
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	return control.ConnectAddrs(&net.TCPAddr{IP: net.ParseIP(host), Port: p}), nil
}
