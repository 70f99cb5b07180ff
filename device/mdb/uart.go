package mdb

import "github.com/kioskd/kioskd/protocol/mdb"

// Transport A: a plain UART carries the mode bit in its parity bit.
//
// Linux's CMSPAR makes parity "stick": with PARENB|CMSPAR the parity bit
// is 1 (mark) when PARODD is set and 0 (space) when it is not. Sending,
// the UART sets PARODD for the words with the mode bit and clears it for
// the others, changing the termios between runs of equal mode bits with
// TCSETSW, which first waits until the bytes already written have left
// the shift register: a parity change must not catch the byte before it.
// Receiving, the line stays at space parity with INPCK|PARMRK, so a byte
// whose ninth bit is 1 fails its parity check and the kernel hands it
// over as FFh 00h b; a data byte FFh that arrived intact comes as FFh FFh
// (PARMRK doubles it, since ISTRIP is off). parmrk undoes that.
//
// A framing error or a break is also marked FFh 00h b (b = 00h for a
// break), so it reads as a word with the mode bit: from the VMC that is a
// block's address byte, and a block that follows it fails its checksum
// and gets silence, as a reception error must.

// parmrk decodes the byte stream of a tty read with INPCK|PARMRK into
// words. Its state carries over between reads.
type parmrk struct {
	state uint8 // 0 plain, 1 after FFh, 2 after FFh 00h
}

// feed takes one byte and returns a word when one is complete.
func (p *parmrk) feed(b byte) (mdb.Word, bool) {
	switch p.state {
	case 1:
		switch b {
		case 0xFF: // an escaped data byte FFh
			p.state = 0
			return mdb.Data(0xFF), true
		case 0x00:
			p.state = 2
			return 0, false
		}
		// Cannot happen with PARMRK: FFh is always followed by FFh or
		// 00h. Take both bytes as data rather than lose one.
		p.state = 0
		return mdb.Data(b), true
	case 2:
		p.state = 0
		return mdb.Mark(b), true
	}
	if b == 0xFF {
		p.state = 1
		return 0, false
	}
	return mdb.Data(b), true
}

// run returns the end of the run of words from i that share words[i]'s
// mode bit: the bytes that go out with one parity setting.
func run(words []mdb.Word, i int) (end int, mark bool) {
	mark = words[i].Mode()
	end = i + 1
	for end < len(words) && words[end].Mode() == mark {
		end++
	}
	return end, mark
}

// isMiniUART says whether a tty's resolved name is the Raspberry Pi's
// mini UART (the 8250 driver's ttyS0 on a Pi), which has no parity.
func isMiniUART(resolved string) bool {
	base := resolved
	for i := len(base) - 1; i >= 0; i-- {
		if base[i] == '/' {
			base = base[i+1:]
			break
		}
	}
	return base == "ttyS0"
}
