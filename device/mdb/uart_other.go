//go:build !linux

package mdb

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// UART is transport A, Linux only (termios CMSPAR); see uart.go.
type UART struct{}

// OpenUART fails: mark/space parity needs Linux's CMSPAR.
func OpenUART(path string) (*UART, error) {
	return nil, fmt.Errorf("mdb: uart %s: mark/space parity needs Linux termios (CMSPAR), not %s: %w", path, runtime.GOOS, errors.ErrUnsupported)
}

func (*UART) ReadWord(time.Time) (mdb.Word, error) { return 0, ErrClosed }
func (*UART) WriteWords([]mdb.Word) error          { return ErrClosed }
func (*UART) FirstWritten() time.Time              { return time.Time{} }
func (*UART) Close() error                         { return nil }
