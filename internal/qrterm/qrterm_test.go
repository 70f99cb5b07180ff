package qrterm

import (
	"bytes"
	"strings"
	"testing"

	"rsc.io/qr"
)

// The drawing is read back module by module and compared with the code
// itself: every module in its place, the quiet zone light, and the dark
// console's drawing the exact inverse of the light one's.
func TestWriteDrawsEveryModule(t *testing.T) {
	const text = "mobypay-kiosk://192.0.2.7:5555"
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	for _, light := range []bool{true, false} {
		var b bytes.Buffer
		if err := Write(&b, text, light); err != nil {
			t.Fatal(err)
		}
		rows := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		const quiet = 2
		side := code.Size + 2*quiet
		if want := (side + 1) / 2; len(rows) != want {
			t.Fatalf("light=%v: %d rows, want %d", light, len(rows), want)
		}
		for r, row := range rows {
			cells := []rune(row)
			if len(cells) != side {
				t.Fatalf("light=%v: row %d has %d cells, want %d", light, r, len(cells), side)
			}
			for c, cell := range cells {
				top, bottom := halves(t, cell)
				if !light {
					top, bottom = !top, !bottom
				}
				x, y := c-quiet, 2*r-quiet
				if top != dark(code, x, y) || bottom != dark(code, x, y+1) {
					t.Fatalf("light=%v: module (%d,%d)/(%d,%d) drawn as %q", light, x, y, x, y+1, cell)
				}
			}
		}
	}
}

func dark(code *qr.Code, x, y int) bool {
	if x < 0 || y < 0 || x >= code.Size || y >= code.Size {
		return false // the quiet zone
	}
	return code.Black(x, y)
}

func halves(t *testing.T, r rune) (top, bottom bool) {
	switch r {
	case '█':
		return true, true
	case '▀':
		return true, false
	case '▄':
		return false, true
	case ' ':
		return false, false
	}
	t.Fatalf("unexpected cell %q", r)
	return false, false
}

func TestWriteRefusesWhatNoCodeHolds(t *testing.T) {
	if err := Write(&bytes.Buffer{}, strings.Repeat("x", 5000), false); err == nil {
		t.Fatal("a text no QR code can hold was drawn")
	}
}
