// Package printertest is a fake ESC/POS printer: it reads the byte stream
// a kiosk sends, turns it back into printed lines, QR codes and cuts, and
// answers real-time status requests from a condition the test (or the sim
// board) sets. It understands the commands protocol/escpos produces.
package printertest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/kioskd/kioskd/protocol/escpos"
)

// Line is one printed line with the modes in force at its first character.
type Line struct {
	Text   string
	Align  escpos.Align
	Bold   bool
	Width  int // character magnification, 1..8
	Height int
	QR     string // set, with Text empty, for a printed QR code
}

// Page is what came out of the printer up to a cut.
type Page struct {
	Lines []Line
	Cut   bool
	// Condition is the fake's condition when the page was cut: a page cut
	// while not Ready or NearEnd was sent to a printer that could not
	// print it.
	Condition Condition
}

// Text is the page as plain text, a QR code shown as "[QR data]".
func (p Page) Text() string {
	var b strings.Builder
	for _, l := range p.Lines {
		if l.QR != "" {
			fmt.Fprintf(&b, "[QR %s]\n", l.QR)
			continue
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// QRs lists the QR codes printed on the page.
func (p Page) QRs() []string {
	var qs []string
	for _, l := range p.Lines {
		if l.QR != "" {
			qs = append(qs, l.QR)
		}
	}
	return qs
}

// Decoder turns an ESC/POS stream back into pages. Feed it with Write in
// pieces of any size.
type Decoder struct {
	// OnQuery is called for each DLE EOT as it is decoded.
	OnQuery func(escpos.Query)
	// OnPage is called at each cut.
	OnPage func(Page)
	// Unknown collects bytes of commands the decoder does not know.
	Unknown []byte

	pending []byte
	page    Page
	line    []rune
	attrs   Line
	modes   Line
	cp      escpos.CodePage
	qr      string
}

// reset returns the modes to power-on, as ESC @ does.
func (d *Decoder) reset() {
	d.modes = Line{Align: escpos.Left, Width: 1, Height: 1}
	d.cp = escpos.CP437
}

// Write decodes p; it never fails.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.modes.Width == 0 {
		d.reset()
	}
	d.pending = append(d.pending, p...)
	b := d.pending
	for len(b) > 0 {
		n := d.step(b)
		if n == 0 {
			break
		}
		b = b[n:]
	}
	d.pending = append(d.pending[:0], b...)
	return len(p), nil
}

// Partial is the page printed since the last cut, with a line not yet
// ended by LF.
func (d *Decoder) Partial() Page {
	pg := d.page
	pg.Lines = append([]Line(nil), pg.Lines...)
	if len(d.line) > 0 {
		l := d.attrs
		l.Text = string(d.line)
		pg.Lines = append(pg.Lines, l)
	}
	return pg
}

func (d *Decoder) endLine() {
	l := d.attrs
	if len(d.line) == 0 {
		l = d.modes
	}
	l.Text = string(d.line)
	d.page.Lines = append(d.page.Lines, l)
	d.line = d.line[:0]
}

// step decodes one command or character at the start of b and returns its
// length, or 0 when b holds only part of a command.
func (d *Decoder) step(b []byte) int {
	need := func(n int) bool { return len(b) >= n }
	switch c := b[0]; c {
	case '\n':
		d.endLine()
		return 1
	case '\r':
		return 1
	case 0x10: // DLE
		if !need(3) {
			return 0
		}
		if b[1] == 0x04 {
			if d.OnQuery != nil {
				d.OnQuery(escpos.Query(b[2]))
			}
			return 3
		}
		d.Unknown = append(d.Unknown, b[:2]...)
		return 2
	case 0x1b: // ESC
		if !need(2) {
			return 0
		}
		switch b[1] {
		case '@':
			d.reset()
			return 2
		case 'a', 'E', 't', 'd':
			if !need(3) {
				return 0
			}
			n := b[2]
			switch b[1] {
			case 'a':
				d.modes.Align = escpos.Align(n)
			case 'E':
				d.modes.Bold = n&1 != 0
			case 't':
				d.cp = tableCodePage(n)
			case 'd':
				if len(d.line) > 0 {
					d.endLine()
				}
				for range n {
					d.endLine()
				}
			}
			return 3
		}
		d.Unknown = append(d.Unknown, b[:2]...)
		return 2
	case 0x1d: // GS
		if !need(2) {
			return 0
		}
		switch b[1] {
		case '!':
			if !need(3) {
				return 0
			}
			d.modes.Width, d.modes.Height = int(b[2]>>4)+1, int(b[2]&7)+1
			return 3
		case 'V':
			if !need(3) {
				return 0
			}
			n := 3
			if m := b[2]; m == 65 || m == 66 || m == 97 || m == 98 || m == 103 || m == 104 {
				if !need(4) {
					return 0
				}
				n = 4
			}
			d.cut()
			return n
		case '(':
			if !need(5) {
				return 0
			}
			total := 5 + int(b[3]) + int(b[4])<<8
			if !need(total) {
				return 0
			}
			if b[2] == 'k' && total >= 8 && b[5] == '1' {
				switch b[6] {
				case 'P':
					d.qr = string(b[8:total])
				case 'Q':
					if len(d.line) > 0 {
						d.endLine()
					}
					l := d.modes
					l.QR = d.qr
					d.page.Lines = append(d.page.Lines, l)
				}
			}
			return total
		}
		d.Unknown = append(d.Unknown, b[:2]...)
		return 2
	default:
		r, ok := d.cp.DecodeByte(c)
		if !ok {
			d.Unknown = append(d.Unknown, c)
			return 1
		}
		if len(d.line) == 0 {
			d.attrs = d.modes
		}
		d.line = append(d.line, r)
		return 1
	}
}

func (d *Decoder) cut() {
	if len(d.line) > 0 {
		d.endLine()
	}
	d.page.Cut = true
	pg := d.page
	d.page = Page{}
	if d.OnPage != nil {
		d.OnPage(pg)
	}
}

func tableCodePage(n byte) escpos.CodePage {
	for _, cp := range []escpos.CodePage{escpos.CP858, escpos.CP1252} {
		if cp.Table() == n {
			return cp
		}
	}
	return escpos.CP437
}

// Condition is what the fake printer reports.
type Condition int

// Conditions.
const (
	Ready     Condition = iota
	NearEnd             // paper near end; still prints
	PaperOut            // no paper; offline
	CoverOpen           // cover open; offline
	Error               // cutter error; offline
	Silent              // answers nothing, like an unpowered printer
)

func (c Condition) String() string {
	switch c {
	case Ready:
		return "ready"
	case NearEnd:
		return "near end"
	case PaperOut:
		return "paper out"
	case CoverOpen:
		return "cover open"
	case Error:
		return "error"
	case Silent:
		return "silent"
	}
	return fmt.Sprintf("Condition(%d)", int(c))
}

// Prints reports whether a printer in condition c puts a job on paper.
func (c Condition) Prints() bool { return c == Ready || c == NearEnd }

// Answer is the printer's answer in condition c to DLE EOT q; ok is false
// when it would not answer.
func (c Condition) Answer(q escpos.Query) (b byte, ok bool) {
	if c == Silent || q < escpos.QueryPrinter || q > escpos.QueryPaper {
		return 0, false
	}
	const fixed = 0x12
	b = fixed
	switch c {
	case NearEnd:
		if q == escpos.QueryPaper {
			b |= 0x0c
		}
	case PaperOut:
		switch q {
		case escpos.QueryPrinter:
			b |= 0x08
		case escpos.QueryOffline:
			b |= 0x20
		case escpos.QueryPaper:
			b |= 0x0c | 0x60
		}
	case CoverOpen:
		switch q {
		case escpos.QueryPrinter:
			b |= 0x08
		case escpos.QueryOffline:
			b |= 0x04
		}
	case Error:
		switch q {
		case escpos.QueryPrinter:
			b |= 0x08
		case escpos.QueryOffline:
			b |= 0x40
		case escpos.QueryError:
			b |= 0x08
		}
	}
	return b, true
}

// Fake is a printer on the far end of a port.
type Fake struct {
	// OnPage and OnQuery, when set before Serve, see each page after its
	// cut and each status request after it was answered. They run on
	// Serve's goroutine and may call the Fake's methods.
	OnPage  func(Page)
	OnQuery func(escpos.Query)

	mu      sync.Mutex
	cond    Condition
	roll    int // pages left before the paper runs out; 0 is endless
	pages   []Page
	dec     Decoder
	answers []byte
	events  []event
}

type event struct {
	page  *Page
	query escpos.Query
}

// Set changes the condition the fake reports from now on.
func (f *Fake) Set(c Condition) {
	f.mu.Lock()
	f.cond = c
	f.mu.Unlock()
}

// SetRoll leaves paper for n more pages: the n-th cut runs the roll out,
// so the next status request finds the fake out of paper. 0 is endless.
func (f *Fake) SetRoll(n int) {
	f.mu.Lock()
	f.roll = n
	f.mu.Unlock()
}

// Condition returns the condition the fake reports.
func (f *Fake) Condition() Condition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cond
}

