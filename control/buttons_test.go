package control

import (
	"testing"
	"time"
)

func TestButtonText(t *testing.T) {
	b := Button{Name: "coffee", Pin: "GPIO5", Price: "2.00", Mode: "card", Presses: 2, Ignored: 1,
		LastPress: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), LastTxn: "TXN1"}
	if got, want := b.Text(), "button coffee on GPIO5: RM 2.00 card, released; 2 presses, 1 ignored, last 2026-01-02T03:04:05Z TXN1"; got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
	b = Button{Name: "tea", Pin: "GPIO6", Price: "1.00", Mode: "duitnow_qr", Pressed: true}
	if got, want := b.Text(), "button tea on GPIO6: RM 1.00 duitnow_qr, PRESSED; 0 presses, 0 ignored"; got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
}
