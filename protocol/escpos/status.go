package escpos

import (
	"errors"
	"fmt"
	"strings"
)

// Query is what a real-time status request (DLE EOT n) asks about.
type Query byte

// Real-time status requests.
const (
	QueryPrinter Query = 1 // online or offline
	QueryOffline Query = 2 // why offline: cover, paper end, error
	QueryError   Query = 3 // which error: cutter, unrecoverable, auto-recoverable
	QueryPaper   Query = 4 // roll paper sensor: near end, end
)

// AppendStatusQuery appends DLE EOT n. The printer answers it with one
// status byte as soon as it arrives, ahead of anything still buffered for
// printing and also while offline, so it can tell a printer that is out of
// paper from one that is not there.
func AppendStatusQuery(dst []byte, q Query) []byte { return append(dst, dle, eot, byte(q)) }

// ErrStatus is returned for a byte that cannot be the answer to a status
// request.
var ErrStatus = errors.New("escpos: not a status answer")

// Every DLE EOT answer has bits 1 and 4 set and bits 0 and 7 clear. That
// tells it apart from XON/XOFF and from automatic status back blocks, and
// catches a line at the wrong baud rate.
const (
	fixedMask = 0x93
	fixedBits = 0x12
)

// IsStatusByte reports whether b has the fixed bits of a DLE EOT answer.
func IsStatusByte(b byte) bool { return b&fixedMask == fixedBits }

// Status is the printer's condition as its DLE EOT answers tell it. Each
// answer sets the fields of its own query only.
type Status struct {
	// QueryPrinter
	Offline bool // offline, or waiting to go back online

	// QueryOffline
	CoverOpen     bool
	FeedButton    bool // paper is being fed with the button
	PaperEndStop  bool // printing stopped for lack of paper
	ErrorOccurred bool

	// QueryError
	CutterError     bool
	Unrecoverable   bool
	AutoRecoverable bool // e.g. the head is too hot; clears by itself

	// QueryPaper
	PaperNearEnd bool
	PaperOut     bool
}

// Decode sets the fields that answer b to query q tells. A byte without
// the fixed bits of an answer, or a query it does not know, leaves s as it
// was and returns an error matching ErrStatus.
func (s *Status) Decode(q Query, b byte) error {
	if !IsStatusByte(b) {
		return fmt.Errorf("%w: 0x%02x to DLE EOT %d", ErrStatus, b, q)
	}
	bit := func(m byte) bool { return b&m != 0 }
	switch q {
	case QueryPrinter:
		s.Offline = bit(0x08 | 0x20)
	case QueryOffline:
		s.CoverOpen = bit(0x04)
		s.FeedButton = bit(0x08)
		s.PaperEndStop = bit(0x20)
		s.ErrorOccurred = bit(0x40)
	case QueryError:
		// Bit 2 is "recoverable error" on some models and reserved on
		// others; the offline and error-occurred bits cover it.
		s.CutterError = bit(0x08)
		s.Unrecoverable = bit(0x20)
		s.AutoRecoverable = bit(0x40)
	case QueryPaper:
		// Each sensor is reported in two bits; some printers set only one.
		s.PaperNearEnd = bit(0x0c)
		s.PaperOut = bit(0x60)
	default:
		return fmt.Errorf("%w: DLE EOT %d is not a known request", ErrStatus, q)
	}
	return nil
}

// NoPaper reports that the roll is out or printing stopped for it.
func (s Status) NoPaper() bool { return s.PaperOut || s.PaperEndStop }

// Fault reports any condition under which the printer does not print.
func (s Status) Fault() bool {
	return s.Offline || s.CoverOpen || s.PaperEndStop || s.ErrorOccurred ||
		s.CutterError || s.Unrecoverable || s.AutoRecoverable || s.PaperOut
}

// String lists the conditions that are set, or "ready".
func (s Status) String() string {
	var b strings.Builder
	add := func(on bool, name string) {
		if !on {
			return
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
	}
	add(s.PaperOut || s.PaperEndStop, "paper out")
	add(s.PaperNearEnd && !s.PaperOut, "paper near end")
	add(s.CoverOpen, "cover open")
	add(s.CutterError, "cutter error")
	add(s.Unrecoverable, "unrecoverable error")
	add(s.AutoRecoverable, "auto-recoverable error")
	add(s.ErrorOccurred && !s.CutterError && !s.Unrecoverable && !s.AutoRecoverable, "error")
	add(s.FeedButton, "feed button held")
	add(s.Offline && b.Len() == 0, "offline")
	if b.Len() == 0 {
		return "ready"
	}
	return b.String()
}
