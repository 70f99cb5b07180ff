package kpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// Golden 0025s, built field by field from the table in spec §5.5. The
// checksums were computed independently (Python, XOR over the DATA).
const (
	goldenItem = "ITEM-42"
	goldenMRN  = "8e8c6e61-f9e4-40f0-a4a5-9e561579c901"

	// Spaces as padding: what AppendData writes.
	goldenSpaced = "0025" + "00000" + "000000000100" +
		"                                                         " + goldenItem +
		"000001234567890" +
		"    " + goldenMRN +
		"PRE" + "01" + "123456"
	goldenSpacedSum = "59"

	// Zeros as padding, which the documentation also allows.
	goldenZeroed = "0025" + "00000" + "000000000100" +
		"000000000000000000000000000000000000000000000000000000000" + goldenItem +
		"000001234567890" +
		"0000" + goldenMRN +
		"PRE" + "01" + "123456"
	goldenZeroedSum = "49"
)

var goldenNotification = SerialNotification{
	ResultCode:    "00000",
	AmountSen:     100,
	ItemGivenID:   goldenItem,
	MID:           "000001234567890", // a merchant id keeps its zeros
	MRN:           goldenMRN,
	PaymentType:   PaymentTypePreAuth,
	PaymentMethod: "01",
	ApprovalCode:  "123456",
}

func readAllFrames(t *testing.T, r io.Reader) (datas []string, errs []error) {
	t.Helper()
	fr := NewFrameReader(r, 0)
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("FrameReader does not reach EOF")
		}
		data, err := fr.Next()
		if err == io.EOF {
			return datas, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		datas = append(datas, string(data))
	}
}

func TestSerialResponseSample(t *testing.T) {
	// The one raw sample of spec §5.5 that checks out: STX 002600000 34 ETX.
	want := "\x02" + "002600000" + "34" + "\x03"
	got := AppendFrame(nil, AppendResponseData(nil, "00000"))
	if string(got) != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
	datas, errs := readAllFrames(t, strings.NewReader(want))
	if len(errs) != 0 || len(datas) != 1 {
		t.Fatalf("read %q, errors %v", datas, errs)
	}
	code, err := ParseSerialResponse([]byte(datas[0]))
	if err != nil || code != "00000" {
		t.Fatalf("ParseSerialResponse = %q, %v", code, err)
	}
}

func TestSerialRefusalFrames(t *testing.T) {
	for code, want := range map[string]string{
		"KA099": "\x020026KA0993E\x03",
		"KP001": "\x020026KP0012E\x03",
	} {
		if got := AppendFrame(nil, AppendResponseData(nil, code)); string(got) != want {
			t.Errorf("%s: frame %q, want %q", code, got, want)
		}
	}
}

