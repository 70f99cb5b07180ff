package watchdog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These tests never open /dev/watchdog: opening it arms a reset of the
// machine running them.

// notWatchdog tells whether err is the kernel's answer to a watchdog ioctl
// on something else: ENOTTY, or ENOSYS under qemu-user, which answers so
// for the ioctls it does not translate (the cross-arch test runs).
func notWatchdog(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOSYS)
}

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "watchdog"), 15*time.Second)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want one matching os.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "watchdog: open ") {
		t.Fatalf("err %q", err)
	}
}

func TestOpenRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, 15*time.Second)
	if !notWatchdog(err) || !strings.Contains(err.Error(), "not a watchdog device") {
		t.Fatalf("err %v", err)
	}
	if errors.Is(err, os.ErrNotExist) {
		t.Fatal("a wrong file passes for a missing device")
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Fatalf("file now holds %q: something was written", b)
	}
}

func TestOpenCharDeviceThatIsNoWatchdog(t *testing.T) {
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skip("no /dev/null character device here")
	}
	_, err := Open("/dev/null", 15*time.Second)
	if !notWatchdog(err) {
		t.Fatalf("err %v", err)
	}
}

// A FIFO would block a plain write-only open until a reader came.
func TestOpenFIFODoesNotHang(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Open(path, 15*time.Second)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "watchdog: ") {
			t.Fatalf("err %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Open hangs on a FIFO")
	}
}

// The request numbers x/sys provides, checked against the kernel's
// encoding (asm-generic ioctl.h, which arm, arm64 and amd64 share):
// dir<<30 | size<<16 | type<<8 | nr.
func TestIoctlNumbers(t *testing.T) {
	const (
		iocWrite = 1
		iocRead  = 2
	)
	ioc := func(dir, nr, size uintptr) uint { return uint(dir<<30 | size<<16 | 'W'<<8 | nr) }
	var cInt int32
	info := unsafe.Sizeof(unix.WatchdogInfo{})
	if info != 40 {
		t.Fatalf("struct watchdog_info is %d bytes, want 40", info)
	}
	for _, tc := range []struct {
		name      string
		got, want uint
	}{
		{"WDIOC_GETSUPPORT", unix.WDIOC_GETSUPPORT, ioc(iocRead, 0, info)},
		{"WDIOC_SETOPTIONS", unix.WDIOC_SETOPTIONS, ioc(iocRead, 4, unsafe.Sizeof(cInt))},
		{"WDIOC_KEEPALIVE", unix.WDIOC_KEEPALIVE, ioc(iocRead, 5, unsafe.Sizeof(cInt))},
		{"WDIOC_SETTIMEOUT", unix.WDIOC_SETTIMEOUT, ioc(iocRead|iocWrite, 6, unsafe.Sizeof(cInt))},
		{"WDIOC_GETTIMEOUT", unix.WDIOC_GETTIMEOUT, ioc(iocRead, 7, unsafe.Sizeof(cInt))},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}
