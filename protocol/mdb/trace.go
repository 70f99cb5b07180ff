package mdb

import (
	"errors"
	"strconv"
)

// Tracer names what goes over the bus, one exchange at a time, for a
// technician's trace: "VEND REQUEST price=150 item=12 -> ACK",
// "POLL -> VEND APPROVED 150". Prices and funds are the wire's scaled
// units, as the VMC sent them. Several poll responses in one reply are
// split by their lengths, some of which depend on the feature level: the
// Tracer learns the VMC's level from Setup Config Data and the reader's
// from Reader Config Data, and uses level 1 until it has seen them (as
// the device does). It is total: any words give a line, never a panic.
// The zero value is ready; a Tracer is not safe for concurrent use.
type Tracer struct {
	vmcLevel, readerLevel uint8
	cmd                   Command
	rep                   Reply
}

// Describe is a fresh Tracer's line for one exchange.
func Describe(unit, reply []Word) string {
	var t Tracer
	return string(t.Append(nil, unit, reply))
}

// Append appends the line for one exchange: the unit the VMC sent and
// the device's reply (nil for silence).
func (t *Tracer) Append(dst []byte, unit, reply []Word) []byte {
	dst = t.appendUnit(dst, unit)
	dst = append(dst, " -> "...)
	return t.appendReply(dst, reply)
}

func (t *Tracer) level() uint8 {
	return max(1, min(t.vmcLevel, t.readerLevel))
}

func appendWords(dst []byte, ws []Word) []byte {
	dst = append(dst, '[')
	for i, w := range ws {
		if i > 0 {
			dst = append(dst, ' ')
		}
		if i == 16 && len(ws) > 18 {
			return append(dst, "...]"...)
		}
		dst = appendHex(dst, uint64(w), 3)
	}
	return append(dst, ']')
}

func appendHex(dst []byte, v uint64, digits int) []byte {
	const hex = "0123456789ABCDEF"
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hex[(v>>(4*i))&0xF])
	}
	return dst
}

func appendKV(dst []byte, key string, v uint64) []byte {
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, '=')
	return strconv.AppendUint(dst, v, 10)
}

func be16(b []byte) uint64 { return uint64(b[0])<<8 | uint64(b[1]) }

