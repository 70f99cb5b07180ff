package printertest

import (
	"reflect"
	"testing"

	"github.com/kioskd/kioskd/protocol/escpos"
)

func job() []byte {
	b := escpos.AppendInit(nil)
	b = escpos.AppendCodePage(b, escpos.CP858.Table())
	b = escpos.AppendAlign(b, escpos.Center)
	b = escpos.AppendBold(b, true)
	b = escpos.AppendText(b, "Café €1", escpos.CP858)
	b = escpos.AppendLF(b)
	b = escpos.AppendBold(b, false)
	b = escpos.AppendStatusQuery(b, escpos.QueryPaper)
	b = escpos.AppendSize(b, 2, 3)
	b = escpos.AppendText(b, "big", escpos.CP858)
	b = escpos.AppendFeed(b, 1)
	b = escpos.AppendQR(b, "qr data", 4)
	b = escpos.AppendLF(b)
	return escpos.AppendCut(b)
}

func TestDecoder(t *testing.T) {
	want := Page{Cut: true, Lines: []Line{
		{Text: "Café €1", Align: escpos.Center, Bold: true, Width: 1, Height: 1},
		{Text: "big", Align: escpos.Center, Width: 2, Height: 3},
		{Text: "", Align: escpos.Center, Width: 2, Height: 3},
		{QR: "qr data", Align: escpos.Center, Width: 2, Height: 3},
		{Text: "", Align: escpos.Center, Width: 2, Height: 3},
	}}
	// All at once and a byte at a time, as a serial line may deliver it.
	for _, chunk := range []int{len(job()), 1} {
		var pages []Page
		var queries []escpos.Query
		d := Decoder{
			OnPage:  func(p Page) { pages = append(pages, p) },
			OnQuery: func(q escpos.Query) { queries = append(queries, q) },
		}
		b := job()
		for len(b) > 0 {
			n := min(chunk, len(b))
			d.Write(b[:n])
			b = b[n:]
		}
		if len(pages) != 1 || !reflect.DeepEqual(pages[0], want) {
			t.Errorf("chunk %d: pages %+v\nwant %+v", chunk, pages, want)
		}
		if len(queries) != 1 || queries[0] != escpos.QueryPaper {
			t.Errorf("chunk %d: queries %v", chunk, queries)
		}
		if len(d.Unknown) > 0 {
			t.Errorf("chunk %d: unknown % x", chunk, d.Unknown)
		}
	}
}

// The fake's answers read back as the condition it plays.
func TestAnswers(t *testing.T) {
	for _, c := range []struct {
		cond  Condition
		fault bool
		str   string
	}{
		{Ready, false, "ready"},
		{NearEnd, false, "paper near end"},
		{PaperOut, true, "paper out"},
		{CoverOpen, true, "cover open"},
		{Error, true, "cutter error"},
	} {
		var s escpos.Status
		for q := escpos.QueryPrinter; q <= escpos.QueryPaper; q++ {
			b, ok := c.cond.Answer(q)
			if !ok {
				t.Fatalf("%v: no answer to %d", c.cond, q)
			}
			if err := s.Decode(q, b); err != nil {
				t.Fatalf("%v: %v", c.cond, err)
			}
		}
		if s.Fault() != c.fault || s.String() != c.str || c.cond.Prints() == c.fault {
			t.Errorf("%v: %+v reads %q", c.cond, s, s)
		}
	}
	if _, ok := Silent.Answer(escpos.QueryPrinter); ok {
		t.Error("silent printer answered")
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add(job())
	f.Add([]byte("\x1d(k\xff\xff1P0short"))
	f.Add([]byte("\x1b\x1d\x10\x04"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		d.Write(in)
		_ = d.Partial().Text()
	})
}
