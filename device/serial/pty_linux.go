package serial

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a pseudo-terminal for tests: the peer (a fake KPOS, a fake
// printer) uses master, the code under test opens slavePath with Open. The
// master is non-blocking underneath, so its SetReadDeadline works.
//
// The line is raw before OpenPTY returns. Bytes the master writes before
// the slave is opened are processed by the line discipline on arrival, and
// its defaults would echo them back, buffer them by line and turn 0x03
// into a signal.
func OpenPTY() (master *os.File, slavePath string, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("serial: open pty: %w", err)
	}
	// Fd would switch the master to blocking mode and disable deadlines.
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("serial: open pty: %w", err)
	}
	var n int
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		n, ioctlErr = setupPTY(int(fd))
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("serial: open pty: %w", err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n), nil
}

// setupPTY unlocks the slave, makes the line raw and reports the slave's
// number. Termios requests on a master act on its slave.
func setupPTY(fd int) (int, error) {
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return 0, fmt.Errorf("unlock: %w", err)
	}
	num, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return 0, fmt.Errorf("slave number: %w", err)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return 0, fmt.Errorf("get termios: %w", err)
	}
	// cfmakeraw(3)
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return 0, fmt.Errorf("set termios: %w", err)
	}
	return num, nil
}