func (t *Tracer) appendUnit(dst []byte, unit []Word) []byte {
	if len(unit) == 0 {
		return append(dst, "(nothing)"...)
	}
	if len(unit) == 1 && unit[0] <= 0xFF {
		switch unit[0].Byte() {
		case ACK:
			return append(dst, "ACK"...)
		case RET:
			return append(dst, "RET"...)
		case NAK:
			return append(dst, "NAK"...)
		}
		dst = append(dst, "BYTE "...)
		return appendHex(dst, uint64(unit[0]), 2)
	}
	c := &t.cmd
	if err := ParseCommand(c, unit); err != nil {
		switch {
		case errors.Is(err, ErrChecksum):
			dst = append(dst, "CHK ERROR "...)
		case errors.Is(err, ErrTooLong):
			dst = append(dst, "TOO LONG "...)
		default:
			dst = append(dst, "BAD BLOCK "...)
		}
		return appendWords(dst, unit)
	}
	data := c.Data()
	addr := c.Address()
	if addr != AddrCashless1 && addr != AddrCashless2 {
		dst = append(dst, "PERIPHERAL "...)
		dst = appendHex(dst, uint64(addr), 2)
		dst = append(dst, "h CMD "...)
		dst = strconv.AppendUint(dst, uint64(c.Code()), 10)
		if len(data) > 0 {
			dst = append(dst, ' ')
			dst = appendWords(dst, unit[1:len(unit)-1])
		}
		return dst
	}
	if addr == AddrCashless2 {
		dst = append(dst, "@60h "...)
	}
	var sub byte = 0xFF
	if len(data) > 0 {
		sub = data[0]
	}
	short := false
	need := func(n int) bool {
		if len(data) < n {
			short = true
			return false
		}
		return true
	}
	switch c.Code() {
	case cmdReset:
		dst = append(dst, "RESET"...)
	case cmdPoll:
		dst = append(dst, "POLL"...)
	case cmdSetup:
		switch sub {
		case 0:
			dst = append(dst, "SETUP CONFIG"...)
			if need(5) {
				t.vmcLevel = data[1]
				dst = appendKV(dst, "level", uint64(data[1]))
				dst = appendKV(dst, "cols", uint64(data[2]))
				dst = appendKV(dst, "rows", uint64(data[3]))
				dst = appendKV(dst, "display", uint64(data[4]))
			}
		case 1:
			dst = append(dst, "SETUP MAX/MIN"...)
			if need(5) {
				dst = appendKV(dst, "max", be16(data[1:]))
				dst = appendKV(dst, "min", be16(data[3:]))
			}
		default:
			dst = append(dst, "SETUP sub="...)
			dst = appendHex(dst, uint64(sub), 2)
		}
	case cmdVend:
		switch sub {
		case 0, 5:
			if sub == 0 {
				dst = append(dst, "VEND REQUEST"...)
			} else {
				dst = append(dst, "CASH SALE"...)
			}
			if need(5) {
				dst = appendKV(dst, "price", be16(data[1:]))
				dst = appendKV(dst, "item", be16(data[3:]))
			}
		case 1:
			dst = append(dst, "VEND CANCEL"...)
		case 2:
			dst = append(dst, "VEND SUCCESS"...)
			if need(3) {
				dst = appendKV(dst, "item", be16(data[1:]))
			}
		case 3:
			dst = append(dst, "VEND FAILURE"...)
		case 4:
			dst = append(dst, "SESSION COMPLETE"...)
		case 6:
			dst = append(dst, "NEGATIVE VEND"...)
		default:
			dst = append(dst, "VEND sub="...)
			dst = appendHex(dst, uint64(sub), 2)
		}
	case cmdReader:
		switch sub {
		case 0:
			dst = append(dst, "READER DISABLE"...)
		case 1:
			dst = append(dst, "READER ENABLE"...)
		case 2:
			dst = append(dst, "READER CANCEL"...)
		case 3:
			dst = append(dst, "DATA ENTRY RESPONSE"...)
		default:
			dst = append(dst, "READER sub="...)
			dst = appendHex(dst, uint64(sub), 2)
		}
	case cmdRevalue:
		switch sub {
		case 0:
			dst = append(dst, "REVALUE REQUEST"...)
			if need(3) {
				dst = appendKV(dst, "amount", be16(data[1:]))
			}
		case 1:
			dst = append(dst, "REVALUE LIMIT REQUEST"...)
		default:
			dst = append(dst, "REVALUE sub="...)
			dst = appendHex(dst, uint64(sub), 2)
		}
	case cmdExpansion:
		switch sub {
		case 0:
			dst = append(dst, "EXPANSION REQUEST ID"...)
			if need(4) {
				dst = append(dst, " mfr="...)
				dst = appendText(dst, data[1:4])
			}
		case 1:
			dst = append(dst, "EXPANSION READ USER FILE"...)
		case 2:
			dst = append(dst, "EXPANSION WRITE USER FILE"...)
		case 3:
			dst = append(dst, "EXPANSION WRITE TIME/DATE"...)
		case 4:
			dst = append(dst, "EXPANSION ENABLE OPTIONS"...)
			if need(5) {
				dst = append(dst, " options="...)
				dst = appendHex(dst, uint64(data[1])<<24|uint64(data[2])<<16|uint64(data[3])<<8|uint64(data[4]), 8)
			}
		case 0xFF:
			dst = append(dst, "EXPANSION DIAGNOSTICS"...)
		default:
			dst = append(dst, "EXPANSION sub="...)
			dst = appendHex(dst, uint64(sub), 2)
		}
	default:
		dst = append(dst, "CMD "...)
		dst = strconv.AppendUint(dst, uint64(c.Code()), 10)
	}
	if short {
		dst = append(dst, " (short)"...)
	}
	return dst
}