// Pages returns the pages cut so far.
func (f *Fake) Pages() []Page {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Page(nil), f.pages...)
}

// Partial returns what was printed since the last cut.
func (f *Fake) Partial() Page {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dec.Partial()
}

// Serve reads the kiosk's stream from rw (a pseudo-terminal's master, say)
// and answers status requests on it until a read fails. It returns nil
// when rw is closed or hung up, and the error otherwise. Deadline
// timeouts are waited through.
func (f *Fake) Serve(rw io.ReadWriter) error {
	f.mu.Lock()
	f.dec.OnQuery = f.query
	f.dec.OnPage = f.page
	f.mu.Unlock()

	buf := make([]byte, 4096)
	for {
		n, err := rw.Read(buf)
		if n > 0 {
			f.mu.Lock()
			f.answers, f.events = f.answers[:0], f.events[:0]
			f.dec.Write(buf[:n])
			out := append([]byte(nil), f.answers...)
			evs := append([]event(nil), f.events...)
			f.mu.Unlock()
			if len(out) > 0 {
				if _, werr := rw.Write(out); werr != nil {
					if ended(werr) {
						return nil
					}
					return fmt.Errorf("printertest: answer: %w", werr)
				}
			}
			for _, e := range evs {
				switch {
				case e.page != nil && f.OnPage != nil:
					f.OnPage(*e.page)
				case e.page == nil && f.OnQuery != nil:
					f.OnQuery(e.query)
				}
			}
		}
		switch {
		case err == nil || errors.Is(err, os.ErrDeadlineExceeded):
		case ended(err):
			return nil
		default:
			return fmt.Errorf("printertest: read: %w", err)
		}
	}
}

// ended tells a port closed or hung up from a failure.
func ended(err error) bool {
	return err == io.EOF || errors.Is(err, os.ErrClosed) || isHangup(err)
}

// query and page run inside dec.Write, under f.mu.
func (f *Fake) query(q escpos.Query) {
	if b, ok := f.cond.Answer(q); ok {
		f.answers = append(f.answers, b)
	}
	f.events = append(f.events, event{query: q})
}

func (f *Fake) page(p Page) {
	p.Condition = f.cond
	f.pages = append(f.pages, p)
	f.events = append(f.events, event{page: &p})
	if f.roll > 0 {
		f.roll--
		if f.roll == 0 {
			f.cond = PaperOut
		}
	}
}
