// Package vmcsim plays a vending machine controller (VMC) against an MDB
// cashless device, word by word, for tests. It speaks the bus as the
// standard's section 7 describes it: blocks out, replies in, ACK, RET or
// NAK back after a data reply; and it can misbehave on purpose (corrupt a
// checksum, NAK, ask for a retransmission, never answer) so that tests
// can drive a device through the ugly cases. It has no clock and no
// goroutines: each call is one exchange, synchronous.
package vmcsim

import (
	"errors"
	"fmt"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// Peripheral is what the VMC talks to: mdb.Device's Handle.
type Peripheral interface {
	Handle(in []mdb.Word) []mdb.Word
}

// Message is one poll response, split out of a (multi-message) reply.
type Message struct {
	Code byte
	Data []byte // the whole message, Code included
}

func (m Message) String() string { return fmt.Sprintf("%02X % X", m.Code, m.Data[1:]) }

// ErrUnknownMessage is Split's verdict on a code it has no length for.
var ErrUnknownMessage = errors.New("vmcsim: unknown poll response")

// VMC is the simulated controller.
type VMC struct {
	P     Peripheral
	Addr  byte  // the device's address, 10h or 60h
	Level uint8 // the level sent in Setup Config Data
	// ReaderLevel is learnt from Reader Config Data; with Level it sets
	// the lengths of the level-dependent messages.
	ReaderLevel uint8
	// Handshake is the VMC's answer to data replies (ACK by default);
	// NoHandshake sends none, as a VMC that missed the reply would.
	Handshake   byte
	NoHandshake bool
	// Last is the raw reply of the last exchange, before any RET.
	Last []mdb.Word
	out  []mdb.Word
}

// New is a level 3 VMC talking to p at addr.
func New(p Peripheral, addr byte) *VMC {
	return &VMC{P: p, Addr: addr, Level: 3, ReaderLevel: 1}
}

// Raw sends words as they are and returns the device's answer, copied.
func (v *VMC) Raw(words []mdb.Word) []mdb.Word {
	r := v.P.Handle(words)
	return append([]mdb.Word(nil), r...)
}

// Block builds the block for command cmd (0..7) with data.
func (v *VMC) Block(cmd byte, data ...byte) []mdb.Word {
	return mdb.AppendCommand(nil, v.Addr|cmd&7, data)
}

// Send sends command cmd with data, parses the reply and, for a data
// reply, answers with the configured handshake. A malformed reply is an
// error, and a VMC would NAK it; Send does.
func (v *VMC) Send(cmd byte, data ...byte) (mdb.Reply, error) {
	v.out = mdb.AppendCommand(v.out[:0], v.Addr|cmd&7, data)
	v.Last = v.Raw(v.out)
	var r mdb.Reply
	if err := mdb.ParseReply(&r, v.Last); err != nil {
		v.P.Handle([]mdb.Word{mdb.Data(mdb.NAK)})
		return r, err
	}
	if r.Kind == mdb.ReplyData && !v.NoHandshake {
		v.P.Handle([]mdb.Word{mdb.Data(v.Handshake)})
	}
	if r.Kind == mdb.ReplyData && r.Data()[0] == 0x01 && len(r.Data()) >= 2 {
		v.ReaderLevel = r.Data()[1]
	}
	return r, nil
}

// Answer sends the VMC's handshake b by itself and returns what the
// device says (its reply again for RET, nothing otherwise).
func (v *VMC) Answer(b byte) []mdb.Word {
	return v.Raw([]mdb.Word{mdb.Data(b)})
}

// Poll polls and splits the reply; an ACK is no messages.
func (v *VMC) Poll() ([]Message, error) {
	r, err := v.Send(2)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case mdb.ReplyACK:
		return nil, nil
	case mdb.ReplyData:
		return v.Split(r.Data())
	}
	return nil, fmt.Errorf("vmcsim: poll answered %v", r.Kind)
}

func (v *VMC) level() uint8 { return min(v.Level, v.ReaderLevel) }

// Split cuts a reply's data into its messages by their fixed lengths.
func (v *VMC) Split(data []byte) ([]Message, error) {
	var ms []Message
	for len(data) > 0 {
		n := v.length(data[0])
		if n == 0 || n > len(data) {
			return ms, fmt.Errorf("%w %02Xh in % X", ErrUnknownMessage, data[0], data)
		}
		ms = append(ms, Message{Code: data[0], Data: append([]byte(nil), data[:n]...)})
		data = data[n:]
	}
	return ms, nil
}

