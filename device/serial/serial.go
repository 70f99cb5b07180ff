// Package serial opens serial ports (KPOS cable, receipt printer) through
// github.com/tarm/serial, kept behind the Port interface so the driver can
// be swapped.
//
// tarm builds without cgo on Linux and Windows only; its other ports use
// cgo's termios, and the firmware is built with CGO_ENABLED=0. Elsewhere
// Open and OpenPTY return errors matching errors.ErrUnsupported, so the
// package (and everything that imports it) still compiles for every GOOS.
//
// Ports are always opened 8N1, without modem lines or flow control, and
// always with a read timeout: tarm reads a blocking descriptor, so a Read
// with nothing to return would otherwise block forever and Close waits for
// it.
package serial

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Port is an open serial port.
//
// Read returns within the port's read timeout: with data, with an error
// matching os.ErrDeadlineExceeded when none arrived (call Read again), with
// io.EOF when the device has gone away (an unplugged USB adapter), or with
// an error matching os.ErrClosed after Close. Close may be called while a
// Read is waiting and returns within the read timeout.
type Port interface {
	io.ReadWriteCloser
}

// DefaultReadTimeout is used when Config.ReadTimeout is zero: short enough
// for Close and context checks to be prompt, long enough not to spin.
const DefaultReadTimeout = 100 * time.Millisecond

// The termios read timer (VTIME) counts tenths of a second in one byte.
const (
	minReadTimeout = 100 * time.Millisecond
	maxReadTimeout = 255 * minReadTimeout
)

// Config describes a port.
type Config struct {
	Device string // e.g. "/dev/ttyUSB0", "/dev/serial0"
	Baud   int    // one of the standard rates; required, the peers differ
	// ReadTimeout bounds each Read; 0 means DefaultReadTimeout. The kernel
	// counts in tenths of a second: shorter values act as 100ms, others
	// round down, and more than 25.5s cannot be expressed.
	ReadTimeout time.Duration
}

func (c Config) check() (Config, error) {
	if c.Device == "" {
		return c, errors.New("serial: no device given")
	}
	if c.Baud <= 0 {
		return c, fmt.Errorf("serial: %s: baud rate %d: must be set", c.Device, c.Baud)
	}
	switch {
	case c.ReadTimeout == 0:
		c.ReadTimeout = DefaultReadTimeout
	case c.ReadTimeout < 0:
		return c, fmt.Errorf("serial: %s: read timeout %v: must be positive", c.Device, c.ReadTimeout)
	case c.ReadTimeout > maxReadTimeout:
		return c, fmt.Errorf("serial: %s: read timeout %v: over the termios limit of %v", c.Device, c.ReadTimeout, maxReadTimeout)
	}
	return c, nil
}
