package control

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WriteText writes the status as `kioskd status` shows it: a few lines
// for a technician at the console, the POS link and the watchdog first.
func (s Status) WriteText(w io.Writer) {
	fmt.Fprintf(w, "kiosk %s, kioskd %s, board %s, up %s\n", s.KioskID, s.Version, s.Board, time.Duration(s.UptimeS)*time.Second)
	fmt.Fprintf(w, "pos server on %s; connect the POS to %s\n", s.POSListen, strings.Join(s.POSConnectTo, " or "))
	for _, p := range s.POS {
		peer := ""
		if p.Peer != "" {
			peer = " " + p.Peer
		}
		fmt.Fprintf(w, "%s: %s%s since %s\n", p.Provider, p.State, peer, p.Since.Format(time.RFC3339))
	}
	if wd := s.Hardware.Watchdog; wd.Device != "" {
		feeding := "fed"
		switch {
		case wd.Stalled != "":
			feeding = "NOT fed: " + wd.Stalled + " stalled"
		case !wd.Feeding:
			feeding = "not fed"
		}
		fmt.Fprintf(w, "watchdog: %s, timeout %s, %s\n", wd.Device, wd.Timeout, feeding)
	}
	if s.Slot != "" {
		fmt.Fprintf(w, "booted from slot %s\n", s.Slot)
	}
	s.Update.writeText(w)
	// The faults behind the red LED, one line each, so that a technician
	// at the console reads what the LED cannot say.
	for _, name := range slices.Sorted(maps.Keys(s.Hardware.Faults)) {
		fmt.Fprintf(w, "fault %s: %s\n", name, s.Hardware.Faults[name])
	}
	for _, b := range s.Hardware.Buttons {
		fmt.Fprintln(w, b.Text())
	}
	if d := s.Hardware.Disk; d != nil {
		fmt.Fprintf(w, "data partition %s: %s free of %s (warning below %s)\n",
			d.Dir, SizeText(d.FreeBytes), SizeText(d.TotalBytes), SizeText(d.WarnBelowBytes))
	}
	if f := s.Fleet; f != nil {
		conn := "connected to " + f.Broker
		if !f.Connected {
			conn = "NOT connected to " + f.Broker
			if f.LastError != "" {
				conn += " (" + f.LastError + ")"
			}
		}
		fmt.Fprintf(w, "fleet: %s, shipped through seq %d, %d behind\n", conn, f.ShippedSeq, f.Lag)
	}
	if m := s.MDB; m != nil {
		fmt.Fprintln(w, m.Text())
	}
	if s.Current != nil {
		fmt.Fprintf(w, "payment in progress: %s\n", s.Current.Summary())
	} else {
		fmt.Fprintln(w, "no payment in progress")
	}
	ps := s.POSStats
	fmt.Fprintf(w, "pos messages: %d accepted, %d late, %d bad signature, %d malformed, %d replayed, %d oversize\n",
		ps.Received, ps.Late, ps.BadSignature, ps.Malformed, ps.Replayed, ps.Oversize)
	fmt.Fprintf(w, "pos connections: %d sessions, %d refused, %d held pending, %d took over, %d squatters displaced; %d pings, %d signed without a nonce\n",
		ps.Sessions, ps.Rejected, ps.Pending, ps.Promoted, ps.Displaced, ps.Pings, ps.NoNonce)
}

// SizeText is a byte count as an operator reads it: MiB below a GiB,
// GiB from there, to one decimal, which is left off when it is 0 (the
// config counts whole MiB).
func SizeText(b uint64) string {
	const mib, gib = 1 << 20, 1 << 30
	v, unit := float64(b)/mib, "MiB"
	if v >= 1023.95 { // what would round to 1024.0 MiB is 1.0 GiB
		v, unit = float64(b)/gib, "GiB"
	}
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0") + " " + unit
}

// Text is the reader's line in `kioskd status`: its bus, its state and
// how fast it answers, which is what a technician at a vending machine
// that will not take cards looks at first. The quantiles are bucket
// bounds already; the maximum is measured to the nanosecond, which a
// technician has no use for.
func (m MDBStatus) Text() string {
	if m.Transport == "qibixx" {
		// The board answers the bus: kioskd times nothing, and a refused
		// line is the board's, not the bus's.
		line := fmt.Sprintf("mdb reader on %s: Qibixx board, %s, %d lines from the board", m.Device, m.State, m.Replies)
		if m.Drops > 0 || m.FramingErrors > 0 {
			line += fmt.Sprintf("; %d connects, %d drops, %d lines refused", m.Connects, m.Drops, m.FramingErrors)
		}
		return line
	}
	line := fmt.Sprintf("mdb reader on %s: %s, %d replies, p50 %s p99 %s max %s, %d late",
		m.Device, m.State, m.Replies, m.P50, m.P99, m.Max.Round(time.Microsecond), m.Late)
	if m.Drops > 0 || m.FramingErrors > 0 {
		line += fmt.Sprintf("; %d connects, %d drops, %d framing errors", m.Connects, m.Drops, m.FramingErrors)
	}
	return line
}

// writeText is the update's lines of `kioskd status`: nothing while idle
// with no failure on record.
func (u Update) writeText(w io.Writer) {
	switch u.State {
	case UpdateWaiting, UpdateInstalling, UpdateRebooting:
		fmt.Fprintf(w, "update %s: %s (%s)\n", u.State, u.Bundle, u.Reason)
	case UpdateFailed:
		fmt.Fprintf(w, "update of %s failed: %s\n", u.Bundle, u.Reason)
	}
	if f := u.LastFailed; f != nil {
		fmt.Fprintf(w, "update to %s failed and was rolled back at %s; not retried\n", f.Version, f.At.UTC().Format(time.RFC3339))
	}
}