func TestSerialGolden(t *testing.T) {
	if len(goldenSpaced) != SerialNotificationLen || len(goldenZeroed) != SerialNotificationLen || SerialNotificationLen != 151 {
		t.Fatalf("golden lengths %d, %d; SerialNotificationLen %d", len(goldenSpaced), len(goldenZeroed), SerialNotificationLen)
	}
	for _, g := range []struct{ name, data, sum string }{
		{"spaces", goldenSpaced, goldenSpacedSum},
		{"zeros", goldenZeroed, goldenZeroedSum},
	} {
		t.Run(g.name, func(t *testing.T) {
			frame := "\x02" + g.data + g.sum + "\x03"
			if got := AppendFrame(nil, []byte(g.data)); string(got) != frame {
				t.Fatalf("AppendFrame = %q, want %q", got, frame)
			}
			datas, errs := readAllFrames(t, strings.NewReader(frame))
			if len(errs) != 0 || len(datas) != 1 || datas[0] != g.data {
				t.Fatalf("read %q, errors %v", datas, errs)
			}
			n, err := ParseSerialNotification([]byte(datas[0]))
			if err != nil {
				t.Fatal(err)
			}
			if n != goldenNotification {
				t.Fatalf("parsed %+v\nwant   %+v", n, goldenNotification)
			}
		})
	}
	data, err := goldenNotification.AppendData([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "prefix"+goldenSpaced {
		t.Fatalf("AppendData = %q\nwant        %q", data, "prefix"+goldenSpaced)
	}
}

func TestSerialRoundTrip(t *testing.T) {
	full := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	for _, n := range []SerialNotification{
		goldenNotification,
		{ResultCode: "KA004", PaymentType: PaymentTypeSale, PaymentMethod: "00"}, // empty fields
		{
			ResultCode: "AR001", AmountSen: 999_999_999_999,
			ItemGivenID: "X" + full('9', 63), MID: full('M', 15), MRN: "a" + full('0', 39),
			PaymentType: PaymentTypeVisaInstalment, PaymentMethod: "09", ApprovalCode: "0 A-b0",
		},
		{ResultCode: "00000", AmountSen: 1, ItemGivenID: "lot 7 / bay 3", MID: "0", MRN: "TXN1757492341554",
			PaymentType: PaymentTypeSaleCompletion, PaymentMethod: "05", ApprovalCode: "0"},
	} {
		data, err := n.AppendData(nil)
		if err != nil {
			t.Fatalf("%+v: %v", n, err)
		}
		if len(data) != SerialNotificationLen {
			t.Fatalf("%+v: %d bytes", n, len(data))
		}
		frame := AppendFrame(nil, data)
		datas, errs := readAllFrames(t, bytes.NewReader(frame))
		if len(errs) != 0 || len(datas) != 1 {
			t.Fatalf("%q: read %q, errors %v", frame, datas, errs)
		}
		got, err := ParseSerialNotification([]byte(datas[0]))
		if err != nil {
			t.Fatalf("%q: %v", datas[0], err)
		}
		if got != n {
			t.Fatalf("round trip %+v\n        -> %+v", n, got)
		}
	}
}

func TestSerialChecksum(t *testing.T) {
	good := goldenSpaced
	for _, c := range []struct {
		name, frame string
		wantErr     error
	}{
		{"lowercase hex", "\x02" + "0026KA099" + "3e" + "\x03", nil},
		{"flipped data byte", "\x02" + strings.Replace(good, "PRE", "PRF", 1) + goldenSpacedSum + "\x03", ErrChecksum},
		{"wrong sum", "\x02" + good + "5A" + "\x03", ErrChecksum},
		{"not hex", "\x02" + good + "G9" + "\x03", ErrChecksum},
		{"no room for a sum", "\x02" + "5" + "\x03", ErrChecksum},
		{"empty frame", "\x02\x03", ErrChecksum},
		{"empty data", "\x02" + "00" + "\x03", nil},
	} {
		_, err := NewFrameReader(strings.NewReader(c.frame), 0).Next()
		if c.wantErr == nil && err != nil || !errors.Is(err, c.wantErr) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "kpos: ") {
			t.Errorf("%s: error without prefix: %v", c.name, err)
		}
	}
}

func TestParseSerialNotificationErrors(t *testing.T) {
	at := func(off int, repl string) string {
		return goldenSpaced[:off] + repl + goldenSpaced[off+len(repl):]
	}
	const (
		offResult = 4
		offAmount = offResult + 5
		offType   = SerialNotificationLen - 6 - 2 - 3
		offMethod = offType + 3
	)
	for _, c := range []struct {
		name, data, msg string
		want            error
	}{
		{"short", goldenSpaced[:150], "0025 of 150 bytes, want 151", ErrSerialData},
		{"long", goldenSpaced + "0", "0025 of 152 bytes, want 151", ErrSerialData},
		{"empty", "", "0025 of 0 bytes", ErrSerialData},
		{"other MTI", at(0, "0011"), `message type "0011"`, ErrSerialData},
		{"a 0026", "002600000", "0026 response", ErrSerialResponse},
		{"non-digit amount", at(offAmount, "00000000010A"), `amount "00000000010A"`, ErrSerialData},
		{"signed amount", at(offAmount, "-00000000100"), "amount", ErrSerialData},
		{"spaced amount", at(offAmount, "         100"), "amount", ErrSerialData},
		{"unknown paymentType", at(offType, "ABC"), `paymentType "ABC"`, ErrSerialData},
		{"lowercase paymentType", at(offType, "pre"), "paymentType", ErrSerialData},
		{"non-digit paymentMethod", at(offMethod, "0A"), `paymentMethod "0A"`, ErrSerialData},
		{"lowercase resultCode", at(offResult, "ka004"), "resultCode", ErrSerialData},
		{"control byte", at(40, "\t"), "byte 40 is 0x09", ErrSerialData},
		{"high byte", at(40, "\xe9"), "not printable ASCII", ErrSerialData},
	} {
		_, err := ParseSerialNotification([]byte(c.data))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
}

func TestAppendDataErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*SerialNotification)
		msg  string
	}{
		{"negative amount", func(n *SerialNotification) { n.AmountSen = -1 }, "amount -1"},
		{"amount over 12 digits", func(n *SerialNotification) { n.AmountSen = 1_000_000_000_000 }, "amount"},
		{"long mrn", func(n *SerialNotification) { n.MRN = strings.Repeat("m", 41) }, "longer than 40"},
		{"mrn with leading zero", func(n *SerialNotification) { n.MRN = "0123" }, "leading '0'"},
		{"item with leading space", func(n *SerialNotification) { n.ItemGivenID = " x" }, "edge spaces"},
		{"long mid", func(n *SerialNotification) { n.MID = strings.Repeat("1", 16) }, "mid"},
		{"long approvalCode", func(n *SerialNotification) { n.ApprovalCode = "1234567" }, "approvalCode"},
		{"non-ASCII item", func(n *SerialNotification) { n.ItemGivenID = "café" }, "printable"},
		{"paymentType", func(n *SerialNotification) { n.PaymentType = "SAL" }, "paymentType"},
		{"paymentMethod", func(n *SerialNotification) { n.PaymentMethod = "1" }, "paymentMethod"},
		{"resultCode", func(n *SerialNotification) { n.ResultCode = "0000" }, "resultCode"},
	} {
		n := goldenNotification
		c.edit(&n)
		dst := []byte("keep")
		got, err := n.AppendData(dst)
		if !errors.Is(err, ErrSerialData) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.msg)
		}
		if string(got) != "keep" {
			t.Errorf("%s: dst changed to %q", c.name, got)
		}
	}
}

