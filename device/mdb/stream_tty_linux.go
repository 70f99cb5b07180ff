package mdb

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openTTY opens a tty for the stream transport: non-blocking underneath,
// so that the runtime poller gives its reads deadlines (device/serial's
// tarm ports count read timeouts in tenths of a second, far too coarse
// for a 2.5 ms gap), and raw, so that no byte is echoed, translated or
// taken as a signal. The line speed is left as it is: a pty has none,
// and a serial line carrying the stream is set up with stty.
func openTTY(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := rawTTY(f, nil); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.SetReadDeadline(noDeadline); err != nil {
		f.Close()
		return nil, fmt.Errorf("not pollable, reads could not have deadlines: %w", err)
	}
	return f, nil
}

// rawTTY makes f's line raw (cfmakeraw(3), receiver on, modem lines
// ignored), then lets adjust change the termios before it is set.
func rawTTY(f *os.File, adjust func(*unix.Termios)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ioErr = fmt.Errorf("get termios: %w", err)
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.INPCK
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		if adjust != nil {
			adjust(t)
		}
		if err := unix.IoctlSetTermios(int(fd), unix.TCSETS, t); err != nil {
			ioErr = fmt.Errorf("set termios: %w", err)
		}
	})
	if err != nil {
		return err
	}
	return ioErr
}
