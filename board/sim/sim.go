// Package sim is the whole simulated board in one room, for development
// and tests: periph gpiotest pins in place of the header, an ESC/POS
// printer model on a pseudo-terminal, and the files under data_dir/sim
// where a person sees what a real machine would have done: vends.log
// (one line as the relay energises, "RFC3339Nano on TXN AMOUNT", one as
// its pulse ends, "RFC3339Nano off TXN"), receipts.txt (each printed
// page, then "----") and board.json (the board's status, refreshed).
//
// It registers the kind "sim" with package board when linked, as
// periph's host drivers do: import it for the side effect.
package sim

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/device/serial"
)

// Kind is the board kind this package registers.
const Kind = "sim"

func init() { board.Register(Kind, driver{}) }

// The sim's default pins have names no real board uses, so that a sim
// config put on a Pi fails loudly instead of driving its header.
var profile = board.Profile{Kind: Kind, Relay: "SIM_RELAY", RelayActiveLow: true, LEDGreen: "SIM_LED_GREEN",
	LEDAmber: "SIM_LED_AMBER", LEDRed: "SIM_LED_RED", PrinterBaud: 9600}

// bcm numbers the fake pins as the Pi profiles wire the same roles, so
// that a sim pin's number reads like the real one's.
var bcm = map[string]int{"relay": 17, "relay sense": 27, "green LED": 22, "amber LED": 23, "red LED": 24}

type driver struct{}

func (driver) Profile() board.Profile { return profile }

func (driver) Open(_ board.Profile, o board.Options) (board.Pins, error) {
	s := &simBoard{log: o.Log.With("component", "sim"), pins: map[string]*gpiotest.Pin{}}
	if o.DataDir != "" {
		s.dir = filepath.Join(o.DataDir, "sim")
	}
	return s, nil
}

// simBoard is one opened sim board: its own pins and its own files.
type simBoard struct {
	dir string // "" keeps no files
	log *slog.Logger
	// pins are made fresh for each board and never registered in periph's
	// gpioreg: its names are global to the process and cannot be
	// unregistered, and tests open many sim boards in one process, some
	// in parallel, each of which must start from its own safe levels.
	pins map[string]*gpiotest.Pin

	mu          sync.Mutex    // serialises appends to the files
	printerDone chan struct{} // closed when the simulated printer stops; nil before it starts
	snapFailed  bool          // the last Snapshot failed
	onPage      func()        // tests: after each page is written to receipts.txt
}

func (s *simBoard) Sidecar() board.Sidecar { return s }

// Resolve makes a fresh gpiotest pin for each named pin. Two roles on
// one name are refused, as on a real board: one fake would carry both
// the relay and an LED pattern.
func (s *simBoard) Resolve(specs []board.PinSpec) ([]gpio.PinIO, []error) {
	out := make([]gpio.PinIO, len(specs))
	owner := map[string]string{}
	var errs []error
	for i, sp := range specs {
		if sp.Pin == "" {
			continue
		}
		if o, dup := owner[sp.Pin]; dup {
			errs = append(errs, fmt.Errorf("%s pin %q is already the %s pin", sp.Role, sp.Pin, o))
			continue
		}
		owner[sp.Pin] = sp.Role
		p := &gpiotest.Pin{N: sp.Pin, Num: bcm[sp.Role], EdgesChan: make(chan gpio.Level, 1)}
		s.pins[sp.Pin] = p
		out[i] = p
	}
	return out, errs
}

// Pins returns the fake pins of a sim board by name, so that tests can
// read and drive them; nil for any other board.
func Pins(b *board.Board) map[string]*gpiotest.Pin {
	s, ok := b.Sidecar.(*simBoard)
	if !ok {
		return nil
	}
	return s.pins
}

// DriveInput implements board.InputDriver: the pin reads l from now on,
// as a button wired to it would make it. An edge is offered to a reader
// that waits for one, never blocking the caller.
func (s *simBoard) DriveInput(pin string, l gpio.Level) error {
	p, ok := s.pins[pin]
	if !ok {
		return fmt.Errorf("sim: no pin %q", pin)
	}
	p.Lock()
	changed := p.L != l
	p.L = l
	p.Unlock()
	if changed {
		select {
		case p.EdgesChan <- l:
		default:
		}
	}
	return nil
}

func (s *simBoard) Levels() map[string]bool {
	out := make(map[string]bool, len(s.pins))
	for name, p := range s.pins {
		p.Lock()
		out[name] = p.L == gpio.High
		p.Unlock()
	}
	return out
}

func (s *simBoard) VendOn(txnID, amount string) error {
	if err := s.appendLine("vends.log", time.Now().Format(time.RFC3339Nano)+" on "+txnID+" "+amount); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	s.log.Info("relay on (simulated)", "txn_id", txnID)
	return nil
}

func (s *simBoard) VendOff(txnID string) {
	if err := s.appendLine("vends.log", time.Now().Format(time.RFC3339Nano)+" off "+txnID); err != nil {
		s.log.Warn("vends.log not written", "err", err)
	}
}

// Printer runs a simulated ESC/POS printer on a pseudo-terminal and
// writes what it prints to receipts.txt. It serves until the printer
// side closes the tty, which Close then waits for.
func (s *simBoard) Printer() (string, error) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		return "", fmt.Errorf("sim: printer: %w", err)
	}
	fake := &printertest.Fake{OnPage: func(p printertest.Page) {
		if err := s.appendLine("receipts.txt", p.Text()+"\n----"); err != nil {
			s.log.Warn("simulated receipt not written", "err", err)
		}
		if s.onPage != nil {
			s.onPage()
		}
	}}
	s.printerDone = make(chan struct{})
	go func() {
		defer close(s.printerDone)
		fake.Serve(master)
		master.Close()
	}()
	return slave, nil
}

// printerStopTimeout bounds Close: a printer model that does not see
// the hang-up must not hold up kioskd's exit.
const printerStopTimeout = 5 * time.Second

func (s *simBoard) Close() {
	if s.printerDone == nil {
		return
	}
	t := time.NewTimer(printerStopTimeout)
	defer t.Stop()
	select {
	case <-s.printerDone:
	case <-t.C:
		s.log.Warn("simulated printer did not stop")
	}
}

// Snapshot keeps board.json: what a real board's pins, relay and
// watchdog would be doing now. It is replaced by a rename, so a reader
// never sees half of it. A failure is logged once, not every second.
func (s *simBoard) Snapshot(state any) {
	err := s.writeSnapshot(state)
	s.mu.Lock()
	failedBefore := s.snapFailed
	s.snapFailed = err != nil
	s.mu.Unlock()
	if err != nil && !failedBefore {
		s.log.Warn("board.json not written", "err", err)
	}
}

func (s *simBoard) writeSnapshot(state any) error {
	if s.dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "board.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "board.json"))
}

func (s *simBoard) appendLine(name, line string) error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
