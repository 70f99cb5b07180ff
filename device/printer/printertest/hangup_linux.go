package printertest

import (
	"errors"
	"syscall"
)

// A pseudo-terminal's master reads EIO once the slave side is closed.
func isHangup(err error) bool { return errors.Is(err, syscall.EIO) }
