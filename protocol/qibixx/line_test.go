package qibixx

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A sale in always-idle mode, as Qibixx's tutorial walks through it (in
// our words): the host switches the slave on, the VMC enables it, a
// product is chosen, the host approves it for its price, the VMC
// dispenses and the session winds down.
func TestParseAlwaysIdleSale(t *testing.T) {
	for _, c := range []struct {
		line string
		want Msg
	}{
		{"c,STATUS,INACTIVE", Msg{Kind: KindStatus, Prefix: 'c', Status: StatusInactive}},
		{"r,ACK", Msg{Kind: KindPolled, Prefix: 'r'}},
		{"c,STATUS,DISABLED\r", Msg{Kind: KindStatus, Prefix: 'c', Status: StatusDisabled}},
		{"c,STATUS,ENABLED", Msg{Kind: KindStatus, Prefix: 'c', Status: StatusEnabled}},
		{"c,STATUS,VEND,1.00,2", Msg{Kind: KindVendRequest, Prefix: 'c', Status: StatusVend, Price: Decimal{100, 2}, Item: 2}},
		{"c,VEND,SUCCESS", Msg{Kind: KindVendSuccess, Prefix: 'c'}},
		{"c,STATUS,IDLE", Msg{Kind: KindStatus, Prefix: 'c', Status: StatusIdle}},
		{"c,STATUS,IDLE,5.00", Msg{Kind: KindStatus, Prefix: 'c', Status: StatusIdle, Price: Decimal{500, 2}}},
		{"c,ERR,VEND 3", Msg{Kind: KindVendFailure, Prefix: 'c', Text: "VEND 3"}},
		{"c,ERR,START -1", Msg{Kind: KindError, Prefix: 'c', Text: "START -1"}},
		{"c,SET,OK", Msg{Kind: KindSetOK, Prefix: 'c'}},
		{"d,STATUS,IDLE", Msg{Kind: KindOther, Prefix: 'd', Text: "STATUS,IDLE"}},
		{"v,4.0.2.1,0123456789AB", Msg{Kind: KindOther, Prefix: 'v', Text: "4.0.2.1,0123456789AB"}},
		{"c,STATUS,REVALUE", Msg{Kind: KindOther, Prefix: 'c', Text: "STATUS,REVALUE"}},
		{"c,1", Msg{Kind: KindOther, Prefix: 'c', Text: "1"}},
	} {
		got, err := ParseLine([]byte(c.line))
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.line, got, err, c.want)
		}
	}
}

