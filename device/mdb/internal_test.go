package mdb

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		unit []mdb.Word
		want bool
	}{
		{"poll", mdb.AppendCommand(nil, 0x12, nil), true},
		{"poll at 60h", mdb.AppendCommand(nil, 0x62, nil), true},
		{"reset", mdb.AppendCommand(nil, 0x10, nil), true},
		{"vend request", mdb.AppendCommand(nil, 0x13, []byte{0, 0, 150, 0, 12}), true},
		{"vend request, short", mdb.AppendCommand(nil, 0x13, []byte{0, 0, 150, 0, 12})[:6], false},
		{"vend success", mdb.AppendCommand(nil, 0x13, []byte{2, 0, 12}), true},
		{"session complete", mdb.AppendCommand(nil, 0x13, []byte{4}), true},
		{"reader enable", mdb.AppendCommand(nil, 0x14, []byte{1}), true},
		{"setup config", mdb.AppendCommand(nil, 0x11, []byte{0, 3, 0, 0, 0}), true},
		{"request id", mdb.AppendCommand(nil, 0x17, make([]byte, 30)), true},
		{"enable options", mdb.AppendCommand(nil, 0x17, []byte{4, 0, 0, 0, 0x20}), true},
		{"bad checksum", append(mdb.AppendCommand(nil, 0x13, []byte{4})[:2], mdb.Data(0)), false},
		{"other peripheral", mdb.AppendCommand(nil, 0x0B, nil), false},
		{"diagnostics", mdb.AppendCommand(nil, 0x17, []byte{0xFF, 1}), false},
		{"address alone", []mdb.Word{mdb.Mark(0x12)}, false},
		{"unmarked", []mdb.Word{mdb.Data(0x12), mdb.Data(0x12)}, false},
	} {
		if got := complete(tc.unit); got != tc.want {
			t.Errorf("%s %03x: complete %v, want %v", tc.name, tc.unit, got, tc.want)
		}
	}
}

func TestParmrk(t *testing.T) {
	// What a tty with INPCK|PARMRK at space parity delivers for: 12h
	// with the mode bit, 00h, FFh (intact), 00h with the mode bit, FFh
	// with the mode bit.
	in := []byte{0xFF, 0x00, 0x12, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xFF, 0x00, 0xFF}
	want := []mdb.Word{mdb.Mark(0x12), mdb.Data(0), mdb.Data(0xFF), mdb.Mark(0), mdb.Mark(0xFF)}
	// Byte by byte, as separate reads would split it.
	var p parmrk
	var got []mdb.Word
	for _, b := range in {
		if w, ok := p.feed(b); ok {
			got = append(got, w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %03x, want %03x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %03x, want %03x", got, want)
		}
	}
}

func TestRuns(t *testing.T) {
	reply := mdb.AppendReply(nil, []byte{0x05, 0x00, 0x96})
	end, mark := run(reply, 0)
	if end != 3 || mark {
		t.Errorf("data run: %d %v", end, mark)
	}
	end, mark = run(reply, 3)
	if end != 4 || !mark {
		t.Errorf("checksum run: %d %v", end, mark)
	}
	end, mark = run([]mdb.Word{mdb.Mark(0)}, 0)
	if end != 1 || !mark {
		t.Errorf("ACK: %d %v", end, mark)
	}
}

func TestIsMiniUART(t *testing.T) {
	for name, want := range map[string]bool{
		"/dev/ttyS0": true, "ttyS0": true, "/dev/ttyAMA0": false, "/dev/ttyS01": false, "/dev/ttyUSB0": false,
	} {
		if isMiniUART(name) != want {
			t.Errorf("isMiniUART(%s) = %v", name, !want)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if s := h.stats(); s != (Stats{}) {
		t.Errorf("empty: %+v", s)
	}
	for i := range 100 {
		h.add(time.Duration(i+1) * 10 * time.Microsecond) // 10 µs .. 1 ms
	}
	h.add(7 * time.Millisecond)
	h.add(time.Second)
	s := h.stats()
	if s.Count != 102 || s.Late != 2 || s.Max != time.Second {
		t.Errorf("%+v", s)
	}
	if s.P50 < 500*time.Microsecond || s.P50 > 530*time.Microsecond {
		t.Errorf("p50 %v", s.P50)
	}
	if s.P99 < 990*time.Microsecond || s.P99 > 7*time.Millisecond {
		t.Errorf("p99 %v", s.P99)
	}
	for _, d := range []time.Duration{0, time.Microsecond, 999 * time.Microsecond, time.Millisecond, 9999 * time.Microsecond, 10 * time.Millisecond, 99 * time.Millisecond, time.Hour, -1} {
		if b := bucket(d); d >= 0 && upper(b) < d || b < 0 || b >= len(h.b) {
			t.Errorf("bucket(%v) = %d, upper %v", d, b, upper(b))
		}
	}
}
