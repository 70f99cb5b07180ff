package sim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/device/printer"
)

// Every slot of the profile becomes a fake pin of its own, through
// board.Open's slot loop, so the outputs can be read and driven.
func TestPins(t *testing.T) {
	b, s, _ := openSim(t, func(p *board.Profile) { p.RelaySense = "SIM_DROP" })
	if b.Relay == nil || b.Sense == nil || b.Green == nil || b.Amber == nil || b.Red == nil {
		t.Fatalf("sim board %+v", b)
	}
	pins := Pins(b)
	if len(pins) != 5 || pins["SIM_RELAY"].Number() != 17 || pins["SIM_DROP"].Number() != 27 {
		t.Fatalf("pins %v", pins)
	}
	if err := b.Relay.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if lv := s.Levels(); len(lv) != 5 || !lv["SIM_RELAY"] || lv["SIM_LED_GREEN"] {
		t.Fatalf("levels %v", lv)
	}
	if Pins(&board.Board{}) != nil {
		t.Error("Pins of a board without the sim's sidecar")
	}
}

// Boards opened side by side share nothing: the pins are made per Open,
// not registered in periph's process-wide gpioreg.
func TestBoardsAreIndependent(t *testing.T) {
	a, _, _ := openSim(t, nil)
	b, _, _ := openSim(t, nil)
	if err := a.Relay.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if err := b.Relay.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if !a.Sidecar.Levels()["SIM_RELAY"] || b.Sidecar.Levels()["SIM_RELAY"] {
		t.Fatalf("levels: a %v, b %v", a.Sidecar.Levels(), b.Sidecar.Levels())
	}
}

// One name for two roles would put an LED pattern on the relay.
func TestOnePinTwiceRefused(t *testing.T) {
	p, _ := board.Lookup(Kind)
	p.LEDRed = p.Relay
	_, err := board.Open(p)
	if err == nil || err.Error() != `board sim: red LED pin "SIM_RELAY" is already the relay pin` {
		t.Fatalf("relay and red LED on one pin: %v", err)
	}
}

// vends.log keeps the format README documents and the tests read.
func TestVendsLog(t *testing.T) {
	_, s, dir := openSim(t, nil)
	if err := s.VendOn("TXN1", "12.50"); err != nil {
		t.Fatal(err)
	}
	s.VendOff("TXN1")
	b, err := os.ReadFile(filepath.Join(dir, "vends.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	on := regexp.MustCompile(`^(\S+) on TXN1 12\.50$`).FindStringSubmatch(lines[0])
	off := regexp.MustCompile(`^(\S+) off TXN1$`).FindStringSubmatch(lines[len(lines)-1])
	if len(lines) != 2 || on == nil || off == nil {
		t.Fatalf("vends.log:\n%s", b)
	}
	for _, stamp := range []string{on[1], off[1]} {
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Errorf("stamp %q: %v", stamp, err)
		}
	}
}

// A vend that cannot be recorded is not made: nobody could see it.
func TestVendOnFailsWithoutItsLog(t *testing.T) {
	_, s, dir := openSim(t, nil)
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	if err := s.VendOn("TXN1", "1.00"); err == nil || !strings.HasPrefix(err.Error(), "sim: ") {
		t.Fatalf("VendOn over a blocked data_dir/sim: %v", err)
	}
}

// board.json is the snapshot as JSON, replaced whole.
func TestSnapshot(t *testing.T) {
	_, s, dir := openSim(t, nil)
	s.Snapshot(map[string]any{"board": "sim", "pins": s.Levels()})
	b, err := os.ReadFile(filepath.Join(dir, "board.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Board string          `json:"board"`
		Pins  map[string]bool `json:"pins"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Board != "sim" || len(got.Pins) != 4 {
		t.Fatalf("board.json %s: %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "board.json.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
}

// Without a data directory the sim keeps no files, and vends still work.
func TestNoDataDir(t *testing.T) {
	p, _ := board.Lookup(Kind)
	b, err := board.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Sidecar.VendOn("TXN1", "1.00"); err != nil {
		t.Fatal(err)
	}
	b.Sidecar.Snapshot(struct{}{})
	b.Sidecar.Close()
	if _, err := os.Stat("sim"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files kept in the working directory: %v", err)
	}
}

// What the simulated printer is sent is decoded into receipts.txt, page
// by page; Close waits for the printer model once its tty is hung up.
func TestPrinterWritesReceipts(t *testing.T) {
	_, s, dir := openSim(t, nil)
	paged := make(chan struct{}, 1)
	s.onPage = func() { paged <- struct{}{} }
	dev, err := s.Printer()
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tty.Write(printer.AppendLines(nil, []string{"HELLO SIM"}, "", printer.Layout{})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-paged:
	case <-time.After(10 * time.Second):
		t.Fatal("the simulated printer never finished the page")
	}
	b, err := os.ReadFile(filepath.Join(dir, "receipts.txt"))
	if err != nil || !strings.Contains(string(b), "HELLO SIM") || !strings.HasSuffix(string(b), "\n----\n") {
		t.Fatalf("receipts.txt %q: %v", b, err)
	}
	tty.Close()
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * printerStopTimeout):
		t.Fatal("Close did not return")
	}
	select {
	case <-s.printerDone:
	default:
		t.Error("Close returned before the printer model stopped")
	}
}
