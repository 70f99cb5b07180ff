//go:build !linux && !windows

package serial

import (
	"errors"
	"fmt"
	"runtime"
)

// Open checks the configuration as everywhere, then fails: tarm/serial's
// port for this GOOS needs cgo, which the static build does not have.
func Open(cfg Config) (Port, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("serial: open %s: no cgo-free serial driver on %s: %w",
		cfg.Device, runtime.GOOS, errors.ErrUnsupported)
}
