package machine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/printer"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/escpos"
)

// errNoPrinter answers a print asked of a machine without a printer.
var errNoPrinter = errors.New("printer disabled or not found")

// printTimeout bounds a selftest page or pairing slip, which someone at
// the machine waits for; receipts are queued and never waited on.
const printTimeout = 15 * time.Second

// openPrinter opens the receipt printer: the profile's, or else the one
// the board's sidecar provides. A missing printer is not an error: it
// shows as no_printer in status and on the fault LED.
func (m *Machine) openPrinter(prof board.Profile) error {
	cp, err := escpos.ParseCodePage(m.pcfg.CodePage)
	if err != nil {
		return fmt.Errorf("machine: printer: %w", err)
	}
	pc := printer.Config{Layout: printer.Layout{Width: m.pcfg.Width, CodePage: cp}, Log: m.log,
		OnChange: func(s printer.Status) {
			var err error
			if s.State.Fault() {
				err = fmt.Errorf("printer %s", s.State)
			}
			m.fault("printer", err)
		}}
	device := prof.PrinterDevice
	if device == "" && m.board.Sidecar != nil {
		if device, err = m.board.Sidecar.Printer(); err != nil {
			m.log.Warn("the board's own printer is not available", "err", err)
			return nil
		}
	}
	if device == "" {
		return nil
	}
	m.prn, err = printer.Open(serial.Config{Device: device, Baud: prof.PrinterBaud}, pc)
	return err
}

// Receipt implements payment.Printer: the receipt is queued, never
// waited for.
func (m *Machine) Receipt(t payment.Txn) {
	if m.prn == nil {
		return
	}
	outcome := printer.Approved
	switch {
	case t.State == payment.Approved && t.Vend == payment.VendReleased && t.Review == "":
	case t.State == payment.Approved:
		outcome = printer.Outcome("PAID - SEE ATTENDANT")
	default:
		outcome = printer.Declined
	}
	r := printer.Receipt{Merchant: m.pcfg.Merchant, Footer: m.pcfg.Footer, Time: t.UpdatedAt.Local(),
		KioskID: m.kiosk, TxnID: t.ID, Amount: int64(t.Amount), Mode: t.Mode, CardLast4: t.CardLast4,
		POSTransactionID: t.POSTransactionID, AuthCode: t.AuthCode, Plan: t.PlanID, Outcome: outcome}
	if !m.prn.Receipt(r) {
		m.log.Warn("receipt dropped: printer queue full", "txn_id", t.ID)
	}
}

// testPage prints the selftest page.
func (m *Machine) testPage(ctx context.Context) error {
	if m.prn == nil {
		return errNoPrinter
	}
	ctx, cancel := context.WithTimeout(ctx, printTimeout)
	defer cancel()
	return m.prn.TestPage(ctx, "kioskd selftest", m.kiosk)
}

// printPairing prints where the POS should connect, with a QR code of
// the first address.
func (m *Machine) printPairing(ctx context.Context, addrs []string) error {
	if m.prn == nil {
		return errNoPrinter
	}
	ctx, cancel := context.WithTimeout(ctx, printTimeout)
	defer cancel()
	lines := []string{"POS PAIRING", "Kiosk " + m.kiosk}
	for _, a := range addrs {
		lines = append(lines, "Connect to "+a)
	}
	qr := ""
	if len(addrs) > 0 {
		qr = control.PairText(addrs[0])
	}
	return m.prn.PrintLines(ctx, lines, qr)
}
