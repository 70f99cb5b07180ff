package qibixx

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// MaxLine bounds a line from the board, terminator excluded. The longest
// line kioskd acts on is a vend request, some 30 characters; the rest of
// the room is for the lines it only logs (version, sniffer).
const MaxLine = 128

// The parser's verdicts. Each error ParseLine returns wraps one of them.
var (
	ErrEmpty   = errors.New("qibixx: empty line")
	ErrTooLong = errors.New("qibixx: line too long")
	ErrBadLine = errors.New("qibixx: not a line of the board's protocol")
	ErrField   = errors.New("qibixx: field does not parse")
)

// Kind says what a line is.
type Kind uint8

const (
	// KindOther: a well-formed line kioskd does not act on: another
	// mode's answer (d, x, v, f, ...), or a c line it does not know.
	KindOther Kind = iota
	// KindStatus: c,STATUS,<state>, the slave's state as the VMC moved it.
	KindStatus
	// KindVendRequest: c,STATUS,VEND,<price>,<item>: the VMC asks for a
	// vend and the board waits for C,VEND or C,STOP.
	KindVendRequest
	// KindVendSuccess: c,VEND,SUCCESS.
	KindVendSuccess
	// KindVendFailure: c,ERR,VEND 3, the VMC's Vend Failure (its Vend
	// sub-command 03h).
	KindVendFailure
	// KindError: any other c,ERR,<text>: a command the board refused.
	KindError
	// KindSetOK: c,SET,OK, a C,SETCONF accepted.
	KindSetOK
	// KindPolled: r,ACK, the board ACKed something of the VMC's.
	KindPolled
)

