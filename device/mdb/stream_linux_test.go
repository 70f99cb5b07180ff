package mdb_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// TestSessionOverPTY: the stream transport on a tty path, the simulator
// on the pty's master.
func TestSessionOverPTY(t *testing.T) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	// Closed after the loop has stopped (cleanups run last first): a
	// master closed under a running loop is a hang-up, which Run reports.
	t.Cleanup(func() { master.Close() })
	st, err := devmdb.OpenStream(slave, devmdb.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t)
	startLoop(t, st, d, devmdb.Options{})
	sv := &mdbtest.StreamVMC{C: master}
	session(t, vmcsim.New(sv, mdb.AddrCashless1), d)
	if sv.Err != nil {
		t.Fatal(sv.Err)
	}
}

// TestUARTRefusesMiniUART: the mini UART is refused by name, through
// links such as /dev/serial0.
func TestUARTRefusesMiniUART(t *testing.T) {
	dir := t.TempDir()
	mini := filepath.Join(dir, "ttyS0")
	if err := os.WriteFile(mini, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "serial0")
	if err := os.Symlink(mini, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mini, link} {
		if _, err := devmdb.OpenUART(p); !errors.Is(err, devmdb.ErrMiniUART) {
			t.Errorf("%s: %v, want ErrMiniUART", p, err)
		}
	}
	if _, err := devmdb.OpenUART(filepath.Join(dir, "ttyAMA9")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing uart: %v, want os.ErrNotExist", err)
	}
}

// TestUARTOnPTY: the UART's termios set-up and its parity switching run
// on a pty, which takes the flags. A pty sends no parity bit, so what
// arrives is the data bytes alone, and bytes from the master are never
// marked as parity errors: the mode bit itself is only tested on
// hardware (or the virtual board's 16550, later).
func TestUARTOnPTY(t *testing.T) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	u, err := devmdb.OpenUART(slave)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.WriteWords(mdb.AppendReply(nil, []byte{0x05, 0x00, 0x96})); err != nil {
		t.Fatal(err)
	}
	// Two writes, one per parity: read until both have come.
	buf := make([]byte, 4)
	master.SetReadDeadline(noDeadlineSoon())
	n, err := io.ReadFull(master, buf)
	if err != nil || buf[0] != 0x05 || buf[3] != 0x9B {
		t.Errorf("master read % X, %v", buf[:n], err)
	}
	if u.FirstWritten().IsZero() {
		t.Error("FirstWritten not set")
	}
	// The line discipline does honour PARMRK's escape of an intact FFh
	// (it delivers FFh FFh), so that half of the decoding is tested on
	// the kernel; the FFh 00h marker of a parity error only a UART makes.
	if _, err := master.Write([]byte{0x12, 0xFF, 0x07}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []mdb.Word{mdb.Data(0x12), mdb.Data(0xFF), mdb.Data(0x07)} {
		w, err := u.ReadWord(noDeadlineSoon())
		if err != nil || w != want {
			t.Fatalf("ReadWord %03x %v, want %03x", w, err, want)
		}
	}
}

// TestPTYHangup: the far end of a tty stream goes away. Unlike TCP there
// is nobody to dial, so the loop stops with the error instead of
// spinning on a dead line.
func TestPTYHangup(t *testing.T) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	st, err := devmdb.OpenStream(slave, devmdb.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := devmdb.NewLoop(st, newDevice(t), devmdb.Options{})
	done := make(chan error, 1)
	go func() { done <- l.Run(t.Context()) }()
	master.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, devmdb.ErrTimeout) {
			t.Errorf("Run: %v, want the hang-up", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after the hang-up")
	}
}
