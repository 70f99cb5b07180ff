package mdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
	"golang.org/x/sys/unix"
)

// UART is transport A: the Pi's PL011 (ttyAMA0) at 9600 8N1 with the
// ninth bit in mark/space parity (see uart.go). It is tested on hardware
// only: a pty takes the parity flags but neither sends nor checks a
// parity bit, so the tests cover the encoding helpers, the refusal of the
// mini UART and the termios set-up on a pty.
type UART struct {
	f    *os.File
	name string

	dec  parmrk
	buf  [256]byte
	r, w int
	out  [mdb.MaxBlock * 2]byte

	t     unix.Termios
	mark  bool // the parity currently set
	ioErr error
	setW  func(fd uintptr) // TCSETSW of t, made once: Control's argument
	first time.Time
}

// OpenUART opens a UART for MDB. It refuses the mini UART (by name, after
// resolving links such as /dev/serial0), whose missing parity cannot
// carry the mode bit. A device that does not exist gives an error
// matching os.ErrNotExist.
func OpenUART(path string) (*UART, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("mdb: uart %s: %w", path, err)
	}
	if isMiniUART(resolved) {
		return nil, fmt.Errorf("mdb: uart %s (%s): %w", path, resolved, ErrMiniUART)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("mdb: uart %s: %w", path, err)
	}
	u := &UART{f: f, name: path}
	u.setW = func(fd uintptr) { u.ioErr = unix.IoctlSetTermios(int(fd), unix.TCSETSW, &u.t) }
	err = rawTTY(f, func(t *unix.Termios) {
		t.Cflag &^= unix.CBAUD | unix.PARODD | unix.CSTOPB
		t.Cflag |= unix.B9600 | unix.PARENB | unix.CMSPAR
		t.Ispeed, t.Ospeed = 9600, 9600
		t.Iflag &^= unix.IGNPAR | unix.ISTRIP
		t.Iflag |= unix.INPCK | unix.PARMRK
		u.t = *t
	})
	if err == nil {
		err = f.SetReadDeadline(noDeadline)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mdb: uart %s: %w", path, err)
	}
	return u, nil
}

// ReadWord implements Transport.
func (u *UART) ReadWord(deadline time.Time) (mdb.Word, error) {
	for {
		for u.r < u.w {
			b := u.buf[u.r]
			u.r++
			if w, ok := u.dec.feed(b); ok {
				return w, nil
			}
		}
		u.r, u.w = 0, 0
		if err := u.f.SetReadDeadline(deadline); err != nil {
			return 0, u.fail(err)
		}
		n, err := u.f.Read(u.buf[:])
		u.w = n
		if n > 0 {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, ErrTimeout
		}
		if err != nil {
			return 0, u.fail(err)
		}
	}
}

func (u *UART) fail(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("mdb: uart %s: %w", u.name, err)
}

// setParity switches the parity for the next bytes, after the bytes
// written so far have drained.
func (u *UART) setParity(mark bool) error {
	if mark == u.mark {
		return nil
	}
	if mark {
		u.t.Cflag |= unix.PARODD
	} else {
		u.t.Cflag &^= unix.PARODD
	}
	rc, err := u.f.SyscallConn()
	if err != nil {
		return u.fail(err)
	}
	if err := rc.Control(u.setW); err != nil {
		return u.fail(err)
	}
	if u.ioErr != nil {
		return u.fail(u.ioErr)
	}
	u.mark = mark
	return nil
}

// WriteWords implements Transport: each run of equal mode bits goes out
// under its parity; afterwards the line is back at space parity, ready
// for the VMC's next byte. It returns when the last byte has left.
func (u *UART) WriteWords(words []mdb.Word) error {
	for i := 0; i < len(words); {
		end, mark := run(words, i)
		if err := u.setParity(mark); err != nil {
			return err
		}
		n := 0
		for _, w := range words[i:end] {
			if n < len(u.out) {
				u.out[n] = w.Byte()
				n++
			}
		}
		if _, err := u.f.Write(u.out[:n]); err != nil {
			return u.fail(err)
		}
		if i == 0 {
			u.first = time.Now()
		}
		i = end
	}
	return u.setParity(false)
}

// FirstWritten is when the reply's first byte was handed to the kernel,
// which starts sending it at once: the end of the 5 ms window. The rest
// of WriteWords waits for bytes to drain before each parity change.
func (u *UART) FirstWritten() time.Time { return u.first }

// Close implements Transport.
func (u *UART) Close() error { return u.f.Close() }
