//go:build linux

package printer

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/protocol/escpos"
)

// Timeouts kept short for tests, above the serial port's 100ms read timeout.
const (
	testStatusTimeout = 300 * time.Millisecond
	waitFor           = 10 * time.Second // a bound for things that should happen, never reached when they do
)

// rig is a Printer on the slave side of a real pseudo-terminal and a fake
// printer on its master side.
type rig struct {
	t      *testing.T
	p      *Printer
	fake   *printertest.Fake
	pages  chan printertest.Page
	query  chan escpos.Query
	states chan Status
	logged chan struct{} // the printer logs each event after recording it
}

func (r *rig) config() Config {
	return Config{
		StatusTimeout: testStatusTimeout,
		RetryInterval: 50 * time.Millisecond,
		PollInterval:  -1,
		Log:           slog.New(slog.NewTextHandler(tlog{r.t, r.logged}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// openPTY returns a pseudo-terminal's master and slave path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, path, err := serial.OpenPTY()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return master, path
}

// serve runs fake on master until the test ends.
func (r *rig) serve(master *os.File) {
	served := make(chan error, 1)
	go func() { served <- r.fake.Serve(master) }()
	r.t.Cleanup(func() {
		master.Close()
		select {
		case err := <-served:
			if err != nil {
				r.t.Errorf("fake printer: %v", err)
			}
		case <-time.After(waitFor):
			r.t.Error("fake printer did not stop")
		}
	})
}

func newRigFake(t *testing.T, cond printertest.Condition) *rig {
	r := &rig{
		t:      t,
		fake:   &printertest.Fake{},
		pages:  make(chan printertest.Page, 16),
		query:  make(chan escpos.Query, 1024),
		states: make(chan Status, 64),
		logged: make(chan struct{}, 1),
	}
	r.fake.Set(cond)
	r.fake.OnPage = func(p printertest.Page) { r.pages <- p }
	r.fake.OnQuery = func(q escpos.Query) {
		select {
		case r.query <- q:
		default:
		}
	}
	return r
}

// newRig starts the fake in condition cond and a Printer opened by New on
// the port.
func newRig(t *testing.T, cond printertest.Condition, tweak ...func(*Config)) *rig {
	t.Helper()
	r := newRigFake(t, cond)
	cfg := r.config()
	for _, f := range tweak {
		f(&cfg)
	}
	master, path := openPTY(t)
	port, err := serial.Open(serial.Config{Device: path, Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	r.serve(master) // registered first, so it runs after the Printer's Close
	r.start(func(cfg Config) (*Printer, error) { return New(port, cfg) }, cfg)
	return r
}

func (r *rig) start(mk func(Config) (*Printer, error), cfg Config) {
	cfg.OnChange = func(s Status) { r.states <- s }
	p, err := mk(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.p = p
	r.t.Cleanup(func() {
		if err := p.Close(); err != nil {
			r.t.Errorf("Close: %v", err)
		}
	})
}

// waitState waits for the printer to report state s.
func (r *rig) waitState(s State) Status {
	r.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case st := <-r.states:
			if st.State == s {
				return st
			}
		case <-deadline:
			r.t.Fatalf("state %s not reached; status %+v", s, r.p.Status())
		}
	}
}

func (r *rig) waitPage() printertest.Page {
	r.t.Helper()
	select {
	case p := <-r.pages:
		return p
	case <-time.After(waitFor):
		r.t.Fatalf("nothing printed; status %+v", r.p.Status())
	}
	return printertest.Page{}
}

// waitQueries waits until the fake has seen n more status requests.
func (r *rig) waitQueries(n int) {
	r.t.Helper()
	deadline := time.After(waitFor)
	for range n {
		select {
		case <-r.query:
		case <-deadline:
			r.t.Fatalf("no status request; status %+v", r.p.Status())
		}
	}
}

// until waits for cond, re-checking at each status request the fake sees
// and each line the printer logs.
func (r *rig) until(what string, cond func(Status) bool) Status {
	r.t.Helper()
	deadline := time.After(waitFor)
	for {
		if st := r.p.Status(); cond(st) {
			return st
		}
		select {
		case <-r.query:
		case <-r.states:
		case <-r.logged:
		case <-deadline:
			r.t.Fatalf("%s: not reached; status %+v", what, r.p.Status())
		}
	}
}

// forget drops the status requests seen so far.
func (r *rig) forget() {
	for {
		select {
		case <-r.query:
		default:
			return
		}
	}
}

func (r *rig) noPage() {
	r.t.Helper()
	select {
	case p := <-r.pages:
		r.t.Fatalf("printed:\n%s", p.Text())
	default:
	}
}

func receipt(id string) Receipt {
	rc := sampleReceipt()
	rc.TxnID = id
	return rc
}

func TestReceiptOverPTY(t *testing.T) {
	r := newRig(t, printertest.Ready)
	r.waitState(StateOK)
	if !r.p.Receipt(receipt("txn-0001")) {
		t.Fatal("receipt not queued")
	}
	pg := r.waitPage()
	text := pg.Text()
	for _, want := range []string{"KEDAI AH SENG", "RM 12.50", "txn-0001", "APPROVED", "POS123456789", "A1B2C3", "[QR https://r.example/0f1e]"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q on the receipt:\n%s", want, text)
		}
	}
	if !pg.Cut || pg.Condition != printertest.Ready {
		t.Errorf("page cut %v in condition %v", pg.Cut, pg.Condition)
	}
	st := r.until("printed", func(s Status) bool { return s.Printed == 1 })
	if st.State != StateOK || st.Failed != 0 || st.Dropped != 0 || st.Queue != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestNearEndStillPrints(t *testing.T) {
	r := newRig(t, printertest.NearEnd)
	st := r.waitState(StatePaperNearEnd)
	if st.State.Fault() {
		t.Error("near end is a fault")
	}
	r.p.Receipt(receipt("txn-near"))
	if pg := r.waitPage(); !strings.Contains(pg.Text(), "txn-near") {
		t.Errorf("printed %q", pg.Text())
	}
}

// A receipt for a printer out of paper waits, and prints once the paper is
// back, once.
func TestPaperOutHoldsReceipt(t *testing.T) {
	r := newRig(t, printertest.PaperOut)
	st := r.waitState(StatePaperOut)
	if !st.State.Fault() || !strings.Contains(st.LastError, "paper out") {
		t.Errorf("status %+v", st)
	}
	r.forget()
	if !r.p.Receipt(receipt("txn-held")) {
		t.Fatal("receipt not queued")
	}
	r.waitQueries(2 * len(statusQueries)) // two attempts
	r.noPage()
	if st := r.p.Status(); st.Queue != 1 || st.State != StatePaperOut {
		t.Errorf("while held: %+v", st)
	}

	r.fake.Set(printertest.Ready)
	pg := r.waitPage()
	if !strings.Contains(pg.Text(), "txn-held") || pg.Condition != printertest.Ready {
		t.Errorf("printed in %v:\n%s", pg.Condition, pg.Text())
	}
	st = r.until("printed", func(s Status) bool { return s.Printed == 1 })
	if st.State != StateOK || st.Queue != 0 || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("after: %+v", st)
	}
	if n := len(r.fake.Pages()); n != 1 {
		t.Errorf("%d pages", n)
	}
}

// A receipt that waited longer than MaxAge is dropped, not handed to the
// next customer.
func TestPaperOutReceiptExpires(t *testing.T) {
	r := newRig(t, printertest.PaperOut, func(c *Config) { c.MaxAge = 300 * time.Millisecond })
	r.waitState(StatePaperOut)
	r.p.Receipt(receipt("txn-stale"))
	st := r.until("dropped", func(s Status) bool { return s.Dropped == 1 })
	if st.Queue != 0 || st.Printed != 0 {
		t.Errorf("status %+v", st)
	}

	r.fake.Set(printertest.Ready)
	r.p.Receipt(receipt("txn-fresh"))
	pg := r.waitPage()
	if text := pg.Text(); strings.Contains(text, "txn-stale") || !strings.Contains(text, "txn-fresh") {
		t.Errorf("printed:\n%s", text)
	}
}

// Paper that runs out during a receipt is reported at once; that receipt
// counts as failed and is not printed again.
func TestPaperRunsOutDuringReceipt(t *testing.T) {
	r := newRig(t, printertest.Ready)
	r.waitState(StateOK)
	r.fake.SetRoll(1)
	r.p.Receipt(receipt("txn-last"))
	r.waitPage()
	r.waitState(StatePaperOut)
	st := r.until("failed", func(s Status) bool { return s.Failed == 1 })
	if st.Printed != 0 || st.Queue != 0 {
		t.Errorf("status %+v", st)
	}

	r.forget()
	r.p.Receipt(receipt("txn-next"))
	r.waitQueries(2 * len(statusQueries))
	r.noPage()
	r.fake.Set(printertest.Ready)
	if text := r.waitPage().Text(); !strings.Contains(text, "txn-next") {
		t.Errorf("printed:\n%s", text)
	}
	r.until("printed", func(s Status) bool { return s.Printed == 1 && s.Failed == 1 })
}

func TestCoverOpen(t *testing.T) {
	r := newRig(t, printertest.CoverOpen)
	st := r.waitState(StateOffline)
	if !strings.Contains(st.LastError, "cover open") {
		t.Errorf("status %+v", st)
	}
	err := r.p.PrintLines(context.Background(), []string{"x"}, "")
	if err == nil || !strings.Contains(err.Error(), "cover open") {
		t.Errorf("PrintLines: %v", err)
	}
	r.noPage()
}

// A printer that never answers may not be there: no_printer, and nothing
// waits for it.
func TestSilentPrinter(t *testing.T) {
	r := newRig(t, printertest.Silent)
	st := r.waitState(StateNoPrinter)
	if !strings.Contains(st.LastError, "no answer") {
		t.Errorf("status %+v", st)
	}
	start := time.Now()
	for i := range 5 {
		r.p.Receipt(receipt("txn-" + string(rune('a'+i))))
	}
	// Each attempt waits StatusTimeout for an answer; the calls must not.
	if d := time.Since(start); d >= testStatusTimeout {
		t.Errorf("5 Receipt calls took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	start = time.Now()
	if err := r.p.TestPage(ctx); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("TestPage: %v", err)
	}
	t.Logf("TestPage failed after %v", time.Since(start))
	r.noPage()
}

// A printer that answered once and then stops is offline, not missing.
func TestPrinterGoesSilent(t *testing.T) {
	r := newRig(t, printertest.Ready)
	r.waitState(StateOK)
	r.fake.Set(printertest.Silent)
	start := time.Now()
	r.p.Receipt(receipt("txn-silent"))
	if d := time.Since(start); d >= testStatusTimeout {
		t.Errorf("Receipt took %v", d)
	}
	st := r.waitState(StateOffline)
	if st.Queue != 1 {
		t.Errorf("status %+v", st)
	}
	// Back again: the held receipt prints, the late bytes of broken-off
	// exchanges are not taken for answers.
	r.fake.Set(printertest.Ready)
	if text := r.waitPage().Text(); !strings.Contains(text, "txn-silent") {
		t.Errorf("printed:\n%s", text)
	}
	r.waitState(StateOK)
}

func TestQueueOverflow(t *testing.T) {
	r := newRig(t, printertest.Silent, func(c *Config) { c.QueueLen = 2 })
	r.waitState(StateNoPrinter)
	r.waitQueries(len(statusQueries)) // the probe at start
	r.p.Receipt(receipt("txn-0"))
	r.waitQueries(1) // the printer goroutine holds txn-0 now
	var queued int
	for i := 1; i <= 5; i++ {
		if r.p.Receipt(receipt("txn-" + string(rune('0'+i)))) {
			queued++
		}
	}
	st := r.p.Status()
	if queued != 2 || st.Dropped != 3 || st.Queue != 3 {
		t.Errorf("queued %d; status %+v", queued, st)
	}
}

func TestPrintLinesAndTestPage(t *testing.T) {
	r := newRig(t, printertest.Ready)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.p.PrintLines(ctx, []string{"Kiosk address", "10.0.0.5:8080"}, "http://10.0.0.5:8080"); err != nil {
		t.Fatal(err)
	}
	pg := r.waitPage()
	if got, want := pg.Text(), "Kiosk address\n10.0.0.5:8080\n[QR http://10.0.0.5:8080]\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := r.p.TestPage(ctx, "K-0001"); err != nil {
		t.Fatal(err)
	}
	if text := r.waitPage().Text(); !strings.Contains(text, "PRINTER TEST\nK-0001\n") {
		t.Errorf("test page:\n%s", text)
	}
	if st := r.p.Status(); st.Printed != 2 {
		t.Errorf("status %+v", st)
	}

	r.fake.Set(printertest.PaperOut)
	if err := r.p.TestPage(ctx); err == nil || !strings.Contains(err.Error(), "paper out") {
		t.Errorf("TestPage out of paper: %v", err)
	}
	r.noPage()
}

// A printer with no return line is printed to without asking.
func TestBlind(t *testing.T) {
	r := newRig(t, printertest.Silent, func(c *Config) { c.Blind = true })
	r.waitState(StateOK)
	r.p.Receipt(receipt("txn-blind"))
	if text := r.waitPage().Text(); !strings.Contains(text, "txn-blind") {
		t.Errorf("printed:\n%s", text)
	}
	select {
	case q := <-r.query:
		t.Errorf("blind printer asked DLE EOT %d", q)
	default:
	}
}

// Open tolerates a missing device and finds it when it appears, as a USB
// printer plugged in after boot.
func TestOpenMissingThenPlugged(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyPRINTER")
	r := newRigFake(t, printertest.Ready)
	cfg := r.config()
	cfg.PollInterval = 50 * time.Millisecond
	r.start(func(cfg Config) (*Printer, error) {
		return Open(serial.Config{Device: dev, Baud: 9600, ReadTimeout: 100 * time.Millisecond}, cfg)
	}, cfg)
	st := r.waitState(StateNoPrinter)
	if !strings.Contains(st.LastError, dev) {
		t.Errorf("status %+v", st)
	}
	if !r.p.Receipt(receipt("txn-early")) {
		t.Fatal("receipt not queued")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.p.PrintLines(ctx, []string{"x"}, ""); err == nil || !strings.Contains(err.Error(), dev) {
		t.Errorf("PrintLines without a device: %v", err)
	}

	master, path := openPTY(t)
	r.serve(master)
	if err := os.Symlink(path, dev); err != nil {
		t.Fatal(err)
	}
	r.waitState(StateOK)
	if text := r.waitPage().Text(); !strings.Contains(text, "txn-early") {
		t.Errorf("printed:\n%s", text)
	}
}

func TestClose(t *testing.T) {
	r := newRig(t, printertest.Silent)
	r.waitState(StateNoPrinter)
	r.p.Receipt(receipt("txn-1"))
	r.p.Receipt(receipt("txn-2"))
	start := time.Now()
	if err := r.p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if r.p.Receipt(receipt("txn-3")) {
		t.Error("queued after Close")
	}
	if st := r.p.Status(); st.Dropped != 3 || st.Queue != 0 {
		t.Errorf("status %+v", st)
	}
	if err := r.p.TestPage(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("TestPage after Close: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []Config{
		{QueueLen: -1},
		{StatusTimeout: -time.Second},
		{MaxAge: -1},
		{Layout: Layout{Width: 5}},
	} {
		if _, err := New(nil, c); err == nil || !strings.HasPrefix(err.Error(), "printer: ") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := Open(serial.Config{Baud: 9600}, Config{}); err == nil {
		t.Error("Open without a device")
	}
}

// tlog sends the printer's log lines to the test's log.
type tlog struct {
	t      *testing.T
	logged chan<- struct{}
}

var tlogMu sync.Mutex

func (w tlog) Write(b []byte) (int, error) {
	tlogMu.Lock()
	defer tlogMu.Unlock()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	select {
	case w.logged <- struct{}{}:
	default:
	}
	return len(b), nil
}
