package escpos

import (
	"testing"
	"unicode/utf8"
)

// Seed corpora: testdata/fuzz/FuzzAppendText (merchant names in several
// scripts, smuggled commands, invalid UTF-8) and testdata/fuzz/FuzzStatus
// (answers of ready, paper-out, cover-open printers, line noise).

func FuzzAppendText(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, cpn uint8) {
		cp := CodePage(cpn % 3)
		out := AppendText(nil, s, cp)
		if len(out) != TextLen(s) {
			t.Fatalf("%d bytes, TextLen %d", len(out), TextLen(s))
		}
		for i, b := range out {
			if b < 0x20 || b == 0x7f {
				t.Fatalf("control byte %#02x at %d from %q", b, i, s)
			}
			if _, ok := cp.DecodeByte(b); !ok {
				t.Fatalf("%v: byte %#02x at %d has no character", cp, b, i)
			}
		}
		// Each printable character gives exactly its own byte or '?'.
		i := 0
		for _, r := range s {
			if isControl(r) {
				continue
			}
			got, _ := cp.DecodeByte(out[i])
			if got != r && out[i] != '?' && r >= utf8.RuneSelf && !isFallback(r, out[i]) {
				t.Fatalf("%v: %q printed as %q", cp, r, got)
			}
			i++
		}
	})
}

func isFallback(r rune, b byte) bool {
	switch b {
	case '\'', '"', '-', ' ':
		return encodeRune(&[128]rune{}, r) == b
	}
	return false
}

// FuzzStatus reads its input as (request, answer) pairs, as the printer
// driver meets them on the line.
func FuzzStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Status
		for i := 0; i+1 < len(in); i += 2 {
			q, b := Query(in[i]), in[i+1]
			before := s
			err := s.Decode(q, b)
			if err != nil {
				if s != before {
					t.Fatalf("failed Decode(%d, %#02x) changed %+v to %+v", q, b, before, s)
				}
				if q >= 1 && q <= 4 && IsStatusByte(b) {
					t.Fatalf("Decode(%d, %#02x): %v", q, b, err)
				}
				continue
			}
			// Only the request's own fields move.
			mask := s
			switch q {
			case QueryPrinter:
				mask.Offline = before.Offline
			case QueryOffline:
				mask.CoverOpen, mask.FeedButton, mask.PaperEndStop, mask.ErrorOccurred = before.CoverOpen, before.FeedButton, before.PaperEndStop, before.ErrorOccurred
			case QueryError:
				mask.CutterError, mask.Unrecoverable, mask.AutoRecoverable = before.CutterError, before.Unrecoverable, before.AutoRecoverable
			case QueryPaper:
				mask.PaperNearEnd, mask.PaperOut = before.PaperNearEnd, before.PaperOut
			}
			if mask != before {
				t.Fatalf("Decode(%d, %#02x) changed other fields: %+v -> %+v", q, b, before, s)
			}
			if s.NoPaper() && !s.Fault() {
				t.Fatalf("no paper but no fault: %+v", s)
			}
			if (s.String() == "ready") != (s == Status{}) {
				t.Fatalf("%+v reads %q", s, s)
			}
		}
	})
}
