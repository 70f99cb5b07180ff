package machine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// route finds one of m's routes by its pattern.
func route(t *testing.T, m *Machine, svc *payment.Service, addrs []string, pattern string) http.HandlerFunc {
	t.Helper()
	for _, r := range m.Routes(svc, func() []string { return addrs }) {
		if r.Pattern == pattern {
			return r.Handler
		}
	}
	t.Fatalf("no route %s", pattern)
	return nil
}

// The selftest checks each device; the relay is pulsed only when asked.
// Without a printer its check fails, and says why. The LED cycle and
// the pulse pass in fake time.
func TestSelftest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		svc, j, stop := service(t, m, cfg.DataDir)
		defer stop()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx, svc, j) }()
		defer func() { cancel(); <-done }()
		synctest.Wait() // the supervisor runs and the probe has beaten once

		selftest := route(t, m, svc, nil, "POST /v1/selftest")
		for _, query := range []string{"", "?relay=1"} {
			w := httptest.NewRecorder()
			selftest(w, httptest.NewRequest("POST", "/v1/selftest"+query, nil))
			var got []control.Check
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got) != 4 {
				t.Fatalf("selftest%s: %s %v", query, w.Body.Bytes(), err)
			}
			checks := map[string]control.Check{}
			for _, c := range got {
				checks[c.Name] = c
			}
			if !checks["leds"].OK || !checks["relay"].OK || !checks["watchdog"].OK {
				t.Errorf("selftest%s: %+v", query, got)
			}
			if c := checks["printer"]; c.OK || c.Detail != errNoPrinter.Error() {
				t.Errorf("selftest%s printer without one: %+v", query, c)
			}
			if want := len(query) / len("?relay=1"); m.relay.State().Pulses != want {
				t.Errorf("selftest%s: %d pulses, want %d", query, m.relay.State().Pulses, want)
			}
		}
	})
}

// A pairing slip without a printer is refused, so the CLI can say so.
func TestPairPrintWithoutPrinter(t *testing.T) {
	m := openSim(t, testConfig(t), nil)
	w := httptest.NewRecorder()
	route(t, m, nil, []string{"10.0.0.5:8080"}, "POST /v1/pair/print")(w, httptest.NewRequest("POST", "/v1/pair/print", nil))
	var e control.Error
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != errNoPrinter.Error() {
		t.Fatalf("pair print without a printer: %d %s", w.Code, w.Body.Bytes())
	}
}

// On a printer the profile names (here a fake on a pseudo-terminal):
// the pairing slip holds every address and the QR code the CLI draws,
// and a receipt says what happened to the vend.
func TestPrinting(t *testing.T) {
	dev, pages := fakePrinter(t)
	cfg := testConfig(t)
	cfg.Printer = PrinterConfig{Enabled: true, Merchant: []string{"ACME VENDING"}, Footer: []string{"THANK YOU"}, CodePage: "cp437"}
	m := openSim(t, cfg, func(p *board.Profile) { p.PrinterDevice = dev })
	addrs := []string{"10.0.0.5:8080", "192.168.1.9:8080"}

	w := httptest.NewRecorder()
	route(t, m, nil, addrs, "POST /v1/pair/print")(w, httptest.NewRequest("POST", "/v1/pair/print", nil))
	var pp control.PairPrinted
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &pp) != nil || len(pp.Printed) != 2 {
		t.Fatalf("pair print: %d %s", w.Code, w.Body.Bytes())
	}
	slip := page(t, pages, "pairing slip").Text()
	for _, want := range []string{"POS PAIRING", "Kiosk KIOSK-T", "Connect to 10.0.0.5:8080", "Connect to 192.168.1.9:8080", "[QR 10.0.0.5]"} {
		if !strings.Contains(slip, want) {
			t.Errorf("pairing slip lacks %q:\n%s", want, slip)
		}
	}

	for _, c := range []struct {
		txn  payment.Txn
		want string
	}{
		{payment.Txn{ID: "TXN1", Amount: 750, State: payment.Approved, Vend: payment.VendReleased}, "APPROVED"},
		{payment.Txn{ID: "TXN2", Amount: 750, State: payment.Approved, Vend: payment.VendFailed}, "PAID - SEE ATTENDANT"},
		{payment.Txn{ID: "TXN3", Amount: 750, State: payment.Declined}, "DECLINED"},
	} {
		c.txn.UpdatedAt = time.Now()
		m.Receipt(c.txn)
		r := page(t, pages, "receipt of "+c.txn.ID).Text()
		for _, want := range []string{"ACME VENDING", "THANK YOU", c.txn.ID, "RM 7.50", c.want} {
			if !strings.Contains(r, want) {
				t.Errorf("receipt of %s lacks %q:\n%s", c.txn.ID, want, r)
			}
		}
	}
	// Printed counts lag the pages: the driver counts a job once the
	// printer has answered after it, past the fake's cut.
	if st := m.State(); st.Printer == nil || st.Printer.State != "ok" {
		t.Errorf("printer status %+v", st.Printer)
	}
}
