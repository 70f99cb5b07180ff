package machine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskd/kioskd/board"
	_ "github.com/kioskd/kioskd/board/sim" // the board these tests run on
	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/payment"
)

var discard = slog.New(slog.DiscardHandler)

// testConfig is a machine over a fresh data directory with a short
// pulse and no printer: nothing of it outlives a synctest bubble.
func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{KioskID: "KIOSK-T", DataDir: t.TempDir(), Pulse: 20 * time.Millisecond, WatchdogTimeout: 15 * time.Second}
}

// openSim opens the machine on the sim board of cfg, closed at cleanup.
func openSim(t *testing.T, cfg Config, edit func(*board.Profile)) *Machine {
	t.Helper()
	prof, err := board.Lookup("sim")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&prof)
	}
	m, err := Open(cfg, prof, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close) // a second Close is harmless
	return m
}

// fakeWatchdog is the sim board's watchdog.
func fakeWatchdog(t *testing.T, m *Machine) *watchdog.Fake {
	t.Helper()
	fake, ok := m.wdDev.(*watchdog.Fake)
	if !ok {
		t.Fatalf("sim board watchdog is %T, want the fake", m.wdDev)
	}
	return fake
}

// service is a payment service for m over a journal in dir, running
// until stop, which the test calls (deferred) before it ends: inside a
// synctest bubble everything must have stopped when the test returns.
func service(t *testing.T, m *Machine, dir string) (svc *payment.Service, j *payment.Journal, stop func()) {
	t.Helper()
	j, err := payment.OpenJournal(filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc = payment.NewService(payment.Config{}, j, m, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	return svc, j, func() {
		cancel()
		<-done
		j.Close()
	}
}

// fakePrinter serves a fake ESC/POS printer on a pseudo-terminal and
// returns the device to open and each page it prints.
func fakePrinter(t *testing.T) (string, <-chan printertest.Page) {
	t.Helper()
	master, dev, err := serial.OpenPTY()
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pages := make(chan printertest.Page, 16)
	fake := &printertest.Fake{OnPage: func(p printertest.Page) { pages <- p }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fake.Serve(master) // until the printer side hangs up
	}()
	t.Cleanup(func() {
		master.Close()
		<-done
	})
	return dev, pages
}

// page waits for the fake printer's next page.
func page(t *testing.T, pages <-chan printertest.Page, what string) printertest.Page {
	t.Helper()
	select {
	case p := <-pages:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no page printed: %s", what)
		return printertest.Page{}
	}
}