// appendText appends printable ASCII, others as '.', quoted.
func appendText(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		if c < 0x20 || c > 0x7E || c == '"' {
			c = '.'
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// msgLen is a poll response's length at the level both sides use; 0 for a
// code with no fixed length.
func (t *Tracer) msgLen(code byte) int {
	lv := t.level()
	switch code {
	case rspJustReset, rspSessionCancel, rspVendDenied, rspEndSession, rspCancelled, 0x0D, rspRevalueDenied, 0x11:
		return 1
	case rspConfig:
		return 8
	case rspBeginSession:
		if lv >= 2 {
			return 10
		}
		return 3
	case rspVendApproved, rspRevalueLimit:
		return 3
	case rspPeripheralID:
		if lv >= 3 {
			return 34
		}
		return 30
	case rspMalfunction:
		return 2
	case rspOutOfSequence:
		if lv >= 2 {
			return 2
		}
		return 1
	}
	return 0
}

func (t *Tracer) appendReply(dst []byte, reply []Word) []byte {
	if len(reply) == 0 {
		return append(dst, "silence"...)
	}
	r := &t.rep
	if err := ParseReply(r, reply); err != nil {
		if errors.Is(err, ErrChecksum) {
			dst = append(dst, "CHK ERROR "...)
		} else {
			dst = append(dst, "BAD REPLY "...)
		}
		return appendWords(dst, reply)
	}
	switch r.Kind {
	case ReplyACK:
		return append(dst, "ACK"...)
	case ReplyNAK:
		return append(dst, "NAK"...)
	}
	data := r.Data()
	for i := 0; len(data) > 0; i++ {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		n := t.msgLen(data[0])
		if n == 0 || n > len(data) {
			dst = append(dst, "DATA "...)
			return appendWords(dst, reply[len(reply)-1-len(data):len(reply)-1])
		}
		dst = t.appendMsg(dst, data[:n])
		data = data[n:]
	}
	return dst
}

func (t *Tracer) appendMsg(dst []byte, m []byte) []byte {
	switch m[0] {
	case rspJustReset:
		return append(dst, "JUST RESET"...)
	case rspConfig:
		t.readerLevel = m[1]
		dst = append(dst, "READER CONFIG"...)
		dst = appendKV(dst, "level", uint64(m[1]))
		dst = append(dst, " currency="...)
		dst = appendHex(dst, be16(m[2:]), 4)
		dst = appendKV(dst, "scale", uint64(m[4]))
		dst = appendKV(dst, "decimals", uint64(m[5]))
		dst = appendKV(dst, "max_response_s", uint64(m[6]))
		dst = append(dst, " options="...)
		return appendHex(dst, uint64(m[7]), 2)
	case rspBeginSession:
		dst = append(dst, "BEGIN SESSION"...)
		return appendKV(dst, "funds", be16(m[1:]))
	case rspSessionCancel:
		return append(dst, "SESSION CANCEL"...)
	case rspVendApproved:
		dst = append(dst, "VEND APPROVED "...)
		return strconv.AppendUint(dst, be16(m[1:]), 10)
	case rspVendDenied:
		return append(dst, "VEND DENIED"...)
	case rspEndSession:
		return append(dst, "END SESSION"...)
	case rspCancelled:
		return append(dst, "CANCELLED"...)
	case rspPeripheralID:
		dst = append(dst, "PERIPHERAL ID mfr="...)
		dst = appendText(dst, m[1:4])
		dst = append(dst, " serial="...)
		dst = appendText(dst, m[4:16])
		dst = append(dst, " model="...)
		dst = appendText(dst, m[16:28])
		dst = append(dst, " sw="...)
		dst = appendHex(dst, be16(m[28:]), 4)
		if len(m) == 34 {
			dst = append(dst, " options="...)
			dst = appendHex(dst, uint64(m[30])<<24|uint64(m[31])<<16|uint64(m[32])<<8|uint64(m[33]), 8)
		}
		return dst
	case rspMalfunction:
		dst = append(dst, "MALFUNCTION code="...)
		return appendHex(dst, uint64(m[1]), 2)
	case rspOutOfSequence:
		dst = append(dst, "OUT OF SEQUENCE"...)
		if len(m) == 2 {
			dst = appendKV(dst, "state", uint64(m[1]))
		}
		return dst
	case 0x0D:
		return append(dst, "REVALUE APPROVED"...)
	case rspRevalueDenied:
		return append(dst, "REVALUE DENIED"...)
	case rspRevalueLimit:
		dst = append(dst, "REVALUE LIMIT"...)
		return appendKV(dst, "amount", be16(m[1:]))
	case 0x11:
		return append(dst, "TIME/DATE REQUEST"...)
	}
	return dst
}
