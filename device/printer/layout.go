package printer

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/protocol/escpos"
)

// Outcome is the result line of a receipt, printed large and bold.
type Outcome string

// Outcomes the payment core produces; any other text prints as given.
const (
	Approved Outcome = "APPROVED"
	Declined Outcome = "DECLINED"
)

// Receipt is what a customer's receipt shows. The printer keeps its own
// type so that device never imports payment; the wiring converts.
// Empty fields are left off the paper.
type Receipt struct {
	Merchant []string // header lines from the config, centred, the first in bold
	Time     time.Time
	KioskID  string
	TxnID    string
	Amount   int64 // sen; printed "RM 12.50"
	Mode     string

	CardLast4        string
	POSTransactionID string
	AuthCode         string
	Plan             string // the IPP plan, when one was chosen

	Outcome Outcome
	QR      string   // printed as a QR code below the outcome, e.g. a receipt URL
	Footer  []string // centred at the bottom
}

// Layout is how receipts fit the printer's paper.
type Layout struct {
	// Width is the characters per line at normal size: 32 for 58 mm
	// paper, 42 or 48 for 80 mm. 0 means DefaultWidth.
	Width    int
	CodePage escpos.CodePage
	// CodeTable is the ESC t number of CodePage on this printer, for
	// printers that number their tables unlike Epson; 0 means Epson's.
	CodeTable byte
	// QRSize is the QR module size in dots, 1..16; 0 means DefaultQRSize.
	QRSize int
}

// Layout defaults.
const (
	DefaultWidth  = 32
	DefaultQRSize = 6
	timeLayout    = "2006-01-02 15:04:05"
)

// Check reports a layout that cannot be printed.
func (l Layout) Check() error {
	var errs []error
	if l.Width != 0 && (l.Width < 16 || l.Width > 80) {
		errs = append(errs, fmt.Errorf("printer: width %d: want 16..80 characters", l.Width))
	}
	if !l.CodePage.Valid() {
		errs = append(errs, fmt.Errorf("printer: code page %v: unknown", l.CodePage))
	}
	if l.QRSize < 0 || l.QRSize > 16 {
		errs = append(errs, fmt.Errorf("printer: QR size %d: want 1..16 dots", l.QRSize))
	}
	return errors.Join(errs...)
}

func (l Layout) width() int {
	if l.Width == 0 {
		return DefaultWidth
	}
	return l.Width
}

func (l Layout) qrSize() int {
	if l.QRSize == 0 {
		return DefaultQRSize
	}
	return l.QRSize
}

func (l Layout) table() byte {
	if l.CodeTable != 0 {
		return l.CodeTable
	}
	return l.CodePage.Table()
}

// AppendReceipt appends the ESC/POS job that prints r, from init to cut.
// Appending into a buffer with room for it allocates nothing.
func AppendReceipt(dst []byte, r Receipt, l Layout) []byte {
	w, cp := l.width(), l.CodePage
	dst = start(dst, l)
	if len(r.Merchant) > 0 {
		dst = escpos.AppendAlign(dst, escpos.Center)
		for i, m := range r.Merchant {
			dst = escpos.AppendBold(dst, i == 0)
			dst = escpos.AppendText(dst, m, cp)
			dst = escpos.AppendLF(dst)
		}
		dst = escpos.AppendBold(dst, false)
		dst = escpos.AppendLF(dst)
		dst = escpos.AppendAlign(dst, escpos.Left)
	}
	if !r.Time.IsZero() {
		dst = append(dst, "Date"...)
		mid := len(dst)
		dst = r.Time.AppendFormat(dst, timeLayout)
		dst = row(dst, mid, len("Date"), w)
	}
	dst = textRow(dst, "Kiosk", r.KioskID, w, cp)
	dst = textRow(dst, "Txn", r.TxnID, w, cp)
	dst = textRow(dst, "Mode", r.Mode, w, cp)
	if r.CardLast4 != "" {
		dst = append(dst, "Card"...)
		mid := len(dst)
		dst = append(dst, "**** "...)
		dst = escpos.AppendText(dst, r.CardLast4, cp)
		dst = row(dst, mid, len("Card"), w)
	}
	dst = textRow(dst, "POS txn", r.POSTransactionID, w, cp)
	dst = textRow(dst, "Auth code", r.AuthCode, w, cp)
	dst = textRow(dst, "Plan", r.Plan, w, cp)
	dst = rule(dst, w)

	dst = escpos.AppendAlign(dst, escpos.Center)
	dst = escpos.AppendSize(dst, 2, 2)
	dst = append(dst, "RM "...)
	dst = appendSen(dst, r.Amount)
	dst = escpos.AppendLF(dst)
	if r.Outcome != "" {
		dst = escpos.AppendBold(dst, true)
		dst = escpos.AppendText(dst, string(r.Outcome), cp)
		dst = escpos.AppendLF(dst)
		dst = escpos.AppendBold(dst, false)
	}
	dst = escpos.AppendSize(dst, 1, 1)
	dst = escpos.AppendAlign(dst, escpos.Left)
	dst = rule(dst, w)
	return finish(dst, r.QR, r.Footer, l)
}