func TestParseRefused(t *testing.T) {
	for _, c := range []struct {
		line string
		want error
		kind Kind
	}{
		{"", ErrEmpty, KindOther},
		{"\r", ErrEmpty, KindOther},
		{strings.Repeat("x", MaxLine+1), ErrTooLong, KindOther},
		{"C,VEND,1.00", ErrBadLine, KindOther}, // our own command echoed
		{"cSTATUS", ErrBadLine, KindOther},
		{"c,STATUS,\x00", ErrBadLine, KindOther},
		{"c,STATUS,VEND,1.00,\xff", ErrBadLine, KindOther},
		{"c,STATUS,IDLE,x", ErrField, KindOther},
		// The vend requests the board waits on, whatever their fields.
		{"c,STATUS,VEND", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.00", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.0.0,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,-1.00,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1e3,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,.,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.00001,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1234567890123,2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.00,65536", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.00,+2", ErrField, KindVendRequest},
		{"c,STATUS,VEND,1.00,", ErrField, KindVendRequest},
	} {
		got, err := ParseLine([]byte(c.line))
		if !errors.Is(err, c.want) || got.Kind != c.kind {
			t.Errorf("%q: %v kind %v, want %v kind %v", c.line, err, got.Kind, c.want, c.kind)
		}
	}
}

func TestDecimalSen(t *testing.T) {
	for _, c := range []struct {
		in       string
		decimals uint8
		sen      int64
		ok       bool
	}{
		{"1.00", 2, 100, true},
		{"1.5", 2, 150, true},
		{"12", 2, 1200, true},
		{"0.01", 2, 1, true},
		{"1.00", 0, 0, false}, // more decimals than the board is set to
		{"1.005", 3, 0, false},
		{"1.010", 3, 101, true},
		{"999999999999", 2, 99999999999900, true},
	} {
		d, err := ParseDecimal([]byte(c.in))
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		sen, err := d.Sen(c.decimals)
		if (err == nil) != c.ok || sen != c.sen {
			t.Errorf("%q with %d decimals: %d %v, want %d ok=%v", c.in, c.decimals, sen, err, c.sen, c.ok)
		}
	}
}

func TestAppendCommands(t *testing.T) {
	var b []byte
	b = AppendEnable(b, false)
	b = AppendSetConf(b, "mdb-addr", "0x10")
	b = AppendEnable(b, true)
	b, err := AppendVend(b, 150, 2)
	if err != nil {
		t.Fatal(err)
	}
	b = AppendStop(b)
	if b, err = AppendStart(b, 500, 2); err != nil {
		t.Fatal(err)
	}
	want := "C,0\nC,SETCONF,mdb-addr=0x10\nC,1\nC,VEND,1.50\nC,STOP\nC,START,5.00\n"
	if string(b) != want {
		t.Errorf("commands %q, want %q", b, want)
	}
	for _, c := range []struct {
		sen      int64
		decimals uint8
		want     string
	}{
		{150, 2, "1.50"}, {5, 2, "0.05"}, {100, 0, "1"}, {150, 3, "1.500"}, {1, 4, "0.0100"}, {123450, 1, "1234.5"},
	} {
		got, err := AppendAmount(nil, c.sen, c.decimals)
		if err != nil || string(got) != c.want {
			t.Errorf("%d sen, %d decimals: %q %v, want %q", c.sen, c.decimals, got, err, c.want)
		}
		d, err := ParseDecimal(got)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := d.Sen(c.decimals); err != nil || back != c.sen {
			t.Errorf("%q back: %d %v", got, back, err)
		}
	}
	for _, c := range []struct {
		sen      int64
		decimals uint8
	}{{150, 0}, {0, 2}, {-1, 2}, {5, 1}, {1, 5}, {2e12, 2}} {
		if got, err := AppendVend(nil, c.sen, c.decimals); !errors.Is(err, ErrAmount) {
			t.Errorf("%d sen, %d decimals: %q %v, want ErrAmount", c.sen, c.decimals, got, err)
		}
	}
}

func TestParseLineAllocs(t *testing.T) {
	line := []byte("c,STATUS,VEND,1.50,12")
	if n := testing.AllocsPerRun(100, func() { ParseLine(line) }); n != 0 {
		t.Errorf("%v allocations parsing a vend request", n)
	}
}

// FuzzParseLine: no line panics the parser, a parsed line keeps to its
// documented ranges, and a vend request that parses carries a price
// that converts or is refused, never rounded.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"c,STATUS,VEND,1.00,2", "c,VEND,SUCCESS", "c,ERR,VEND 3", "r,ACK", "c,STATUS,IDLE,5.00", "d,STATUS,RESULT,1,1.00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseLine(line)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrBadLine) && !errors.Is(err, ErrField) {
				t.Fatalf("%q: unwrapped error %v", line, err)
			}
			if m.Kind != KindOther && m.Kind != KindVendRequest {
				t.Fatalf("%q: error %v with kind %v", line, err, m.Kind)
			}
			return
		}
		if len(bytes.TrimSuffix(line, []byte{'\r'})) > MaxLine {
			t.Fatalf("%q: accepted over MaxLine", line)
		}
		if m.Kind == KindVendRequest {
			if m.Price.Frac > maxFrac {
				t.Fatalf("%q: %d decimals", line, m.Price.Frac)
			}
			for dec := uint8(0); dec <= maxFrac; dec++ {
				sen, err := m.Price.Sen(dec)
				if err != nil {
					continue
				}
				back, err := AppendAmount(nil, sen, dec)
				if sen == 0 {
					continue
				}
				d, _ := ParseDecimal(back)
				if s2, err2 := d.Sen(dec); err != nil || err2 != nil || s2 != sen {
					t.Fatalf("%q: %d sen with %d decimals writes %q (%v)", line, sen, dec, back, err)
				}
			}
		}
	})
}
