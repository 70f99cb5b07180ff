//go:build !linux

package watchdog

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
)

// Open fails everywhere but Linux. The error matches os.ErrNotExist as
// well as errors.ErrUnsupported, so a development machine treats it like a
// board without a watchdog: logged and tolerated.
func Open(path string, timeout time.Duration) (Device, error) {
	return nil, fmt.Errorf("watchdog: open %s: no Linux watchdog API on %s: %w",
		path, runtime.GOOS, errors.Join(errors.ErrUnsupported, os.ErrNotExist))
}
