//go:build !linux

package gpiocdev

import (
	"errors"
	"fmt"
	"runtime"

	"periph.io/x/conn/v3/gpio"
)

// RequestOutput needs Linux's GPIO character device. The error matches
// errors.ErrUnsupported, as the other Linux-only drivers' stubs do, so a
// caller can tell a missing API from a failing line.
func RequestOutput(path string, offset int, name string, level gpio.Level, consumer string) (*Line, error) {
	return nil, fmt.Errorf("gpiocdev: request %s line %d (%s): the GPIO character device is Linux only, not %s: %w",
		path, offset, name, runtime.GOOS, errors.ErrUnsupported)
}

// Out fails: no line is ever requested here.
func (l *Line) Out(gpio.Level) error {
	return fmt.Errorf("gpiocdev: %s: Linux only: %w", l, errors.ErrUnsupported)
}

// Close does nothing.
func (l *Line) Close() error { return nil }