var kindNames = [...]string{"other", "status", "vend-request", "vend-success", "vend-failure", "error", "set-ok", "polled"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Status is the slave's state in a c,STATUS line.
type Status uint8

const (
	StatusUnknown Status = iota
	StatusInactive
	StatusDisabled
	StatusEnabled
	StatusIdle
	StatusVend
)

var statusNames = [...]string{"unknown", "INACTIVE", "DISABLED", "ENABLED", "IDLE", "VEND"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(?)"
}

// Msg is one parsed line. It holds no reference to the input.
type Msg struct {
	Kind   Kind
	Prefix byte    // the line's first letter: 'c', 'r', 'd', ...
	Status Status  // KindStatus and KindVendRequest (StatusVend)
	Price  Decimal // KindVendRequest; for c,STATUS,IDLE,<funds> the funds
	Item   uint16  // KindVendRequest
	Text   string  // KindError and KindOther: the line after its prefix
}

// Decimal is an amount as the board writes it: Units × 10^-Frac currency
// units, "1.50" being {150, 2}. It is kept as written so that the
// conversion to sen, and the check against the configured decimal
// places, are exact.
type Decimal struct {
	Units uint64
	Frac  uint8
}

// maxDigits bounds an amount's digits, so that Units × 100 never
// overflows; no MDB price comes near it (16-bit scaled units).
const (
	maxDigits = 12
	maxFrac   = 4
)

var pow10 = [...]uint64{1, 10, 100, 1000, 10000}

// ParseDecimal reads digits with at most one decimal point ("1", "1.5",
// "1.50"): no sign, no exponent, no spaces, at most 4 decimals.
func ParseDecimal(b []byte) (Decimal, error) {
	var d Decimal
	digits, point := 0, false
	for _, c := range b {
		switch {
		case c == '.' && !point:
			point = true
		case c >= '0' && c <= '9':
			digits++
			if digits > maxDigits || point && d.Frac == maxFrac {
				return Decimal{}, fmt.Errorf("%w: amount %q too long", ErrField, b)
			}
			d.Units = d.Units*10 + uint64(c-'0')
			if point {
				d.Frac++
			}
		default:
			return Decimal{}, fmt.Errorf("%w: amount %q", ErrField, b)
		}
	}
	if digits == 0 || point && d.Frac == 0 {
		return Decimal{}, fmt.Errorf("%w: amount %q", ErrField, b)
	}
	return d, nil
}

// Sen is d in sen, exactly. It fails when d has more decimals than
// decimals (the board and kioskd disagree about the money's scale) or is
// not a whole number of sen.
func (d Decimal) Sen(decimals uint8) (int64, error) {
	if d.Frac > decimals {
		return 0, fmt.Errorf("%w: %d decimals, configured %d", ErrField, d.Frac, decimals)
	}
	num := d.Units * 100
	if num%pow10[d.Frac] != 0 {
		return 0, fmt.Errorf("%w: not a whole number of sen", ErrField)
	}
	return int64(num / pow10[d.Frac]), nil
}

// ParseLine parses one line from the board, without its terminator (a
// trailing CR is dropped). A vend request whose price or item does not
// parse is returned with Kind KindVendRequest and an error wrapping
// ErrField: the board is waiting for an answer to it all the same.
func ParseLine(line []byte) (Msg, error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	switch {
	case len(line) == 0:
		return Msg{}, ErrEmpty
	case len(line) > MaxLine:
		return Msg{}, fmt.Errorf("%w: %d bytes", ErrTooLong, len(line))
	}
	for _, c := range line {
		if c < 0x20 || c > 0x7e {
			return Msg{}, fmt.Errorf("%w: byte %#02x", ErrBadLine, c)
		}
	}
	p := line[0]
	if p < 'a' || p > 'z' || len(line) > 1 && line[1] != ',' {
		return Msg{}, fmt.Errorf("%w: %q", ErrBadLine, clip(line))
	}
	m := Msg{Prefix: p}
	rest := line[min(2, len(line)):]
	switch p {
	case 'r':
		if string(rest) == "ACK" {
			m.Kind = KindPolled
			return m, nil
		}
	case 'c':
		return parseCashless(m, rest)
	}
	m.Text = string(rest)
	return m, nil
}

func parseCashless(m Msg, rest []byte) (Msg, error) {
	head, tail, _ := bytes.Cut(rest, []byte{','})
	switch string(head) {
	case "STATUS":
		return parseStatus(m, tail)
	case "VEND":
		if string(tail) == "SUCCESS" {
			m.Kind = KindVendSuccess
			return m, nil
		}
	case "ERR":
		m.Kind, m.Text = KindError, string(tail)
		if string(bytes.TrimSpace(tail)) == "VEND 3" {
			m.Kind = KindVendFailure
		}
		return m, nil
	case "SET":
		if string(tail) == "OK" {
			m.Kind = KindSetOK
			return m, nil
		}
	}
	m.Text = string(rest)
	return m, nil
}

func parseStatus(m Msg, b []byte) (Msg, error) {
	state, args, hasArgs := bytes.Cut(b, []byte{','})
	m.Kind = KindStatus
	switch string(state) {
	case "INACTIVE":
		m.Status = StatusInactive
	case "DISABLED":
		m.Status = StatusDisabled
	case "ENABLED":
		m.Status = StatusEnabled
	case "IDLE":
		m.Status = StatusIdle
		if hasArgs {
			// The funds a session started with C,START has: only logged.
			d, err := ParseDecimal(args)
			if err != nil {
				return Msg{}, err
			}
			m.Price = d
		}
		return m, nil
	case "VEND":
		m.Kind, m.Status = KindVendRequest, StatusVend
		price, item, ok := bytes.Cut(args, []byte{','})
		if !hasArgs || !ok {
			return m, fmt.Errorf("%w: vend request %q without price and item", ErrField, clip(args))
		}
		d, err := ParseDecimal(price)
		if err != nil {
			return m, err
		}
		n, err := strconv.ParseUint(string(item), 10, 16)
		if err != nil || item[0] == '+' {
			return m, fmt.Errorf("%w: item %q", ErrField, clip(item))
		}
		m.Price, m.Item = d, uint16(n)
		return m, nil
	default:
		m.Kind, m.Text = KindOther, "STATUS,"+string(b)
		return m, nil
	}
	if hasArgs {
		m.Text = string(args)
	}
	return m, nil
}

// clip keeps what an error quotes of a line short.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// The commands kioskd sends, each ended by LF (the board takes CR, LF or
// both).

// AppendEnable appends C,1 (on) or C,0 (off): the cashless slave answers
// the VMC, or is off the bus.
func AppendEnable(dst []byte, on bool) []byte {
	if on {
		return append(dst, "C,1\n"...)
	}
	return append(dst, "C,0\n"...)
}

// AppendSetConf appends C,SETCONF,key=value; the slave must be off.
func AppendSetConf(dst []byte, key, value string) []byte {
	dst = append(dst, "C,SETCONF,"...)
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	return append(dst, '\n')
}

// AppendVend appends C,VEND,<amount>: approve the vend the board is
// waiting on, for amount sen written with decimals decimals. It fails
// when amount is not positive or has no exact form in those decimals.
func AppendVend(dst []byte, amount int64, decimals uint8) ([]byte, error) {
	dst = append(dst, "C,VEND,"...)
	dst, err := AppendAmount(dst, amount, decimals)
	if err != nil {
		return nil, err
	}
	return append(dst, '\n'), nil
}

// AppendStop appends C,STOP: deny the vend the board is waiting on.
func AppendStop(dst []byte) []byte { return append(dst, "C,STOP\n"...) }

// AppendStart appends C,START,<funds>: begin a session with funds sen
// available, for VMCs that do not offer always idle.
func AppendStart(dst []byte, funds int64, decimals uint8) ([]byte, error) {
	dst = append(dst, "C,START,"...)
	dst, err := AppendAmount(dst, funds, decimals)
	if err != nil {
		return nil, err
	}
	return append(dst, '\n'), nil
}

// ErrAmount is the verdict on an amount the board's form cannot carry.
var ErrAmount = errors.New("qibixx: amount not representable")

// AppendAmount appends sen in currency units with exactly decimals
// decimals: 150 sen with 2 is "1.50", with 3 "1.500"; with 0 only whole
// ringgit can be written.
func AppendAmount(dst []byte, sen int64, decimals uint8) ([]byte, error) {
	if sen <= 0 || int(decimals) >= len(pow10) || uint64(sen) > 1e12 {
		return dst, ErrAmount
	}
	u := uint64(sen) * pow10[decimals]
	if u%100 != 0 {
		return dst, ErrAmount
	}
	u /= 100
	whole, frac := u/pow10[decimals], u%pow10[decimals]
	dst = strconv.AppendUint(dst, whole, 10)
	if decimals == 0 {
		return dst, nil
	}
	dst = append(dst, '.')
	var digits [maxFrac]byte
	for i := int(decimals) - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, digits[:decimals]...), nil
}