func TestParseSerialResponse(t *testing.T) {
	for _, c := range []struct {
		data, code string
		ok         bool
	}{
		{"002600000", "00000", true},
		{"0026KP001", "KP001", true},
		{"0026000000", "", false},
		{"00260000", "", false},
		{"0025000000", "", false},
		{"0026kp001", "", false},
		{"00", "", false},
	} {
		code, err := ParseSerialResponse([]byte(c.data))
		if (err == nil) != c.ok || code != c.code {
			t.Errorf("%q: %q, %v", c.data, code, err)
		}
		if err != nil && !errors.Is(err, ErrSerialData) {
			t.Errorf("%q: unclassified %v", c.data, err)
		}
	}
}

func TestTrimSerialPadding(t *testing.T) {
	for in, want := range map[string]string{
		"     abc":   "abc",
		"00000abc":   "abc",
		"  00 0abc":  "abc",
		"abc   ":     "abc",
		"a 0 b":      "a 0 b",
		"abc0":       "abc0",
		"0000000000": "",
		"":           "",
	} {
		if got := TrimSerialPadding(in); got != want {
			t.Errorf("TrimSerialPadding(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFrameReaderNoiseAndSplits(t *testing.T) {
	n2 := goldenNotification
	n2.MRN, n2.AmountSen = "second", 250
	d2, err := n2.AppendData(nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := string(bytes.Join([][]byte{
		[]byte("\x00\xff boot v1.2\r\n\x03\x03"), // noise, stray ETXs
		AppendFrame(nil, []byte(goldenSpaced)),
		AppendFrame(nil, d2), // back to back with the first
		[]byte("\r\n"),
		AppendFrame(nil, []byte("002600000")),
	}, nil))
	want := []string{goldenSpaced, string(d2), "002600000"}

	readers := map[string]func() io.Reader{
		"one read":     func() io.Reader { return strings.NewReader(stream) },
		"byte by byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(stream)) },
		"halves":       func() io.Reader { return iotest.HalfReader(strings.NewReader(stream)) },
		"data with EOF": func() io.Reader {
			return iotest.DataErrReader(strings.NewReader(stream))
		},
	}
	for name, r := range readers {
		datas, errs := readAllFrames(t, r())
		if len(errs) != 0 || fmt.Sprint(datas) != fmt.Sprint(want) {
			t.Errorf("%s: read %q, errors %v", name, datas, errs)
		}
	}
	// Every split point of a frame in two reads.
	frame := AppendFrame([]byte("noise"), []byte(goldenSpaced))
	for i := 1; i < len(frame); i++ {
		r := io.MultiReader(bytes.NewReader(frame[:i]), bytes.NewReader(frame[i:]))
		datas, errs := readAllFrames(t, r)
		if len(errs) != 0 || len(datas) != 1 || datas[0] != goldenSpaced {
			t.Fatalf("split at %d: read %q, errors %v", i, datas, errs)
		}
	}
}

func TestFrameReaderTooLong(t *testing.T) {
	long := "\x02" + strings.Repeat("9", 600) + "00\x03"
	stream := long + string(AppendFrame(nil, []byte("002600000")))
	datas, errs := readAllFrames(t, strings.NewReader(stream))
	if len(errs) != 1 || !errors.Is(errs[0], ErrFrameTooLong) {
		t.Fatalf("errors %v, want one ErrFrameTooLong", errs)
	}
	if len(datas) != 1 || datas[0] != "002600000" {
		t.Fatalf("after the long frame read %q", datas)
	}

	// The bound counts STX and ETX: a limit of exactly the frame's size
	// takes it, one less does not.
	frame := AppendFrame(nil, []byte(goldenSpaced))
	if _, err := NewFrameReader(bytes.NewReader(frame), len(frame)).Next(); err != nil {
		t.Fatalf("limit %d: %v", len(frame), err)
	}
	if _, err := NewFrameReader(bytes.NewReader(frame), len(frame)-1).Next(); !errors.Is(err, ErrFrameTooLong) {
		t.Fatalf("limit %d: %v", len(frame)-1, err)
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	// The first frame lost its ETX; the one after it must still be read.
	stream := "\x02" + goldenSpaced[:80] + string(AppendFrame(nil, []byte(goldenSpaced)))
	datas, errs := readAllFrames(t, strings.NewReader(stream))
	if len(errs) != 1 || !errors.Is(errs[0], ErrFrameTruncated) {
		t.Fatalf("errors %v, want one ErrFrameTruncated", errs)
	}
	if len(datas) != 1 || datas[0] != goldenSpaced {
		t.Fatalf("read %q", datas)
	}
	// A doubled STX loses nothing and is no error.
	datas, errs = readAllFrames(t, strings.NewReader("\x02"+string(AppendFrame(nil, []byte("002600000")))))
	if len(errs) != 0 || len(datas) != 1 {
		t.Fatalf("doubled STX: read %q, errors %v", datas, errs)
	}
}

func TestFrameReaderEOF(t *testing.T) {
	fr := NewFrameReader(strings.NewReader("noise\x02002600"), 0)
	if _, err := fr.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("then: %v, want io.EOF", err)
	}
	if _, err := NewFrameReader(strings.NewReader("only noise"), 0).Next(); err != io.EOF {
		t.Fatalf("noise only: %v, want io.EOF", err)
	}
}

// timeoutReader fails once with a timeout between its two halves, as a
// serial port with a read timeout does when the peer pauses mid-frame.
type timeoutReader struct {
	parts [][]byte
}

func (r *timeoutReader) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	part := r.parts[0]
	r.parts = r.parts[1:]
	if part == nil {
		return 0, os.ErrDeadlineExceeded
	}
	return copy(p, part), nil
}

func TestFrameReaderKeepsPartialAcrossErrors(t *testing.T) {
	frame := AppendFrame(nil, []byte(goldenSpaced))
	fr := NewFrameReader(&timeoutReader{parts: [][]byte{frame[:70], nil, frame[70:]}}, 0)
	if _, err := fr.Next(); !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "kpos: ") {
		t.Fatalf("first Next: %v, want the reader's timeout", err)
	}
	data, err := fr.Next()
	if err != nil || string(data) != goldenSpaced {
		t.Fatalf("after the timeout: %q, %v", data, err)
	}
}

func TestFrameReaderNoProgress(t *testing.T) {
	_, err := NewFrameReader(iotest.ErrReader(nil), 0).Next()
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

func TestSerialRefusals(t *testing.T) {
	r := DefaultSerialRefusals
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	_, parseErr := ParseSerialNotification([]byte("0025"))
	_, echoErr := ParseSerialNotification([]byte("002600000"))
	for _, c := range []struct {
		err    error
		code   string
		answer bool
	}{
		{fmt.Errorf("%w: x", ErrChecksum), "KA099", true},
		{fmt.Errorf("%w: x", ErrFrameTooLong), "KA099", true},
		{parseErr, "KP001", true},
		{echoErr, "", false},
		{fmt.Errorf("%w after 3 bytes", ErrFrameTruncated), "", false},
		{io.ErrUnexpectedEOF, "", false},
		{os.ErrDeadlineExceeded, "", false},
		{nil, "", false},
	} {
		code, answer := r.Code(c.err)
		if code != c.code || answer != c.answer {
			t.Errorf("Code(%v) = %q, %v; want %q, %v", c.err, code, answer, c.code, c.answer)
		}
	}
	if code, answer := (SerialRefusals{Invalid: "KP021"}).Code(fmt.Errorf("%w: x", ErrChecksum)); answer || code != "" {
		t.Errorf("empty Corrupt answered %q", code)
	}
	for _, bad := range []SerialRefusals{{Corrupt: "00000"}, {Invalid: "KP01"}, {Invalid: "kp001"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if err := (SerialRefusals{}).Validate(); err != nil {
		t.Errorf("silent refusals: %v", err)
	}
}
