package watchdog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The request numbers come from x/sys (unix.WDIOC_*), generated from the
// kernel headers per GOARCH. All but GETSUPPORT carry an int, which is 32
// bits on every Linux target, so they are the same on arm, arm64 and amd64;
// ioctl_linux_test.go recomputes them from the _IOC encoding.

// magicClose, written just before close, tells a driver with
// WDIOF_MAGICCLOSE that the close is deliberate and it may stop the timer.
var magicClose = []byte{'V'}

// keepaliveByte feeds drivers without WDIOF_KEEPALIVEPING: any write is a
// ping, and a byte other than 'V' also withdraws a pending magic close.
var keepaliveByte = []byte{'\n'}

// Open opens and arms the watchdog at path and asks for the given timeout
// (rounded up to whole seconds; zero or less keeps the driver's). Drivers
// cap the timeout: a driver that refuses the value, or cannot set one,
// keeps its own, and Timeout reports what it actually uses, which is what
// the feeding follows. Call Supervisor.Run promptly: the countdown starts
// at Open.
//
// A path that does not exist gives an error matching os.ErrNotExist, so a
// development machine can log it and run without a watchdog. A path that is
// not a watchdog gives an error matching unix.ENOTTY.
func Open(path string, timeout time.Duration) (Device, error) {
	// O_NONBLOCK only so that a misconfigured path (a FIFO) cannot hang the
	// open; it is cleared once the descriptor is known to be a watchdog.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		perr := &os.PathError{Op: "open", Path: path, Err: err}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("watchdog: %w (another process holds it; systemd's RuntimeWatchdogSec does too)", perr)
		}
		return nil, fmt.Errorf("watchdog: %w", perr)
	}
	var info unix.WatchdogInfo
	if err := ioctlPtr(fd, unix.WDIOC_GETSUPPORT, unsafe.Pointer(&info)); err != nil {
		// Not a watchdog, so nothing is armed; writing the magic byte would
		// only put a 'V' into whatever this is.
		unix.Close(fd)
		return nil, fmt.Errorf("watchdog: %s is not a watchdog device: WDIOC_GETSUPPORT: %w", path, err)
	}
	h := &hardware{path: path, fd: fd, options: info.Options, identity: cString(info.Identity[:])}
	if err := h.configure(timeout); err != nil {
		// Armed by the open: disarm before giving up, or the board resets
		// while the caller reports the error.
		if derr := disarm(fd, path, 0); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return h, nil
}

type hardware struct {
	path     string
	identity string
	options  uint32
	timeout  time.Duration

	mu sync.Mutex
	fd int // -1 once closed
}

func (h *hardware) configure(timeout time.Duration) error {
	if err := unix.SetNonblock(h.fd, false); err != nil {
		return fmt.Errorf("watchdog: %s: clear O_NONBLOCK: %w", h.path, err)
	}
	if timeout > 0 && h.options&unix.WDIOF_SETTIMEOUT != 0 {
		whole := timeout / time.Second
		if timeout%time.Second != 0 {
			whole++
		}
		secs := int32(min(whole, math.MaxInt32))
		// EINVAL means out of the driver's range; it then keeps its own
		// timeout, read back below, which is still safe to feed by.
		if err := ioctlInt(h.fd, unix.WDIOC_SETTIMEOUT, &secs); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("watchdog: %s: WDIOC_SETTIMEOUT %ds: %w", h.path, secs, err)
		}
	}
	var secs int32
	if err := ioctlInt(h.fd, unix.WDIOC_GETTIMEOUT, &secs); err != nil {
		return fmt.Errorf("watchdog: %s: WDIOC_GETTIMEOUT: %w", h.path, err)
	}
	if secs <= 0 {
		return fmt.Errorf("watchdog: %s: driver reports a timeout of %ds", h.path, secs)
	}
	h.timeout = time.Duration(secs) * time.Second
	return nil
}

func (h *hardware) Feed() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fd < 0 {
		return fmt.Errorf("watchdog: feed %s: %w", h.path, os.ErrClosed)
	}
	var err error
	if h.options&unix.WDIOF_KEEPALIVEPING != 0 {
		err = unix.IoctlWatchdogKeepalive(h.fd)
	} else {
		_, err = unix.Write(h.fd, keepaliveByte)
	}
	if err != nil {
		return fmt.Errorf("watchdog: feed %s: %w", h.path, err)
	}
	return nil
}

func (h *hardware) Timeout() time.Duration { return h.timeout }

// Identity is the driver's name, e.g. "Broadcom BCM2835 Watchdog timer".
func (h *hardware) Identity() string { return h.identity }

func (h *hardware) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fd < 0 {
		return fmt.Errorf("watchdog: close %s: %w", h.path, os.ErrClosed)
	}
	fd := h.fd
	h.fd = -1
	return disarm(fd, h.path, h.timeout)
}

// disarm stops the watchdog and closes fd. WDIOS_DISABLECARD stops it
// outright and is the one request that reveals a kernel built with
// nowayout (EBUSY), where no close can stop it; the magic byte covers
// drivers without WDIOC_SETOPTIONS.
func disarm(fd int, path string, timeout time.Duration) error {
	opt := int32(unix.WDIOS_DISABLECARD)
	nowayout := errors.Is(ioctlInt(fd, unix.WDIOC_SETOPTIONS, &opt), unix.EBUSY)
	var errs []error
	if _, err := unix.Write(fd, magicClose); err != nil {
		errs = append(errs, fmt.Errorf("watchdog: %s: write magic close: %w", path, err))
	}
	if err := unix.Close(fd); err != nil {
		errs = append(errs, fmt.Errorf("watchdog: close %s: %w", path, err))
	}
	if nowayout {
		errs = append(errs, fmt.Errorf("watchdog: %s: driver refuses to stop (nowayout): the board will reset within %v", path, timeout))
	}
	return errors.Join(errs...)
}

// ioctlInt passes a pointer to a C int, which the watchdog requests read
// and, for SETTIMEOUT, write back. unix.IoctlGetInt would hand the kernel
// an 8-byte Go int on 64-bit targets.
func ioctlInt(fd int, req uint, v *int32) error {
	return ioctlPtr(fd, req, unsafe.Pointer(v))
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
	if errno != 0 {
		return errno
	}
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
