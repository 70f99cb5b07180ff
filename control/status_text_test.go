package control

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// What a technician reads first: the watchdog line says when it is not
// being fed and which loop stalled, and the payment in progress is named.
func TestStatusWriteText(t *testing.T) {
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st := Status{
		KioskID: "K7", Version: "v1", Board: "rpi4", UptimeS: 90,
		POSListen: "0.0.0.0:5555", POSConnectTo: []string{"192.0.2.7:5555", "198.51.100.2:5555"},
		POS:      []POSState{{Provider: "mobypay", State: "connected", Peer: "192.0.2.9", Since: since}},
		Current:  &payment.Txn{ID: "TXN9", State: payment.Acked, Mode: "card", Amount: 150, Vend: payment.VendNone},
		POSStats: POSStats{Received: 3, BadSignature: 1, Sessions: 2},
		Hardware: Hardware{Watchdog: Watchdog{Device: "i6300ESB timer", Timeout: 5 * time.Second, Stalled: "journal"},
			Faults: map[string]string{"printer": "paper out", "disk": "data partition nearly full: 12.3 MiB free of 7.3 GiB"},
			Disk:   &Disk{Dir: "/data/kioskd", FreeBytes: 12<<20 + 300<<10, TotalBytes: 7500 << 20, WarnBelowBytes: 64 << 20}},
		MDB: &MDBStatus{Device: "tcp://127.0.0.1:7000", Transport: "stream", State: "enabled", Replies: 1234,
			P50: 3 * time.Microsecond, P99: 9 * time.Microsecond, Max: 700*time.Microsecond + 321, Connects: 1},
	}
	var b strings.Builder
	st.WriteText(&b)
	got := b.String()
	for _, want := range []string{
		"kiosk K7, kioskd v1, board rpi4, up 1m30s\n",
		"connect the POS to 192.0.2.7:5555 or 198.51.100.2:5555\n",
		"mobypay: connected 192.0.2.9 since 2026-12-01T09:00:00Z\n",
		"watchdog: i6300ESB timer, timeout 5s, NOT fed: journal stalled\n",
		"fault disk: data partition nearly full: 12.3 MiB free of 7.3 GiB\nfault printer: paper out\n",
		"data partition /data/kioskd: 12.3 MiB free of 7.3 GiB (warning below 64 MiB)\n",
		"mdb reader on tcp://127.0.0.1:7000: enabled, 1234 replies, p50 3µs p99 9µs max 700µs, 0 late\n",
		"payment in progress: acked TXN9 card RM 1.50\n",
		"pos messages: 3 accepted, 0 late, 1 bad signature,",
		"pos connections: 2 sessions,",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status text lacks %q:\n%s", want, got)
		}
	}

	st.Current, st.Hardware.Watchdog = nil, Watchdog{Device: "Software Watchdog", Timeout: 5 * time.Second, Feeding: true}
	st.Hardware.Faults = nil
	st.MDB.Drops, st.MDB.Connects = 2, 3
	b.Reset()
	st.WriteText(&b)
	for _, want := range []string{"watchdog: Software Watchdog, timeout 5s, fed\n", "no payment in progress\n", "0 late; 3 connects, 2 drops, 0 framing errors\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("idle status text lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "fault") {
		t.Errorf("status text without faults shows one:\n%s", b.String())
	}
}

func TestSizeText(t *testing.T) {
	for b, want := range map[uint64]string{
		0:                "0 MiB",
		64 << 20:         "64 MiB",
		12<<20 + 300<<10: "12.3 MiB",
		1<<30 - 1<<10:    "1 GiB",
		1<<30 - 100<<20:  "924 MiB",
		7500 << 20:       "7.3 GiB",
		math.MaxUint64:   "17179869184 GiB",
		1023 << 20:       "1023 MiB",
	} {
		if got := SizeText(b); got != want {
			t.Errorf("SizeText(%d) = %q, want %q", b, got, want)
		}
	}
}
