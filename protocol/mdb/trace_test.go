package mdb_test

import (
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

func TestDescribe(t *testing.T) {
	cmd := func(addrCmd byte, data ...byte) []mdb.Word { return mdb.AppendCommand(nil, addrCmd, data) }
	bad := cmd(0x13, 0x00, 0, 150, 0, 12)
	bad[len(bad)-1]++
	for _, tc := range []struct {
		unit, reply []mdb.Word
		want        string
	}{
		{cmd(0x13, 0x00, 0, 150, 0, 12), mdb.AppendACK(nil), "VEND REQUEST price=150 item=12 -> ACK"},
		{cmd(0x12), mdb.AppendReply(nil, []byte{0x05, 0, 150}), "POLL -> VEND APPROVED 150"},
		{cmd(0x12), mdb.AppendReply(nil, []byte{0x06, 0x07}), "POLL -> VEND DENIED, END SESSION"},
		{[]mdb.Word{mdb.Data(mdb.RET)}, mdb.AppendReply(nil, []byte{0x00}), "RET -> JUST RESET"},
		{[]mdb.Word{mdb.Data(mdb.NAK)}, nil, "NAK -> silence"},
		{[]mdb.Word{mdb.Data(mdb.ACK)}, nil, "ACK -> silence"},
		{bad, nil, "CHK ERROR [113 000 000 096 000 00C 0B6] -> silence"},
		{cmd(0x10), mdb.AppendACK(nil), "RESET -> ACK"},
		{cmd(0x13, 0x02, 0, 12), mdb.AppendNAK(nil), "VEND SUCCESS item=12 -> NAK"},
		{cmd(0x13, 0x04), mdb.AppendReply(nil, []byte{0x07}), "SESSION COMPLETE -> END SESSION"},
		{cmd(0x14, 0x01), mdb.AppendACK(nil), "READER ENABLE -> ACK"},
		{cmd(0x63), nil, "@60h VEND sub=FF -> silence"},
		{cmd(0x13, 0x00, 0, 150), nil, "VEND REQUEST (short) -> silence"},
		{cmd(0x0B), nil, "PERIPHERAL 08h CMD 3 -> silence"},
		{cmd(0x11, 0x00, 3, 0, 0, 0), mdb.AppendReply(nil, []byte{0x01, 3, 0x14, 0x58, 1, 2, 60, 0x09}),
			"SETUP CONFIG level=3 cols=0 rows=0 display=0 -> READER CONFIG level=3 currency=1458 scale=1 decimals=2 max_response_s=60 options=09"},
		{cmd(0x12), []mdb.Word{mdb.Data(0x05), mdb.Mark(0x05)}, "POLL -> DATA [005]"},
		{cmd(0x12), []mdb.Word{mdb.Data(0x05), mdb.Mark(0x06)}, "POLL -> CHK ERROR [005 106]"},
		{nil, nil, "(nothing) -> silence"},
	} {
		if got := mdb.Describe(tc.unit, tc.reply); got != tc.want {
			t.Errorf("Describe(%03x, %03x)\n got %s\nwant %s", tc.unit, tc.reply, got, tc.want)
		}
	}
}

// tracing is a Peripheral that records a trace line per exchange.
type tracing struct {
	d     *mdb.Device
	tr    mdb.Tracer
	lines []string
}

func (p *tracing) Handle(in []mdb.Word) []mdb.Word {
	out := p.d.Handle(in)
	p.lines = append(p.lines, string(p.tr.Append(nil, in, out)))
	return out
}

// TestTraceSession: a whole session, as the trace shows it; the levels
// learnt from Setup make the level 3 messages split right.
func TestTraceSession(t *testing.T) {
	d, err := mdb.New(mdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &tracing{d: d}
	v := vmcsim.New(p, mdb.AddrCashless1)
	if _, err := v.Init(0); err != nil {
		t.Fatal(err)
	}
	if err := d.BeginSession(500); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Poll(); err != nil {
		t.Fatal(err)
	}
	v.VendRequest(150, 12)
	ev := d.Events(nil)
	d.Approve(ev[len(ev)-1].Vend, 150)
	v.Poll()
	v.VendSuccess(12)
	v.SessionComplete()
	v.Poll()
	got := strings.Join(p.lines, "\n")
	for _, want := range []string{
		"RESET -> ACK\nPOLL -> JUST RESET\nACK -> silence\n",
		"EXPANSION REQUEST ID mfr=\"SIM\" -> PERIPHERAL ID mfr=\"KSK\" serial=\"0           \" model=\"kioskd      \" sw=0000 options=00000020",
		"POLL -> BEGIN SESSION funds=500\n",
		"VEND REQUEST price=150 item=12 -> ACK\n",
		"POLL -> VEND APPROVED 150\n",
		"VEND SUCCESS item=12 -> ACK\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
}

func FuzzDescribe(f *testing.F) {
	f.Add([]byte{0x01, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, 0x00, 0x00, 0x00, 0x0C, 0x00, 0xB5}, 7)
	f.Add([]byte{0x01, 0x12, 0x00, 0x12}, 2)
	f.Add([]byte{0x00, 0xAA, 0x00, 0x05, 0x01, 0x05}, 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var ws []mdb.Word
		for i := 0; i+1 < len(b); i += 2 {
			ws = append(ws, mdb.Word(b[i])<<8|mdb.Word(b[i+1]))
		}
		cut = max(0, min(cut, len(ws)))
		var tr mdb.Tracer
		tr.Append(nil, ws[:cut], ws[cut:])
		tr.Append(nil, ws[cut:], ws[:cut])
		mdb.Describe(ws, ws)
	})
}