func (v *VMC) length(code byte) int {
	lv := v.level()
	switch code {
	case 0x00, 0x04, 0x06, 0x07, 0x08, 0x0D, 0x0E, 0x11:
		return 1
	case 0x01:
		return 8
	case 0x03:
		if lv >= 2 {
			return 10
		}
		return 3
	case 0x05, 0x0F:
		return 3
	case 0x09:
		if lv >= 3 {
			return 34
		}
		return 30
	case 0x0A:
		return 2
	case 0x0B:
		if lv >= 2 {
			return 2
		}
		return 1
	}
	return 0
}

// Init runs the initialising sequence of a VMC at v.Level after a reset:
// Reset, Poll (Just Reset), Setup Config Data, Setup Max/Min Prices,
// Expansion Request ID, at level 3 Expansion Enable Options with
// options, and Reader Enable. It returns the Peripheral ID message.
func (v *VMC) Init(options uint32) (Message, error) {
	var id Message
	if r, err := v.Send(0); err != nil || r.Kind != mdb.ReplyACK {
		return id, fmt.Errorf("vmcsim: reset answered %v, %v", r.Kind, err)
	}
	ms, err := v.Poll()
	if err != nil || len(ms) == 0 || ms[0].Code != 0x00 {
		return id, fmt.Errorf("vmcsim: no Just Reset: %v %v", ms, err)
	}
	r, err := v.Send(1, 0x00, v.Level, 0, 0, 0)
	if err != nil || r.Kind != mdb.ReplyData || r.Data()[0] != 0x01 {
		return id, fmt.Errorf("vmcsim: setup answered %v % X, %v", r.Kind, r.Data(), err)
	}
	if r, err := v.Send(1, 0x01, 0xFF, 0xFF, 0x00, 0x00); err != nil || r.Kind != mdb.ReplyACK {
		return id, fmt.Errorf("vmcsim: max/min answered %v, %v", r.Kind, err)
	}
	vmcID := append([]byte{0x00}, []byte("SIMVMC000000000001VMCSIM      ")[:29]...)
	r, err = v.Send(7, vmcID...)
	if err != nil || r.Kind != mdb.ReplyData {
		return id, fmt.Errorf("vmcsim: request ID answered %v, %v", r.Kind, err)
	}
	ids, err := v.Split(r.Data())
	if err != nil || len(ids) != 1 || ids[0].Code != 0x09 {
		return id, fmt.Errorf("vmcsim: no Peripheral ID: %v %v", ids, err)
	}
	id = ids[0]
	if v.level() >= 3 {
		o := options
		if r, err := v.Send(7, 0x04, byte(o>>24), byte(o>>16), byte(o>>8), byte(o)); err != nil || r.Kind != mdb.ReplyACK {
			return id, fmt.Errorf("vmcsim: enable options answered %v, %v", r.Kind, err)
		}
	}
	if r, err := v.Send(4, 0x01); err != nil || r.Kind != mdb.ReplyACK {
		return id, fmt.Errorf("vmcsim: reader enable answered %v, %v", r.Kind, err)
	}
	return id, nil
}

// The commands a test uses most, by name.

func (v *VMC) VendRequest(price, item uint16) (mdb.Reply, error) {
	return v.Send(3, 0x00, byte(price>>8), byte(price), byte(item>>8), byte(item))
}
func (v *VMC) VendCancel() (mdb.Reply, error) { return v.Send(3, 0x01) }
func (v *VMC) VendSuccess(item uint16) (mdb.Reply, error) {
	return v.Send(3, 0x02, byte(item>>8), byte(item))
}
func (v *VMC) VendFailure() (mdb.Reply, error)     { return v.Send(3, 0x03) }
func (v *VMC) SessionComplete() (mdb.Reply, error) { return v.Send(3, 0x04) }
func (v *VMC) CashSale(price, item uint16) (mdb.Reply, error) {
	return v.Send(3, 0x05, byte(price>>8), byte(price), byte(item>>8), byte(item))
}
func (v *VMC) ReaderDisable() (mdb.Reply, error) { return v.Send(4, 0x00) }
func (v *VMC) ReaderEnable() (mdb.Reply, error)  { return v.Send(4, 0x01) }
func (v *VMC) ReaderCancel() (mdb.Reply, error)  { return v.Send(4, 0x02) }
func (v *VMC) Reset() (mdb.Reply, error)         { return v.Send(0) }
