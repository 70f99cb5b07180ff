// Package escpos encodes the subset of Epson ESC/POS that kioskd's
// receipts need, append-style so that a caller reusing its buffer encodes
// a whole receipt without allocating, and decodes the printer's answers to
// real-time status requests (DLE EOT).
//
// Text goes through AppendText, which maps it to the printer's code page
// and drops control characters: every command starts with a control byte,
// so text from a merchant line, a transaction id or a POS answer can never
// turn into a command.
package escpos

const (
	esc = 0x1b
	gs  = 0x1d
	dle = 0x10
	eot = 0x04
	lf  = 0x0a
)

// Align is a horizontal justification for ESC a.
type Align byte

// Justifications; any other value is sent as Left.
const (
	Left   Align = 0
	Center Align = 1
	Right  Align = 2
)

// AppendInit appends ESC @, which clears the print buffer and resets every
// mode, so a job never inherits bold or size from a half-printed one.
func AppendInit(dst []byte) []byte { return append(dst, esc, '@') }

// AppendAlign appends ESC a n. The printer applies it to lines that start
// after it, so send it at the beginning of a line.
func AppendAlign(dst []byte, a Align) []byte {
	if a > Right {
		a = Left
	}
	return append(dst, esc, 'a', byte(a))
}

// AppendBold appends ESC E n (emphasized).
func AppendBold(dst []byte, on bool) []byte {
	var n byte
	if on {
		n = 1
	}
	return append(dst, esc, 'E', n)
}

// AppendSize appends GS ! n for characters w times as wide and h times as
// tall as normal; both are clamped to 1..8, the printer's range. A width
// of 2 halves the characters per line.
func AppendSize(dst []byte, w, h int) []byte {
	w = min(max(w, 1), 8)
	h = min(max(h, 1), 8)
	return append(dst, gs, '!', byte(w-1)<<4|byte(h-1))
}

// AppendCodePage appends ESC t n. The table numbers differ between printer
// makers; CodePage.Table gives Epson's.
func AppendCodePage(dst []byte, table byte) []byte { return append(dst, esc, 't', table) }

// AppendLF appends LF: print the line and move to the next.
func AppendLF(dst []byte) []byte { return append(dst, lf) }

// AppendFeed appends ESC d n: print and feed n lines (clamped to 0..255).
func AppendFeed(dst []byte, lines int) []byte {
	return append(dst, esc, 'd', byte(min(max(lines, 0), 255)))
}

// AppendCut appends GS V 66 0: feed the last line past the cutter, then
// cut partially. A partial cut leaves a hinge, so the receipt does not
// fall into the kiosk's chute before the customer takes it.
func AppendCut(dst []byte) []byte { return append(dst, gs, 'V', 66, 0) }

// MaxQRData is the most a QR code holds in byte mode at error correction
// level M (version 40, model 2).
const MaxQRData = 2331

// AppendQR appends the GS ( k sequence that has the printer draw data as a
// model 2 QR code with modules of size dots (clamped to 1..16) at error
// correction level M, which still scans from a crumpled thermal receipt.
// Empty data and data over MaxQRData append nothing: the printer would
// reject them and print nothing anyway, or print an unreadable code.
//
// The data is length-prefixed, so it may hold any byte.
func AppendQR(dst []byte, data string, size int) []byte {
	if len(data) == 0 || len(data) > MaxQRData {
		return dst
	}
	size = min(max(size, 1), 16)
	k := len(data) + 3
	dst = append(dst,
		gs, '(', 'k', 4, 0, '1', 'A', '2', 0, // function 165: model 2
		gs, '(', 'k', 3, 0, '1', 'C', byte(size), // function 167: module size
		gs, '(', 'k', 3, 0, '1', 'E', '1', // function 169: level M
		gs, '(', 'k', byte(k), byte(k>>8), '1', 'P', '0', // function 180: store
	)
	dst = append(dst, data...)
	return append(dst, gs, '(', 'k', 3, 0, '1', 'Q', '0') // function 181: print
}
