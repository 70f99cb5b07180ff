package kpos

// The serial-cable notification (spec §5.5, Appendix 5): KPOS sends a
// framed 0025, the kiosk answers a framed 0026. A frame is
// STX + DATA + CHECKSUM + ETX, CHECKSUM being the XOR of the DATA bytes
// as two uppercase hex digits; DATA is fixed-width ASCII fields.

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	serialSTX = 0x02
	serialETX = 0x03

	serialMTINotification = "0025"
	serialMTIResponse     = "0026"
)

// Field widths of a 0025's DATA, in wire order.
const (
	serialWidthMTI           = 4
	serialWidthResultCode    = 5
	serialWidthAmount        = 12
	serialWidthItemGivenID   = 64
	serialWidthMID           = 15
	serialWidthMRN           = 40
	serialWidthPaymentType   = 3
	serialWidthPaymentMethod = 2
	serialWidthApprovalCode  = 6
)

// SerialNotificationLen is the length of a 0025's DATA.
const SerialNotificationLen = serialWidthMTI + serialWidthResultCode + serialWidthAmount +
	serialWidthItemGivenID + serialWidthMID + serialWidthMRN + serialWidthPaymentType +
	serialWidthPaymentMethod + serialWidthApprovalCode

// SerialResponseLen is the length of a 0026's DATA.
const SerialResponseLen = serialWidthMTI + serialWidthResultCode

// MaxSerialFrame is the default bound on a frame, STX to ETX. A 0025 frame
// is 155 bytes; anything much longer is a lost ETX or noise.
const MaxSerialFrame = 512

// Largest amount the 12-digit field holds.
const serialMaxAmount = 999_999_999_999

// Payment types of the serial 0025.
const (
	PaymentTypeSale           = "STX"
	PaymentTypePreAuth        = "PRE"
	PaymentTypeSaleCompletion = "SLC"
	PaymentTypeVisaInstalment = "VIS"
)

// Errors of FrameReader.Next. ErrChecksum and ErrFrameTooLong concern a
// frame the peer sent and may be waiting on, so they are answered (see
// SerialRefusals); ErrFrameTruncated is not.
var (
	ErrChecksum     = errors.New("kpos: serial frame checksum mismatch")
	ErrFrameTooLong = errors.New("kpos: serial frame too long")
	// ErrFrameTruncated reports a frame abandoned because a new STX
	// arrived before its ETX: the ETX was lost and the sender has moved
	// on to the next frame, which is read normally.
	ErrFrameTruncated = errors.New("kpos: serial frame cut short by a new STX")
)

// ErrSerialData wraps every reason ParseSerialNotification,
// ParseSerialResponse or AppendData reject a message.
var ErrSerialData = errors.New("kpos: invalid serial message")

// ErrSerialResponse is returned by ParseSerialNotification for a 0026 on
// the kiosk's line: our own answer echoed back, or a confused peer.
var ErrSerialResponse = errors.New("kpos: serial frame is a 0026 response, not a notification")

// SerialRefusals are the 0026 resultCodes for frames the kiosk cannot
// take. Appendix 5 defines none [U], so they are configurable; an empty
// code means: do not answer.
type SerialRefusals struct {
	// Corrupt answers a frame damaged on the line (ErrChecksum,
	// ErrFrameTooLong), in the hope that KPOS sends it again.
	Corrupt string
	// Invalid answers an intact frame that is not a readable 0025
	// (ErrSerialData).
	Invalid string
}

// DefaultSerialRefusals: KA099 (unknown exception) for a damaged frame,
// since Appendix 3 has no code for a transmission error and this one
// claims nothing about the payment; KP001 (invalid message type) for a
// frame that is intact but not a 0025 we can read.
var DefaultSerialRefusals = SerialRefusals{Corrupt: "KA099", Invalid: "KP001"}

// Validate checks that each code fits the 5-character field and is not
// the success code.
func (r SerialRefusals) Validate() error {
	for _, c := range []struct{ name, code string }{{"corrupt", r.Corrupt}, {"invalid", r.Invalid}} {
		if c.code == "" {
			continue
		}
		if !serialResultCodeOK(c.code) {
			return fmt.Errorf("kpos: serial refusal %s %q: not 5 digits or uppercase letters", c.name, c.code)
		}
		if c.code == "00000" {
			return fmt.Errorf("kpos: serial refusal %s: 00000 means success", c.name)
		}
	}
	return nil
}

