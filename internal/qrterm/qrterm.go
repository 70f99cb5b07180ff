// Package qrterm draws QR codes on a text terminal: `kioskd pair` shows
// the technician the code the POS app scans, on the serial console or an
// SSH session, where no image can be shown.
package qrterm

import (
	"fmt"
	"io"
	"strings"

	"rsc.io/qr"
)

// Write draws a QR code of text with half blocks, two modules per
// character row, with the quiet zone the standard asks for. By default
// light modules are drawn, which reads correctly on the usual dark
// console; lightTerminal draws the dark ones.
func Write(w io.Writer, text string, lightTerminal bool) error {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	const quiet = 2
	n := code.Size
	dark := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n || y >= n {
			return false
		}
		return code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := dark(x, y), dark(x, y+1)
			if !lightTerminal { // draw the light modules
				top, bottom = !top, !bottom
			}
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err = w.Write([]byte(b.String()))
	return err
}
