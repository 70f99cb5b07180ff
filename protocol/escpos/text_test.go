package escpos

import (
	"bytes"
	"testing"
)

func TestAppendText(t *testing.T) {
	for _, c := range []struct {
		in   string
		cp   CodePage
		want string
	}{
		{"RM 12.50", CP437, "RM 12.50"},
		{"Café", CP437, "Caf\x82"},
		{"Café", CP858, "Caf\x82"},
		{"Café", CP1252, "Caf\xe9"},
		{"€5", CP437, "?5"},
		{"€5", CP858, "\xd55"},
		{"€5", CP1252, "\x805"},
		{"Ñandú", CP437, "\xa5and\xa3"},
		{"½ °C ±", CP437, "\xab \xf8C \xf1"},
		{"©", CP437, "?"},
		{"©", CP858, "\xb8"},
		{"©", CP1252, "\xa9"},
		{"Kedai Runcit 日本", CP858, "Kedai Runcit ??"},
		{"‘quoted’ “text” – ok", CP437, "'quoted' \"text\" - ok"},
		{"‘quoted’", CP1252, "\x91quoted\x92"},
		// Commands smuggled in text disappear; only their printable
		// parameters remain as text.
		{"A\x1b@B\x1dV\x00C\x10\x04\x01D", CP437, "A@BVCD"},
		{"line1\nline2\r\ttab", CP437, "line1line2tab"},
		{"del\x7f c1\u0085\u009b", CP1252, "del c1"},
		{"bad \xff\xfe utf8 \xc3", CP437, "bad ?? utf8 ?"},
		{"", CP437, ""},
	} {
		got := AppendText([]byte("x"), c.in, c.cp)
		if string(got[1:]) != c.want {
			t.Errorf("AppendText(%q, %v) = %q, want %q", c.in, c.cp, got[1:], c.want)
		}
		if n := TextLen(c.in); n != len(got)-1 {
			t.Errorf("TextLen(%q) = %d, AppendText gave %d bytes", c.in, n, len(got)-1)
		}
	}
}

// Every character a code page has survives a round trip through it.
func TestCodePageRoundTrip(t *testing.T) {
	for _, cp := range []CodePage{CP437, CP858, CP1252} {
		for b := 0x20; b < 0x100; b++ {
			r, ok := cp.DecodeByte(byte(b))
			if !ok {
				if b != 0x7f && !(cp == CP1252 && bytes.IndexByte([]byte{0x81, 0x8d, 0x8f, 0x90, 0x9d}, byte(b)) >= 0) {
					t.Errorf("%v: byte %#02x has no character", cp, b)
				}
				continue
			}
			if got := AppendText(nil, string(r), cp); len(got) != 1 || got[0] != byte(b) {
				t.Errorf("%v: %q encodes as % x, want %02x", cp, r, got, b)
			}
		}
	}
}

func TestCodePageNames(t *testing.T) {
	for in, want := range map[string]CodePage{
		"cp437": CP437, "CP437": CP437, "pc437": CP437, "437": CP437,
		"cp858": CP858, "PC858": CP858, " cp-858 ": CP858,
		"cp1252": CP1252, "wpc1252": CP1252, "WPC1252": CP1252,
	} {
		got, err := ParseCodePage(in)
		if err != nil || got != want {
			t.Errorf("ParseCodePage(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "utf-8", "cp850", "1253"} {
		if _, err := ParseCodePage(in); err == nil {
			t.Errorf("ParseCodePage(%q) accepted", in)
		}
	}
	for _, cp := range []CodePage{CP437, CP858, CP1252} {
		if back, err := ParseCodePage(cp.String()); err != nil || back != cp || !cp.Valid() {
			t.Errorf("%v does not round-trip: %v, %v", cp, back, err)
		}
	}
	if CodePage(3).Valid() || CodePage(3).String() != "CodePage(3)" {
		t.Error("CodePage(3) is known")
	}
}