// Code returns the resultCode to answer for an error of FrameReader.Next
// or ParseSerialNotification, and false when nothing must be sent. Read
// errors, truncated frames and 0026 frames get no answer: a 0026 carries
// nothing that says which frame it answers, so a reply to a frame the
// peer has given up on, or to an echo of our own reply, would be taken as
// the answer to the next notification or loop on an echoing line.
func (r SerialRefusals) Code(err error) (resultCode string, answer bool) {
	switch {
	case err == nil, errors.Is(err, ErrSerialResponse):
		return "", false
	case errors.Is(err, ErrChecksum), errors.Is(err, ErrFrameTooLong):
		return r.Corrupt, r.Corrupt != ""
	case errors.Is(err, ErrSerialData):
		return r.Invalid, r.Invalid != ""
	}
	return "", false
}

// SerialNotification is a 0025 received over the serial cable. Padded
// fields are trimmed (see TrimSerialPadding).
type SerialNotification struct {
	ResultCode    string // "00000" = approved
	AmountSen     int64
	ItemGivenID   string
	MID           string
	MRN           string
	PaymentType   string // PaymentTypeSale, …PreAuth, …SaleCompletion, …VisaInstalment
	PaymentMethod string // two digits, spec §6.3
	ApprovalCode  string
}

// TrimSerialPadding removes the padding of itemGivenId and mrn: leading
// spaces and zeros, trailing spaces. The documentation allows either pad
// character and its sample pads on the left, so a leading '0' cannot be
// told from padding; the kiosk must compare its own reference through this
// function too, and should not issue references that start with '0'.
func TrimSerialPadding(s string) string {
	return strings.TrimRight(strings.TrimLeft(s, " 0"), " ")
}

// ParseSerialNotification reads the DATA of a 0025 frame.
func ParseSerialNotification(data []byte) (SerialNotification, error) {
	var n SerialNotification
	if len(data) >= serialWidthMTI {
		switch mti := string(data[:serialWidthMTI]); mti {
		case serialMTINotification:
		case serialMTIResponse:
			return n, ErrSerialResponse
		default:
			return n, fmt.Errorf("%w: message type %q, want %s", ErrSerialData, mti, serialMTINotification)
		}
	}
	if len(data) != SerialNotificationLen {
		return n, fmt.Errorf("%w: 0025 of %d bytes, want %d", ErrSerialData, len(data), SerialNotificationLen)
	}
	if i := serialNonPrintable(data); i >= 0 {
		return n, fmt.Errorf("%w: 0025 byte %d is %#02x, not printable ASCII", ErrSerialData, i, data[i])
	}
	rest := string(data[serialWidthMTI:])
	field := func(w int) string {
		f := rest[:w]
		rest = rest[w:]
		return f
	}

	n.ResultCode = field(serialWidthResultCode)
	if err := serialCheckResultCode(n.ResultCode); err != nil {
		return n, err
	}
	amount := field(serialWidthAmount)
	if !serialDigits(amount) {
		return n, fmt.Errorf("%w: amount %q: not %d digits", ErrSerialData, amount, serialWidthAmount)
	}
	n.AmountSen, _ = strconv.ParseInt(amount, 10, 64) // 12 digits always fit
	n.ItemGivenID = TrimSerialPadding(field(serialWidthItemGivenID))
	n.MID = strings.Trim(field(serialWidthMID), " ")
	n.MRN = TrimSerialPadding(field(serialWidthMRN))
	n.PaymentType = field(serialWidthPaymentType)
	if !serialKnownPaymentType(n.PaymentType) {
		return n, fmt.Errorf("%w: paymentType %q: not STX, PRE, SLC or VIS", ErrSerialData, n.PaymentType)
	}
	n.PaymentMethod = field(serialWidthPaymentMethod)
	if !serialDigits(n.PaymentMethod) {
		return n, fmt.Errorf("%w: paymentMethod %q: not %d digits", ErrSerialData, n.PaymentMethod, serialWidthPaymentMethod)
	}
	n.ApprovalCode = strings.Trim(field(serialWidthApprovalCode), " ")
	return n, nil
}

