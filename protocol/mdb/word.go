package mdb

import "errors"

// Word is one MDB character: eight data bits and the ninth, the mode bit.
// The mode bit is bit 8 of the Word; bits above it are never set in a Word
// this package makes, and a Word with any of them set is refused by the
// parsers (ErrBadWord) rather than truncated, because a transport that
// hands over such a value has a bug that must not look like valid data.
type Word uint16

// ModeBit is the ninth bit. From the VMC it marks the address byte that
// opens a block; from a peripheral it marks the last byte of a reply.
const ModeBit Word = 0x100

// Mode reports whether w carries the mode bit.
func (w Word) Mode() bool { return w&ModeBit != 0 }

// Byte is w's data byte.
func (w Word) Byte() byte { return byte(w) }

// Data makes a Word without the mode bit.
func Data(b byte) Word { return Word(b) }

// Mark makes a Word with the mode bit.
func Mark(b byte) Word { return Word(b) | ModeBit }

// The handshake bytes. The peripheral sends ACK and NAK alone, with the
// mode bit; the VMC sends ACK, RET and NAK alone, without it, after a
// peripheral's data reply.
const (
	ACK byte = 0x00
	RET byte = 0xAA
	NAK byte = 0xFF
)

// MaxBlock is the most bytes a block may hold in either direction, the
// checksum included.
const MaxBlock = 36

// MaxReplyData is the most data bytes one peripheral reply can carry: the
// block limit less the checksum.
const MaxReplyData = MaxBlock - 1

// The parsers' verdicts. They are the package's sentinels; parsers return
// them as they are (no wrapping on the hot path, where an error value made
// per block would allocate), so compare with errors.Is.
var (
	ErrEmpty        = errors.New("mdb: empty block")
	ErrTooLong      = errors.New("mdb: block longer than 36 bytes")
	ErrShort        = errors.New("mdb: block without a checksum")
	ErrChecksum     = errors.New("mdb: checksum mismatch")
	ErrBadWord      = errors.New("mdb: word wider than 9 bits")
	ErrFraming      = errors.New("mdb: mode bit out of place")
	ErrNotAddressed = errors.New("mdb: block for another peripheral")
)

// Checksum is the block checksum of b: the sum of its bytes, carries
// dropped.
func Checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// AppendCommand appends the VMC block that sends addrCmd (the peripheral's
// address with the command in its low three bits) and data, with its
// checksum. It is what a VMC, or a test playing one, puts on the bus; it
// does not check the length, so a test can make an over-long block.
func AppendCommand(dst []Word, addrCmd byte, data []byte) []Word {
	sum := addrCmd
	dst = append(dst, Mark(addrCmd))
	for _, b := range data {
		dst = append(dst, Data(b))
		sum += b
	}
	return append(dst, Data(sum))
}

// AppendReply appends a peripheral's data reply: the data bytes, then the
// checksum with the mode bit. An empty data is not a reply (a peripheral
// with nothing to say answers ACK); AppendReply then appends a bare ACK,
// which is what the bus would carry. Callers keep data within
// MaxReplyData; the device never builds a longer one.
func AppendReply(dst []Word, data []byte) []Word {
	if len(data) == 0 {
		return AppendACK(dst)
	}
	for _, b := range data {
		dst = append(dst, Data(b))
	}
	return append(dst, Mark(Checksum(data)))
}

// AppendACK appends a peripheral's bare ACK.
func AppendACK(dst []Word) []Word { return append(dst, Mark(ACK)) }

// AppendNAK appends a peripheral's bare NAK.
func AppendNAK(dst []Word) []Word { return append(dst, Mark(NAK)) }

// AppendHandshake appends the VMC's answer to a data reply: ACK, RET or
// NAK, one word without the mode bit.
func AppendHandshake(dst []Word, b byte) []Word { return append(dst, Data(b)) }

