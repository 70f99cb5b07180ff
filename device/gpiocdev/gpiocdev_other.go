//go:build !linux

package gpiocdev

import (
	"errors"

	"periph.io/x/conn/v3/gpio"
)

// RequestOutput needs Linux's GPIO character device.
func RequestOutput(path string, offset int, name string, level gpio.Level, consumer string) (*Line, error) {
	return nil, errors.New("gpiocdev: the GPIO character device is Linux only")
}

// Out fails: no line is ever requested here.
func (l *Line) Out(gpio.Level) error { return errors.New("gpiocdev: Linux only") }

// Close does nothing.
func (l *Line) Close() error { return nil }
