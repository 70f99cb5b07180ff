//go:build !linux

package mdb

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// openTTY fails: the raw-mode setup uses Linux termios ioctls. TCP
// streams work everywhere.
func openTTY(path string) (*os.File, error) {
	return nil, fmt.Errorf("tty streams are Linux only, not %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
