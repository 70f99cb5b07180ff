package gpiocdev

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/gpio"
)

// The uAPI v2 structures (linux/gpio.h). The kernel pads them so that
// every 64-bit field sits on an 8-byte offset: the layout is the same on
// armv7, arm64 and amd64, and Go's 4-byte alignment of uint64 on 32-bit
// ARM changes nothing (the size test holds it to the kernel's).
const (
	maxNameSize = 32
	linesMax    = 64
	numAttrsMax = 10

	flagOutput       = 1 << 3
	attrOutputValues = 2
)

type lineAttribute struct {
	id      uint32
	padding uint32
	value   uint64 // for attrOutputValues: a bitmap over the request's lines
}

type lineConfigAttribute struct {
	attr lineAttribute
	mask uint64
}

type lineConfig struct {
	flags    uint64
	numAttrs uint32
	padding  [5]uint32
	attrs    [numAttrsMax]lineConfigAttribute
}

type lineRequest struct {
	offsets         [linesMax]uint32
	consumer        [maxNameSize]byte
	config          lineConfig
	numLines        uint32
	eventBufferSize uint32
	padding         [5]uint32
	fd              int32
}

type lineValues struct {
	bits uint64
	mask uint64
}

// _IOWR(0xB4, nr, T): the generic encoding, the same on all three.
func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 0xB4<<8 | nr }

var (
	getLineIoctl   = iowr(0x07, unsafe.Sizeof(lineRequest{}))
	setValuesIoctl = iowr(0x0F, unsafe.Sizeof(lineValues{}))
)

// RequestOutput requests line offset of the chip at path (/dev/gpiochipN)
// as an output at level, in one ioctl; consumer shows in gpioinfo and
// debugfs as the line's user. name is for messages.
func RequestOutput(path string, offset int, name string, level gpio.Level, consumer string) (*Line, error) {
	if offset < 0 || offset >= 1<<16 {
		return nil, fmt.Errorf("gpiocdev: %s: line offset %d out of range", path, offset)
	}
	chip, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: %w", err)
	}
	defer chip.Close()
	var req lineRequest
	req.offsets[0] = uint32(offset)
	req.numLines = 1
	copy(req.consumer[:maxNameSize-1], consumer)
	req.config.flags = flagOutput
	req.config.numAttrs = 1
	req.config.attrs[0] = lineConfigAttribute{attr: lineAttribute{id: attrOutputValues, value: levelBit(level)}, mask: 1}
	if err := ioctl(chip.Fd(), getLineIoctl, unsafe.Pointer(&req)); err != nil {
		return nil, fmt.Errorf("gpiocdev: request %s line %d (%s) as output: %w", path, offset, name, err)
	}
	return &Line{name: name, offset: offset, chip: filepath.Base(path), fd: int(req.fd), level: level}, nil
}

// Out sets the line's level.
func (l *Line) Out(level gpio.Level) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	v := lineValues{bits: levelBit(level), mask: 1}
	if err := ioctl(uintptr(l.fd), setValuesIoctl, unsafe.Pointer(&v)); err != nil {
		return fmt.Errorf("gpiocdev: %s: set %s: %w", l, level, err)
	}
	l.level = level
	return nil
}

// Close releases the line; the kernel keeps its last level.
func (l *Line) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil
	}
	l.err = ErrClosed
	return unix.Close(l.fd)
}

func levelBit(l gpio.Level) uint64 {
	if l {
		return 1
	}
	return 0
}

func ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
