package mdbtest

import (
	"errors"
	"net"
	"os"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// StreamConn is the VMC's end of a stream transport: a TCP connection the
// device dialled, or a pty master.
type StreamConn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	SetReadDeadline(time.Time) error
}

// StreamVMC plays the VMC's side of the stream format over c, as a
// vmcsim Peripheral: Handle writes a unit and reads the reply.
type StreamVMC struct {
	C StreamConn
	// Silence is how long Handle waits for a reply before it takes the
	// device's silence as the answer (default 2 s: tests expecting a
	// reply never wait that long, tests expecting silence do once).
	Silence time.Duration
	// Err is the last read or write error other than silence.
	Err error

	wbuf  []byte
	rbuf  [512]byte
	r, w  int
	reply []mdb.Word
}

// Handle writes in and returns the reply, up to its word with the mode
// bit. The VMC's handshakes ACK and NAK get no reply and Handle does not
// wait for one; RET gets the reply again.
func (v *StreamVMC) Handle(in []mdb.Word) []mdb.Word {
	v.wbuf = devmdb.AppendStream(v.wbuf[:0], in...)
	if _, err := v.C.Write(v.wbuf); err != nil {
		v.Err = err
		return nil
	}
	if len(in) == 1 && !in[0].Mode() && in[0].Byte() != mdb.RET {
		return nil
	}
	silence := v.Silence
	if silence <= 0 {
		silence = 2 * time.Second
	}
	v.reply = v.reply[:0]
	deadline := time.Now().Add(silence)
	for {
		for v.w-v.r >= 2 {
			w := mdb.Word(v.rbuf[v.r+1])
			if v.rbuf[v.r] == 1 {
				w |= mdb.ModeBit
			}
			v.r += 2
			v.reply = append(v.reply, w)
			if w.Mode() {
				return v.reply
			}
		}
		v.w = copy(v.rbuf[:], v.rbuf[v.r:v.w])
		v.r = 0
		v.C.SetReadDeadline(deadline)
		n, err := v.C.Read(v.rbuf[v.w:])
		v.w += n
		if n > 0 {
			continue
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				v.Err = err
			}
			if len(v.reply) == 0 {
				return nil
			}
			return v.reply
		}
	}
}

// Listener is the VMC's end of a TCP stream transport: it listens on
// loopback and hands over each connection the device makes.
type Listener struct {
	L     net.Listener
	Conns chan net.Conn
}

// Listen listens on 127.0.0.1 on a free port; Device is the address to
// give the device's stream transport. Close the listener when done.
func Listen() (*Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln := &Listener{L: l, Conns: make(chan net.Conn, 4)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ln.Conns)
				return
			}
			ln.Conns <- c
		}
	}()
	return ln, nil
}

// Device is the stream transport address of the listener.
func (l *Listener) Device() string { return "tcp://" + l.L.Addr().String() }

// Close stops listening.
func (l *Listener) Close() error { return l.L.Close() }
