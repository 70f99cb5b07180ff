package printer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/printer/printertest"
	"github.com/kioskd/kioskd/protocol/escpos"
)

func sampleReceipt() Receipt {
	return Receipt{
		Merchant:         []string{"KEDAI AH SENG SDN BHD", "Lot 5, Jalan Ampang", "Kuala Lumpur"},
		Time:             time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("MYT", 8*3600)),
		KioskID:          "K-0001",
		TxnID:            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		Amount:           1250,
		Mode:             "card",
		CardLast4:        "4242",
		POSTransactionID: "POS123456789",
		AuthCode:         "A1B2C3",
		Outcome:          Approved,
		QR:               "https://r.example/0f1e",
		Footer:           []string{"Terima kasih!"},
	}
}

// decode reads one job back through the fake printer's decoder.
func decode(t *testing.T, job []byte) printertest.Page {
	t.Helper()
	var pages []printertest.Page
	d := printertest.Decoder{
		OnPage:  func(p printertest.Page) { pages = append(pages, p) },
		OnQuery: func(q escpos.Query) { t.Errorf("status request %d inside a job", q) },
	}
	d.Write(job)
	if len(d.Unknown) > 0 {
		t.Errorf("unknown bytes % x", d.Unknown)
	}
	if len(pages) != 1 || !pages[0].Cut {
		t.Fatalf("want one cut page, got %d: %+v", len(pages), pages)
	}
	if !bytes.HasPrefix(job, []byte{0x1b, '@'}) {
		t.Errorf("job does not start with ESC @: % x", job[:4])
	}
	return pages[0]
}

func TestReceiptLayout(t *testing.T) {
	const want32 = `KEDAI AH SENG SDN BHD
Lot 5, Jalan Ampang
Kuala Lumpur

Date         2025-03-14 09:26:53
Kiosk                     K-0001
Txn
0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
Mode                        card
Card                   **** 4242
POS txn             POS123456789
Auth code                 A1B2C3
--------------------------------
RM 12.50
APPROVED
--------------------------------
[QR https://r.example/0f1e]

Terima kasih!
`
	const want42 = `KEDAI AH SENG SDN BHD
Lot 5, Jalan Ampang
Kuala Lumpur

Date                   2025-03-14 09:26:53
Kiosk                               K-0001
Txn   0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
Mode                                  card
Card                             **** 4242
POS txn                       POS123456789
Auth code                           A1B2C3
------------------------------------------
RM 12.50
APPROVED
------------------------------------------
[QR https://r.example/0f1e]

Terima kasih!
`
	for _, c := range []struct {
		layout Layout
		want   string
	}{{Layout{}, want32}, {Layout{Width: 42, CodePage: escpos.CP858}, want42}} {
		job := AppendReceipt(nil, sampleReceipt(), c.layout)
		pg := decode(t, job)
		if got := pg.Text(); got != c.want {
			t.Errorf("width %d:\n%s\nwant\n%s", c.layout.Width, got, c.want)
		}
		if !bytes.HasPrefix(job, []byte{0x1b, '@', 0x1b, 't', c.layout.CodePage.Table()}) {
			t.Errorf("no code page %v selected: % x", c.layout.CodePage, job[:6])
		}
		for _, l := range pg.Lines {
			switch {
			case l.Text == "RM 12.50" && (l.Width != 2 || l.Height != 2 || l.Align != escpos.Center):
				t.Errorf("amount line %+v: want double size, centred", l)
			case l.Text == "APPROVED" && !l.Bold:
				t.Errorf("outcome line %+v: want bold", l)
			case l.Text == "KEDAI AH SENG SDN BHD" && (!l.Bold || l.Align != escpos.Center):
				t.Errorf("merchant line %+v: want bold, centred", l)
			case strings.HasPrefix(l.Text, "Mode") && (l.Bold || l.Width != 1 || l.Align != escpos.Left):
				t.Errorf("detail line %+v: want plain", l)
			}
		}
		if qr := pg.QRs(); len(qr) != 1 || qr[0] != "https://r.example/0f1e" {
			t.Errorf("QR codes %q", qr)
		}
	}
}

