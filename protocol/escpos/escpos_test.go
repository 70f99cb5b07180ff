package escpos

import (
	"bytes"
	"strings"
	"testing"
)

// Golden bytes from the Epson ESC/POS command reference.
func TestCommands(t *testing.T) {
	prefix := []byte("x") // every appender must keep what dst held
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"init", AppendInit(prefix), []byte{0x1b, 0x40}},
		{"align left", AppendAlign(prefix, Left), []byte{0x1b, 0x61, 0}},
		{"align center", AppendAlign(prefix, Center), []byte{0x1b, 0x61, 1}},
		{"align right", AppendAlign(prefix, Right), []byte{0x1b, 0x61, 2}},
		{"align unknown", AppendAlign(prefix, Align(7)), []byte{0x1b, 0x61, 0}},
		{"bold on", AppendBold(prefix, true), []byte{0x1b, 0x45, 1}},
		{"bold off", AppendBold(prefix, false), []byte{0x1b, 0x45, 0}},
		{"size 1x1", AppendSize(prefix, 1, 1), []byte{0x1d, 0x21, 0x00}},
		{"size 2x2", AppendSize(prefix, 2, 2), []byte{0x1d, 0x21, 0x11}},
		{"size 2x1", AppendSize(prefix, 2, 1), []byte{0x1d, 0x21, 0x10}},
		{"size 1x3", AppendSize(prefix, 1, 3), []byte{0x1d, 0x21, 0x02}},
		{"size 8x8", AppendSize(prefix, 8, 8), []byte{0x1d, 0x21, 0x77}},
		{"size clamped up", AppendSize(prefix, 0, -3), []byte{0x1d, 0x21, 0x00}},
		{"size clamped down", AppendSize(prefix, 9, 100), []byte{0x1d, 0x21, 0x77}},
		{"code page 437", AppendCodePage(prefix, CP437.Table()), []byte{0x1b, 0x74, 0}},
		{"code page 858", AppendCodePage(prefix, CP858.Table()), []byte{0x1b, 0x74, 19}},
		{"code page 1252", AppendCodePage(prefix, CP1252.Table()), []byte{0x1b, 0x74, 16}},
		{"lf", AppendLF(prefix), []byte{0x0a}},
		{"feed 3", AppendFeed(prefix, 3), []byte{0x1b, 0x64, 3}},
		{"feed clamped", AppendFeed(prefix, 300), []byte{0x1b, 0x64, 255}},
		{"feed negative", AppendFeed(prefix, -1), []byte{0x1b, 0x64, 0}},
		{"cut", AppendCut(prefix), []byte{0x1d, 0x56, 66, 0}},
		{"status printer", AppendStatusQuery(prefix, QueryPrinter), []byte{0x10, 0x04, 1}},
		{"status offline", AppendStatusQuery(prefix, QueryOffline), []byte{0x10, 0x04, 2}},
		{"status error", AppendStatusQuery(prefix, QueryError), []byte{0x10, 0x04, 3}},
		{"status paper", AppendStatusQuery(prefix, QueryPaper), []byte{0x10, 0x04, 4}},
	} {
		want := append([]byte("x"), c.want...)
		if !bytes.Equal(c.got, want) {
			t.Errorf("%s: got % x, want % x", c.name, c.got, want)
		}
	}
}

func TestQR(t *testing.T) {
	got := AppendQR([]byte("x"), "http://10.0.0.5:8080", 6)
	want := []byte("x" +
		"\x1d(k\x04\x001A2\x00" + // model 2
		"\x1d(k\x03\x001C\x06" + // module size 6
		"\x1d(k\x03\x001E1" + // error correction M
		"\x1d(k\x17\x001P0http://10.0.0.5:8080" + // store 20+3 bytes
		"\x1d(k\x03\x001Q0") // print
	if !bytes.Equal(got, want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}

	// pL pH carry the length little-endian past 255.
	long := strings.Repeat("A", 300)
	got = AppendQR(nil, long, 3)
	store := []byte{0x1d, '(', 'k', 303 & 0xff, 303 >> 8, '1', 'P', '0'}
	if i := bytes.Index(got, store); i < 0 || !bytes.HasPrefix(got[i+len(store):], []byte(long)) {
		t.Fatalf("no store header % x before the data in % x", store, got[:40])
	}

	for _, c := range []struct {
		size int
		want byte
	}{{0, 1}, {-5, 1}, {16, 16}, {40, 16}} {
		got := AppendQR(nil, "a", c.size)
		if !bytes.Contains(got, []byte{0x1d, '(', 'k', 3, 0, '1', 'C', c.want}) {
			t.Errorf("size %d: module size not %d in % x", c.size, c.want, got)
		}
	}
	if got := AppendQR([]byte("x"), "", 6); string(got) != "x" {
		t.Errorf("empty data appended % x", got)
	}
	if got := AppendQR([]byte("x"), strings.Repeat("9", MaxQRData+1), 6); string(got) != "x" {
		t.Errorf("oversized data appended %d bytes", len(got)-1)
	}
	if got := AppendQR(nil, strings.Repeat("9", MaxQRData), 6); len(got) != 9+8+8+8+MaxQRData+8 {
		t.Errorf("largest QR: %d bytes", len(got))
	}
}