// AppendData appends the 0025 DATA for n: what KPOS would send, for the
// fake KPOS and tests. Padded fields are right-aligned with spaces, as in
// the documentation's sample. Values that do not fit their field, or that
// would not read back the same (a leading '0' in itemGivenId or mrn, edge
// spaces), are errors and leave dst as it was.
func (n SerialNotification) AppendData(dst []byte) ([]byte, error) {
	if err := serialCheckResultCode(n.ResultCode); err != nil {
		return dst, err
	}
	if n.AmountSen < 0 || n.AmountSen > serialMaxAmount {
		return dst, fmt.Errorf("%w: amount %d sen: outside 0..%d", ErrSerialData, n.AmountSen, int64(serialMaxAmount))
	}
	for _, f := range []struct {
		name, v string
		width   int
		zeroPad bool
	}{
		{"itemGivenId", n.ItemGivenID, serialWidthItemGivenID, true},
		{"mid", n.MID, serialWidthMID, false},
		{"mrn", n.MRN, serialWidthMRN, true},
		{"approvalCode", n.ApprovalCode, serialWidthApprovalCode, false},
	} {
		if err := serialCheckPadded(f.name, f.v, f.width, f.zeroPad); err != nil {
			return dst, err
		}
	}
	if !serialKnownPaymentType(n.PaymentType) {
		return dst, fmt.Errorf("%w: paymentType %q: not STX, PRE, SLC or VIS", ErrSerialData, n.PaymentType)
	}
	if len(n.PaymentMethod) != serialWidthPaymentMethod || !serialDigits(n.PaymentMethod) {
		return dst, fmt.Errorf("%w: paymentMethod %q: not %d digits", ErrSerialData, n.PaymentMethod, serialWidthPaymentMethod)
	}

	dst = append(dst, serialMTINotification...)
	dst = append(dst, n.ResultCode...)
	var amount [serialWidthAmount]byte
	for i, v := len(amount)-1, n.AmountSen; i >= 0; i, v = i-1, v/10 {
		amount[i] = byte('0' + v%10)
	}
	dst = append(dst, amount[:]...)
	dst = serialAppendRight(dst, n.ItemGivenID, serialWidthItemGivenID)
	dst = serialAppendRight(dst, n.MID, serialWidthMID)
	dst = serialAppendRight(dst, n.MRN, serialWidthMRN)
	dst = append(dst, n.PaymentType...)
	dst = append(dst, n.PaymentMethod...)
	dst = serialAppendRight(dst, n.ApprovalCode, serialWidthApprovalCode)
	return dst, nil
}

// AppendResponseData appends the DATA of a 0026 answer. resultCode is
// written as given; it must be 5 characters (see SerialRefusals.Validate).
func AppendResponseData(dst []byte, resultCode string) []byte {
	return append(append(dst, serialMTIResponse...), resultCode...)
}

// ParseSerialResponse reads the DATA of a 0026 frame and returns its
// resultCode: the fake KPOS's side of the exchange.
func ParseSerialResponse(data []byte) (resultCode string, err error) {
	if len(data) < serialWidthMTI || string(data[:serialWidthMTI]) != serialMTIResponse {
		return "", fmt.Errorf("%w: %q is not a 0026", ErrSerialData, data[:min(len(data), serialWidthMTI)])
	}
	if len(data) != SerialResponseLen {
		return "", fmt.Errorf("%w: 0026 of %d bytes, want %d", ErrSerialData, len(data), SerialResponseLen)
	}
	code := string(data[serialWidthMTI:])
	if err := serialCheckResultCode(code); err != nil {
		return "", err
	}
	return code, nil
}

// AppendFrame appends STX, data, its checksum and ETX. data is ASCII DATA
// as built by AppendData or AppendResponseData.
func AppendFrame(dst, data []byte) []byte {
	const hex = "0123456789ABCDEF"
	sum := serialXOR(data)
	dst = append(dst, serialSTX)
	dst = append(dst, data...)
	return append(dst, hex[sum>>4], hex[sum&0xf], serialETX)
}

// FrameReader yields the DATA of the frames on a serial line. Bytes
// outside frames (line noise, a peer's boot messages) are skipped.
type FrameReader struct {
	r     io.Reader
	max   int
	buf   []byte
	pos   int // unread input is buf[pos:end]
	end   int
	state int    // serialHunt, serialInFrame, serialSkip
	frame []byte // bytes after STX of the frame being collected
	err   error  // read error to report once buf is used up
}

const (
	serialHunt    = iota // looking for STX
	serialInFrame        // after STX, collecting
	serialSkip           // over-long frame reported, discarding to ETX or STX
)

// NewFrameReader reads frames of at most limit bytes, STX and ETX included
// (MaxSerialFrame if limit <= 0).
func NewFrameReader(r io.Reader, limit int) *FrameReader {
	if limit <= 0 {
		limit = MaxSerialFrame
	}
	limit = max(limit, 4) // STX, two checksum digits, ETX
	return &FrameReader{r: r, max: limit, buf: make([]byte, 256), frame: make([]byte, 0, limit-2)}
}

