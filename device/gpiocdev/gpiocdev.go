// Package gpiocdev drives output lines of a Linux GPIO character device
// (/dev/gpiochipN, uAPI v2) that come up at a chosen level.
//
// periph's gpioioctl requests a line as an output and then sets its
// level: two ioctls, between which the kernel drives the line low. On an
// active-low relay input that is a release pulse (0.5 ms, seen on the
// virtual board at every kioskd start), and a vending machine's logic
// input may take it as one. Here the request carries the level
// (GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES), so the line is never anything but
// the safe level until kioskd says otherwise.
package gpiocdev

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// Line is one requested output line; it implements gpio.PinOut.
type Line struct {
	name   string
	offset int
	chip   string

	mu    sync.Mutex
	fd    int
	level gpio.Level
	err   error // set once the line is closed
}

// ErrClosed is returned by Out after Close.
var ErrClosed = errors.New("gpiocdev: line closed")

// String names the line with its chip and offset.
func (l *Line) String() string { return fmt.Sprintf("%s(%s:%d)", l.name, l.chip, l.offset) }

// Name is the line's name as the board's device tree gives it.
func (l *Line) Name() string { return l.name }

// Number is the line's offset on its chip.
func (l *Line) Number() int { return l.offset }

// Function implements pin.Pin.
//
// Deprecated: periph's own; use Func.
func (l *Line) Function() string { return string(l.Func()) }

// Func is always Out: the line was requested as an output.
func (l *Line) Func() pin.Func {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.level {
		return gpio.OUT_HIGH
	}
	return gpio.OUT_LOW
}

// Halt implements conn.Resource; a line has nothing running.
func (l *Line) Halt() error { return nil }

// PWM is not offered by the character device.
func (l *Line) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("gpiocdev: PWM is not supported")
}

// Level returns the level last set.
func (l *Line) Level() gpio.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

var _ gpio.PinOut = (*Line)(nil)
