// Package serial opens serial ports (KPOS cable, receipt printer) through
// github.com/tarm/serial, kept behind the Port interface so the driver can
// be swapped.
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
	"os"
	"sync/atomic"
	"time"

	tarm "github.com/tarm/serial"
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

// effectiveTimeout is the timeout the kernel will apply, by the same
// rounding tarm does when it fills in VTIME.
func effectiveTimeout(d time.Duration) time.Duration {
	return max(minReadTimeout, d.Truncate(minReadTimeout))
}

// Open opens and configures the device. A device that does not exist gives
// an error matching os.ErrNotExist.
func Open(cfg Config) (Port, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	tp, err := tarm.OpenPort(&tarm.Config{
		Name:        cfg.Device,
		Baud:        cfg.Baud,
		ReadTimeout: cfg.ReadTimeout,
		Size:        8,
		Parity:      tarm.ParityNone,
		StopBits:    tarm.Stop1,
	})
	if err != nil {
		// tarm returns the *PathError of its open as is; unwrap it so the
		// device is named once. ENOENT still matches os.ErrNotExist.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("serial: open %s at %d baud: %w", cfg.Device, cfg.Baud, err)
	}
	return &port{
		p:          tp,
		device:     cfg.Device,
		timeout:    effectiveTimeout(cfg.ReadTimeout),
		timeoutErr: fmt.Errorf("serial: read %s: %w", cfg.Device, os.ErrDeadlineExceeded),
		closedErr:  fmt.Errorf("serial: read %s: %w", cfg.Device, os.ErrClosed),
	}, nil
}

type port struct {
	p       *tarm.Port
	device  string
	timeout time.Duration
	closed  atomic.Bool
	// Made once: a quiet line times out ten times a second.
	timeoutErr, closedErr error
}

func (p *port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	start := time.Now()
	n, err := p.p.Read(b)
	if n > 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("serial: read %s: %w", p.device, err)
		}
		return n, nil
	}
	if p.closed.Load() {
		return 0, p.closedErr
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("serial: read %s: %w", p.device, err)
	}
	// tarm reports an expired VTIME as io.EOF. A hung-up tty also returns
	// nothing, but at once; calling that a timeout would make the caller
	// spin on a dead device, so an early empty read is the end.
	if time.Since(start) < p.timeout/2 {
		return 0, io.EOF
	}
	return 0, p.timeoutErr
}

func (p *port) Write(b []byte) (int, error) {
	n, err := p.p.Write(b)
	if err != nil {
		return n, fmt.Errorf("serial: write %s: %w", p.device, err)
	}
	return n, nil
}

func (p *port) Close() error {
	// Set first, so that a Read the close ends is reported as closed and
	// not as a timeout.
	p.closed.Store(true)
	if err := p.p.Close(); err != nil {
		return fmt.Errorf("serial: close %s: %w", p.device, err)
	}
	return nil
}