func TestReceiptOptionalFields(t *testing.T) {
	r := Receipt{TxnID: "t1", Amount: 5, Mode: "ipp", Plan: "6M-0%", Outcome: Declined}
	got := decode(t, AppendReceipt(nil, r, Layout{})).Text()
	want := `Txn                           t1
Mode                         ipp
Plan                       6M-0%
--------------------------------
RM 0.05
DECLINED
--------------------------------
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Text from outside (a POS answer, a config line) prints as text, never as
// commands, and the columns still line up.
func TestReceiptHostileText(t *testing.T) {
	r := Receipt{
		Merchant: []string{"Café\x1dV\x42\x00 «Ünïcødé» 咖啡"},
		TxnID:    "t1",
		AuthCode: "12\n\x1b@34",
		Amount:   100,
		Outcome:  Approved,
	}
	pg := decode(t, AppendReceipt(nil, r, Layout{CodePage: escpos.CP858}))
	text := pg.Text()
	for _, want := range []string{"CaféVB «Ünïcødé» ??\n", "Auth code" + strings.Repeat(" ", 18) + "12@34\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

func TestLines(t *testing.T) {
	pg := decode(t, AppendLines(nil, []string{"Kiosk address", "10.0.0.5:8080"}, "http://10.0.0.5:8080", Layout{}))
	if got, want := pg.Text(), "Kiosk address\n10.0.0.5:8080\n[QR http://10.0.0.5:8080]\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	pg = decode(t, AppendLines(nil, []string{"no QR"}, "", Layout{}))
	if got := pg.Text(); got != "no QR\n" {
		t.Errorf("got %q", got)
	}
}

func TestTestPage(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	pg := decode(t, AppendTestPage(nil, []string{"K-0001 v1.2"}, now, Layout{Width: 42, CodePage: escpos.CP1252}))
	text := pg.Text()
	for _, want := range []string{
		"PRINTER TEST\nK-0001 v1.2\n",
		"Width" + strings.Repeat(" ", 35) + "42\n",
		"Code page" + strings.Repeat(" ", 27) + "cp1252\n",
		"123456789012345678901234567890123456789012\n",
		"Café Ñandú ½ € £ ©\n",
		"[QR kioskd printer test]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

func TestAppendSen(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0.00", 5: "0.05", 50: "0.50", 1250: "12.50", 100000: "1000.00", -1: "-0.01", -1250: "-12.50",
		-9223372036854775808: "-92233720368547758.08", 9223372036854775807: "92233720368547758.07",
	} {
		if got := string(appendSen(nil, in)); got != want {
			t.Errorf("appendSen(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestLayoutCheck(t *testing.T) {
	for _, l := range []Layout{{}, {Width: 16}, {Width: 48, CodePage: escpos.CP1252, QRSize: 16}} {
		if err := l.Check(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, l := range []Layout{{Width: 15}, {Width: 81}, {Width: -1}, {CodePage: 9}, {QRSize: 17}, {QRSize: -1}} {
		if err := l.Check(); err == nil || !strings.HasPrefix(err.Error(), "printer: ") {
			t.Errorf("%+v: %v", l, err)
		}
	}
}

// The receipt is encoded on every payment on a small board: with its
// buffer reused it must not allocate.
func TestReceiptAllocs(t *testing.T) {
	r, l := sampleReceipt(), Layout{Width: 42, CodePage: escpos.CP858}
	buf := AppendReceipt(nil, r, l)
	if n := testing.AllocsPerRun(100, func() { buf = AppendReceipt(buf[:0], r, l) }); n != 0 {
		t.Fatalf("%v allocations per receipt", n)
	}
}

func BenchmarkReceipt(b *testing.B) {
	r, l := sampleReceipt(), Layout{Width: 42, CodePage: escpos.CP858}
	buf := AppendReceipt(nil, r, l)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReceipt(buf[:0], r, l)
	}
}
