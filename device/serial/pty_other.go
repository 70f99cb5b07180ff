//go:build !linux

package serial

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// OpenPTY fails: it drives Linux's /dev/ptmx ioctls (TIOCSPTLCK,
// TIOCGPTN). It exists so the simulated board's wiring compiles; the
// error says why the simulated printer is missing.
func OpenPTY() (master *os.File, slavePath string, err error) {
	return nil, "", fmt.Errorf("serial: open pty: Linux pseudo-terminals only, not %s: %w",
		runtime.GOOS, errors.ErrUnsupported)
}
