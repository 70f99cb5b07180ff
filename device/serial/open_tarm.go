//go:build linux || windows

// tarm/serial's Linux and Windows ports are pure Go; its others use cgo
// (see open_other.go). The firmware runs on Linux, where this is tested;
// on Windows it compiles, and the read-timeout mapping below is untested.

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

// effectiveTimeout is the timeout the kernel will apply, by the same
// rounding tarm does when it fills in VTIME.
func effectiveTimeout(d time.Duration) time.Duration {
	return max(minReadTimeout, d.Truncate(minReadTimeout))
}