// AppendLines appends a job that prints lines as given (a line longer than
// the paper wraps), then data as a QR code when it is not empty, then cuts.
// kioskd pair prints the kiosk's address this way.
func AppendLines(dst []byte, lines []string, qr string, l Layout) []byte {
	dst = start(dst, l)
	for _, s := range lines {
		dst = escpos.AppendText(dst, s, l.CodePage)
		dst = escpos.AppendLF(dst)
	}
	return finish(dst, qr, nil, l)
}

// AppendTestPage appends a page that shows whether the printer, its paper
// width, code page, text styles, QR codes and cutter work as configured.
func AppendTestPage(dst []byte, header []string, now time.Time, l Layout) []byte {
	w, cp := l.width(), l.CodePage
	dst = start(dst, l)
	dst = escpos.AppendAlign(dst, escpos.Center)
	dst = escpos.AppendBold(dst, true)
	dst = append(dst, "PRINTER TEST"...)
	dst = escpos.AppendBold(dst, false)
	dst = escpos.AppendLF(dst)
	for _, s := range header {
		dst = escpos.AppendText(dst, s, cp)
		dst = escpos.AppendLF(dst)
	}
	dst = escpos.AppendAlign(dst, escpos.Left)
	dst = append(dst, "Date"...)
	mid := len(dst)
	dst = now.AppendFormat(dst, timeLayout)
	dst = row(dst, mid, len("Date"), w)
	dst = append(dst, "Width"...)
	mid = len(dst)
	dst = strconv.AppendInt(dst, int64(w), 10)
	dst = row(dst, mid, len("Width"), w)
	dst = textRow(dst, "Code page", cp.String(), w, cp)
	// A full line of digits: a short or wrapped ruler means Width is wrong.
	for i := range w {
		dst = append(dst, byte('0'+(i+1)%10))
	}
	dst = escpos.AppendLF(dst)
	dst = escpos.AppendText(dst, "Café Ñandú ½ € £ ©", cp)
	dst = escpos.AppendLF(dst)
	dst = escpos.AppendBold(dst, true)
	dst = append(dst, "Bold"...)
	dst = escpos.AppendBold(dst, false)
	dst = escpos.AppendLF(dst)
	dst = escpos.AppendSize(dst, 2, 2)
	dst = append(dst, "Double"...)
	dst = escpos.AppendSize(dst, 1, 1)
	dst = escpos.AppendLF(dst)
	dst = rule(dst, w)
	return finish(dst, "kioskd printer test", nil, l)
}

func start(dst []byte, l Layout) []byte {
	dst = escpos.AppendInit(dst)
	return escpos.AppendCodePage(dst, l.table())
}

func finish(dst []byte, qr string, footer []string, l Layout) []byte {
	dst = escpos.AppendAlign(dst, escpos.Center)
	if qr != "" {
		dst = escpos.AppendQR(dst, qr, l.qrSize())
		dst = escpos.AppendLF(dst)
	}
	for _, s := range footer {
		dst = escpos.AppendText(dst, s, l.CodePage)
		dst = escpos.AppendLF(dst)
	}
	dst = escpos.AppendAlign(dst, escpos.Left)
	return escpos.AppendCut(dst)
}

func textRow(dst []byte, name, value string, w int, cp escpos.CodePage) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, name...)
	mid := len(dst)
	dst = escpos.AppendText(dst, value, cp)
	return row(dst, mid, len(name), w)
}

// row ends a line holding a label of name columns and then, from mid, its
// value: spaces go in between so the value ends at the right margin. A
// value that does not fit beside its label goes right-aligned on a line of
// its own, or, longer than a line, starts that line and wraps. Every byte
// of text prints one column, so byte counts are widths.
func row(dst []byte, mid, name, w int) []byte {
	value := len(dst) - mid
	var gap int
	wrap := name+1+value > w
	if wrap {
		gap = 1 + max(w-value, 0)
	} else {
		gap = w - name - value
	}
	for range gap {
		dst = append(dst, ' ')
	}
	copy(dst[mid+gap:], dst[mid:mid+value])
	for i := mid; i < mid+gap; i++ {
		dst[i] = ' '
	}
	if wrap {
		dst[mid] = '\n'
	}
	return escpos.AppendLF(dst)
}

func rule(dst []byte, w int) []byte {
	for range w {
		dst = append(dst, '-')
	}
	return escpos.AppendLF(dst)
}

// appendSen writes an amount in sen as ringgit with two decimals.
func appendSen(dst []byte, sen int64) []byte {
	u := uint64(sen)
	if sen < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	c := u % 100
	return append(dst, '.', byte('0'+c/10), byte('0'+c%10))
}