// Command is a parsed VMC block. It holds its bytes in place, so parsing
// into a Command the caller owns allocates nothing.
type Command struct {
	// AddrCmd is the first byte as sent: address in the upper five
	// bits, command in the lower three.
	AddrCmd byte
	n       uint8
	data    [MaxBlock - 2]byte
}

// Address is the peripheral address the block is for (the upper five
// bits, e.g. 10h).
func (c *Command) Address() byte { return c.AddrCmd &^ 0x07 }

// Code is the command number in the low three bits (0 Reset ... 7
// Expansion for a cashless device).
func (c *Command) Code() byte { return c.AddrCmd & 0x07 }

// Data is the block's data bytes, between the address byte and the
// checksum. It aliases c.
func (c *Command) Data() []byte { return c.data[:c.n] }

// ParseCommand parses one VMC block into c. It never panics: any sequence
// of words gets either nil or one of the sentinels above. The checksum is
// checked before anything else is believed, since a block that fails it
// could have any address.
func ParseCommand(c *Command, words []Word) error {
	switch {
	case len(words) == 0:
		return ErrEmpty
	case len(words) > MaxBlock:
		return ErrTooLong
	}
	for i, w := range words {
		if w > 0x1FF {
			return ErrBadWord
		}
		// Only the first word may carry the mode bit: another marked
		// word is the start of a new block, so the transport framed
		// the bus wrongly.
		if w.Mode() != (i == 0) {
			return ErrFraming
		}
	}
	if len(words) < 2 {
		return ErrShort
	}
	var sum byte
	for _, w := range words[:len(words)-1] {
		sum += w.Byte()
	}
	if sum != words[len(words)-1].Byte() {
		return ErrChecksum
	}
	c.AddrCmd = words[0].Byte()
	c.n = uint8(len(words) - 2)
	for i, w := range words[1 : len(words)-1] {
		c.data[i] = w.Byte()
	}
	return nil
}

// ReplyKind says what a peripheral sent.
type ReplyKind uint8

const (
	ReplyNone ReplyKind = iota // silence
	ReplyACK
	ReplyNAK
	ReplyData
)

func (k ReplyKind) String() string {
	switch k {
	case ReplyNone:
		return "silence"
	case ReplyACK:
		return "ACK"
	case ReplyNAK:
		return "NAK"
	case ReplyData:
		return "data"
	}
	return "ReplyKind(?)"
}

// Reply is a parsed peripheral reply, holding its data in place.
type Reply struct {
	Kind ReplyKind
	n    uint8
	data [MaxReplyData]byte
}

// Data is the reply's data bytes without the checksum (empty unless Kind
// is ReplyData). It aliases r.
func (r *Reply) Data() []byte { return r.data[:r.n] }

// ParseReply parses what a peripheral sent, as a VMC reads it. No words
// is silence (Kind ReplyNone, nil error). One marked word is a bare ACK or
// NAK; any other single marked byte is taken as a one-byte block whose
// data is empty, which cannot be, so it is ErrShort. Longer replies must
// have the mode bit on the last word only and a matching checksum.
func ParseReply(r *Reply, words []Word) error {
	*r = Reply{}
	switch {
	case len(words) == 0:
		return nil
	case len(words) > MaxBlock:
		return ErrTooLong
	}
	last := len(words) - 1
	for i, w := range words {
		if w > 0x1FF {
			return ErrBadWord
		}
		if w.Mode() != (i == last) {
			return ErrFraming
		}
	}
	if last == 0 {
		switch words[0].Byte() {
		case ACK:
			r.Kind = ReplyACK
			return nil
		case NAK:
			r.Kind = ReplyNAK
			return nil
		}
		return ErrShort
	}
	var sum byte
	for _, w := range words[:last] {
		sum += w.Byte()
	}
	if sum != words[last].Byte() {
		return ErrChecksum
	}
	r.Kind = ReplyData
	r.n = uint8(last)
	for i, w := range words[:last] {
		r.data[i] = w.Byte()
	}
	return nil
}