// Next returns the DATA of the next frame with a valid checksum. The slice
// aliases the reader's buffer and is valid until the next call.
//
// A damaged frame gives ErrChecksum, ErrFrameTooLong or ErrFrameTruncated
// and reading goes on after it. Errors of the underlying reader are
// returned wrapped and do not end the FrameReader: after a read timeout a
// partial frame is kept and Next may be called again. At the end of input
// Next returns io.EOF, or an error matching io.ErrUnexpectedEOF if a frame
// was cut off.
func (f *FrameReader) Next() ([]byte, error) {
	empty := 0
	for {
		for f.pos < f.end {
			c := f.buf[f.pos]
			f.pos++
			switch f.state {
			case serialHunt:
				if c == serialSTX {
					f.state, f.frame = serialInFrame, f.frame[:0]
				}
			case serialSkip:
				switch c {
				case serialSTX:
					f.state, f.frame = serialInFrame, f.frame[:0]
				case serialETX:
					f.state = serialHunt
				}
			case serialInFrame:
				switch c {
				case serialSTX:
					lost := len(f.frame)
					f.frame = f.frame[:0]
					if lost > 0 {
						return nil, fmt.Errorf("%w after %d bytes", ErrFrameTruncated, lost)
					}
				case serialETX:
					f.state = serialHunt
					return f.check()
				default:
					if len(f.frame) == cap(f.frame) {
						f.state = serialSkip
						return nil, fmt.Errorf("%w: no ETX within %d bytes", ErrFrameTooLong, f.max)
					}
					f.frame = append(f.frame, c)
				}
			}
		}
		if err := f.err; err != nil {
			f.err = nil
			return nil, f.readError(err)
		}
		n, err := f.r.Read(f.buf)
		f.pos, f.end, f.err = 0, n, err
		if n == 0 && err == nil {
			// io.Reader allows this but not forever; see bufio.
			if empty++; empty >= 100 {
				return nil, fmt.Errorf("kpos: read serial frame: %w", io.ErrNoProgress)
			}
		}
	}
}

func (f *FrameReader) readError(err error) error {
	if err != io.EOF {
		return fmt.Errorf("kpos: read serial frame: %w", err)
	}
	inFrame := f.state == serialInFrame
	f.state = serialHunt
	if inFrame {
		return fmt.Errorf("kpos: serial frame of %d bytes without ETX: %w", len(f.frame), io.ErrUnexpectedEOF)
	}
	return io.EOF
}

// check splits a complete frame body into DATA and checksum.
func (f *FrameReader) check() ([]byte, error) {
	body := f.frame
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: frame of %d bytes has no checksum", ErrChecksum, len(body))
	}
	data, sum := body[:len(body)-2], body[len(body)-2:]
	hi, ok1 := serialUnhex(sum[0])
	lo, ok2 := serialUnhex(sum[1])
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: checksum %q is not hex", ErrChecksum, sum)
	}
	if want := serialXOR(data); hi<<4|lo != want {
		return nil, fmt.Errorf("%w: frame of %d data bytes says %q, data gives %02X", ErrChecksum, len(data), sum, want)
	}
	return data, nil
}

func serialXOR(data []byte) byte {
	var x byte
	for _, c := range data {
		x ^= c
	}
	return x
}

// serialUnhex accepts either case: the spec says uppercase, and a peer
// that writes lowercase has still computed the right sum.
func serialUnhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func serialDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func serialNonPrintable[T string | []byte](b T) int {
	for i := 0; i < len(b); i++ {
		if b[i] < 0x20 || b[i] > 0x7e {
			return i
		}
	}
	return -1
}

func serialKnownPaymentType(s string) bool {
	switch s {
	case PaymentTypeSale, PaymentTypePreAuth, PaymentTypeSaleCompletion, PaymentTypeVisaInstalment:
		return true
	}
	return false
}

// serialResultCodeOK accepts the shapes of Appendix 3: "00000",
// "KA001", "AR001" — five digits or uppercase letters.
func serialResultCodeOK(code string) bool {
	ok := len(code) == serialWidthResultCode
	for i := 0; ok && i < len(code); i++ {
		c := code[i]
		ok = '0' <= c && c <= '9' || 'A' <= c && c <= 'Z'
	}
	return ok
}

func serialCheckResultCode(code string) error {
	if !serialResultCodeOK(code) {
		return fmt.Errorf("%w: resultCode %q: not 5 digits or uppercase letters", ErrSerialData, code)
	}
	return nil
}

func serialCheckPadded(name, v string, width int, zeroPad bool) error {
	switch {
	case len(v) > width:
		return fmt.Errorf("%w: %s %q: longer than %d", ErrSerialData, name, v, width)
	case serialNonPrintable(v) >= 0:
		return fmt.Errorf("%w: %s %q: not printable ASCII", ErrSerialData, name, v)
	case strings.HasPrefix(v, " ") || strings.HasSuffix(v, " "):
		return fmt.Errorf("%w: %s %q: edge spaces would be read as padding", ErrSerialData, name, v)
	case zeroPad && strings.HasPrefix(v, "0"):
		return fmt.Errorf("%w: %s %q: a leading '0' would be read as padding", ErrSerialData, name, v)
	}
	return nil
}

func serialAppendRight(dst []byte, v string, width int) []byte {
	for range width - len(v) {
		dst = append(dst, ' ')
	}
	return append(dst, v...)
}