func TestStatusDecodeAllBytes(t *testing.T) {
	for q := 0; q < 256; q++ {
		for b := 0; b < 256; b++ {
			s := Status{PaperOut: true, Offline: true, CoverOpen: true, CutterError: true}
			before := s
			err := s.Decode(Query(q), byte(b))
			valid := q >= 1 && q <= 4 && byte(b)&0x93 == 0x12
			if (err == nil) != valid {
				t.Fatalf("Decode(%d, %#02x) = %v, valid %v", q, b, err, valid)
			}
			if err != nil && s != before {
				t.Fatalf("Decode(%d, %#02x) failed but changed status to %+v", q, b, s)
			}
		}
	}
}

func TestStatusDecode(t *testing.T) {
	// Answers of an out-of-paper printer to DLE EOT 1, 2, 3, 4.
	var s Status
	for _, a := range []struct {
		q Query
		b byte
	}{{QueryPrinter, 0x1a}, {QueryOffline, 0x32}, {QueryError, 0x12}, {QueryPaper, 0x7e}} {
		if err := s.Decode(a.q, a.b); err != nil {
			t.Fatal(err)
		}
	}
	want := Status{Offline: true, PaperEndStop: true, PaperNearEnd: true, PaperOut: true}
	if s != want || !s.NoPaper() || !s.Fault() || s.String() != "paper out" {
		t.Fatalf("paper out: %+v %q", s, s)
	}

	// A fresh answer clears what an old one set.
	for _, q := range []Query{QueryPrinter, QueryOffline, QueryError, QueryPaper} {
		if err := s.Decode(q, 0x12); err != nil {
			t.Fatal(err)
		}
	}
	if s != (Status{}) || s.Fault() || s.String() != "ready" {
		t.Fatalf("ready: %+v", s)
	}

	for _, c := range []struct {
		q     Query
		b     byte
		want  Status
		fault bool
		str   string
	}{
		{QueryPrinter, 0x12 | 0x08, Status{Offline: true}, true, "offline"},
		{QueryPrinter, 0x12 | 0x20, Status{Offline: true}, true, "offline"},
		{QueryPrinter, 0x12 | 0x04 | 0x40, Status{}, false, "ready"}, // drawer pin, feed button
		{QueryOffline, 0x12 | 0x04, Status{CoverOpen: true}, true, "cover open"},
		{QueryOffline, 0x12 | 0x08, Status{FeedButton: true}, false, "feed button held"},
		{QueryOffline, 0x12 | 0x20, Status{PaperEndStop: true}, true, "paper out"},
		{QueryOffline, 0x12 | 0x40, Status{ErrorOccurred: true}, true, "error"},
		{QueryError, 0x12 | 0x08, Status{CutterError: true}, true, "cutter error"},
		{QueryError, 0x12 | 0x20, Status{Unrecoverable: true}, true, "unrecoverable error"},
		{QueryError, 0x12 | 0x40, Status{AutoRecoverable: true}, true, "auto-recoverable error"},
		{QueryError, 0x12 | 0x04, Status{}, false, "ready"},
		{QueryPaper, 0x12 | 0x0c, Status{PaperNearEnd: true}, false, "paper near end"},
		{QueryPaper, 0x12 | 0x04, Status{PaperNearEnd: true}, false, "paper near end"},
		{QueryPaper, 0x12 | 0x60, Status{PaperOut: true}, true, "paper out"},
		{QueryPaper, 0x12 | 0x20, Status{PaperOut: true}, true, "paper out"},
	} {
		var s Status
		if err := s.Decode(c.q, c.b); err != nil {
			t.Errorf("Decode(%d, %#02x): %v", c.q, c.b, err)
			continue
		}
		if s != c.want || s.Fault() != c.fault || s.String() != c.str {
			t.Errorf("Decode(%d, %#02x) = %+v fault %v %q; want %+v fault %v %q", c.q, c.b, s, s.Fault(), s, c.want, c.fault, c.str)
		}
	}

	// XON, XOFF, an ASB header byte and a NUL are not answers.
	for _, b := range []byte{0x11, 0x13, 0x10, 0x00, 0xff, 0x92} {
		var s Status
		if err := s.Decode(QueryPrinter, b); err == nil || IsStatusByte(b) {
			t.Errorf("%#02x taken as an answer", b)
		}
	}
	var s2 Status
	if err := s2.Decode(Query(5), 0x12); err == nil {
		t.Error("DLE EOT 5 decoded")
	}
}
