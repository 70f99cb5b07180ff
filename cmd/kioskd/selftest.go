package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// selftest exercises each device. The relay is pulsed only when asked,
// and never while a payment is in progress: a selftest must not hand out
// a product someone is paying for.
func (h *hardware) selftest(ctx context.Context, svc *payment.Service, pulse bool) []control.Check {
	var out []control.Check
	add := func(name string, err error, okDetail string) {
		c := control.Check{Name: name, OK: err == nil, Detail: okDetail}
		if err != nil {
			c.Detail = err.Error()
		}
		out = append(out, c)
	}
	add("leds", h.leds.Cycle(ctx, 300*time.Millisecond), "green, amber, red, all, none")
	switch {
	case !pulse:
		out = append(out, control.Check{Name: "relay", OK: true, Detail: "not pulsed (use -relay)"})
	case svc.Current() != nil:
		add("relay", errors.New("a payment is in progress; not pulsing"), "")
	default:
		err := h.relay.Pulse(ctx)
		add("relay", err, fmt.Sprintf("pulsed; %d pulses since start", h.relay.State().Pulses))
	}
	add("printer", h.testPage(), "test page printed")
	add("watchdog", h.wd.Check(), fmt.Sprintf("%s fed, timeout %s", h.wd.Status().Device, h.wdDev.Timeout()))
	return out
}

// hardwareRoutes are the maintenance endpoints that need the devices.
func hardwareRoutes(hw *hardware, svc *payment.Service, posAddr func() []string) []control.Route {
	return []control.Route{
		{Pattern: "POST /v1/selftest", Handler: func(w http.ResponseWriter, r *http.Request) {
			res := hw.selftest(r.Context(), svc, r.URL.Query().Get("relay") == "1")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(res)
		}},
		{Pattern: "POST /v1/pair/print", Handler: func(w http.ResponseWriter, r *http.Request) {
			addrs := posAddr()
			err := hw.printPairing(addrs)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(control.Error{Error: err.Error()})
				return
			}
			json.NewEncoder(w).Encode(control.PairPrinted{Printed: addrs})
		}},
	}
}

func cmdSelftest(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	pulse := fs.Bool("relay", false, "also pulse the vend relay (releases a product on a real machine)")
	asJSON := fs.Bool("json", false, "print results as JSON")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return clientFail(e, err)
	}
	res, err := c.Selftest(context.Background(), *pulse)
	if err != nil {
		return clientFail(e, err)
	}
	if *asJSON {
		json.NewEncoder(e.stdout).Encode(res)
	}
	code := exitOK
	for _, r := range res {
		word := "pass"
		if !r.OK {
			word, code = "FAIL", exitFail
		}
		if !*asJSON {
			fmt.Fprintf(e.stdout, "%s %-9s %s\n", word, r.Name, r.Detail)
		}
	}
	return code
}

// cmdPair shows where the POS should connect, as text and as a QR code
// the POS app can scan, and asks the daemon to print it. Without a
// running daemon the addresses come from the config.
func cmdPair(e *env, args []string) int {
	fs := e.flags()
	var cf clientFlags
	cf.register(fs)
	print := fs.Bool("print", false, "also print the pairing slip on the receipt printer")
	light := fs.Bool("light", false, "draw the QR code for a light-background terminal")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	addrs, err := pairAddrs(&cf)
	if err != nil {
		return clientFail(e, err)
	}
	for _, a := range addrs {
		text := pairText(a)
		fmt.Fprintf(e.stdout, "Connect the POS to %s (scan: %q)\n", a, text)
		if err := writeQR(e.stdout, text, *light); err != nil {
			fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
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
		fmt.Fprintln(e.stdout, "pairing slip printed")
	}
	return exitOK
}

// pairText is what the QR code holds: the bare IP when the POS app's
// default port is used (the app's field is "IP address"), else ip:port.
func pairText(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port == "8080" {
		return host
	}
	return addr
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
	return connectAddrs(&net.TCPAddr{IP: net.ParseIP(host), Port: p}), nil
}

// writeQR draws a QR code with half blocks, two modules per character
// row, with the quiet zone the standard asks for. By default light
// modules are drawn, which reads correctly on the usual dark console.
func writeQR(w interface{ Write([]byte) (int, error) }, text string, lightTerminal bool) error {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	const quiet = 2
	n := code.Size
	dark := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n || y >= n {
			return false
		}
		return code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := dark(x, y), dark(x, y+1)
			if !lightTerminal { // draw the light modules
				top, bottom = !top, !bottom
			}
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err = w.Write([]byte(b.String()))
	return err
}
