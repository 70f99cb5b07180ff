package serial

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, path, err := OpenPTY()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	return master, path
}

// openPair opens a pty and the port on its slave side.
func openPair(t *testing.T, timeout time.Duration) (master *os.File, p Port) {
	t.Helper()
	master, path := openPTY(t)
	p, err := Open(Config{Device: path, Baud: 115200, ReadTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return master, p
}

// readFull reads n bytes from r, treating timeouts as "not yet", until a
// deadline.
func readFull(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n {
		if f, ok := r.(*os.File); ok {
			f.SetReadDeadline(deadline)
		}
		k, err := r.Read(buf[:min(len(buf), n-len(got))])
		got = append(got, buf[:k]...)
		if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), n, err)
		}
	}
	return got
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestBothWays(t *testing.T) {
	master, p := openPair(t, 0)
	// Every byte value, so that no line discipline processing (echo,
	// CR/NL mapping, XON/XOFF, ^C) is left on either direction.
	want := bytes.Repeat(allBytes(), 4)

	if _, err := master.Write(want); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, p, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("master -> port: got %q", got)
	}

	if _, err := p.Write(want); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, master, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("port -> master: got %q", got)
	}
}

func TestBytesBeforeOpen(t *testing.T) {
	// The peer may talk before the kiosk opens the port; OpenPTY's raw
	// mode must already apply to those bytes.
	master, path := openPTY(t)
	want := []byte("\x02002600000" + "34" + "\x03\r\n\x11\x13")
	if _, err := master.Write(want); err != nil {
		t.Fatal(err)
	}
	p, err := Open(Config{Device: path, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := readFull(t, p, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := master.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("master read %d bytes (echo?), err %v", n, err)
	}
}

func TestReadTimeout(t *testing.T) {
	master, p := openPair(t, 200*time.Millisecond)
	start := time.Now()
	n, err := p.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v; want a timeout", n, err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("timed out after %v, configured 200ms", el)
	}
	// A timeout is not the end of the port.
	if _, err := master.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, p, 4); string(got) != "late" {
		t.Fatalf("after a timeout read %q", got)
	}
}

func TestCloseWhileReading(t *testing.T) {
	const timeout = 100 * time.Millisecond
	_, p := openPair(t, timeout)

	timedOut := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		first := true
		for {
			_, err := p.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if first {
					close(timedOut)
					first = false
				}
				continue
			}
			done <- err
			return
		}
	}()
	// Once a Read has timed out the loop is back in the next Read, which
	// is the blocked call Close has to cope with.
	select {
	case <-timedOut:
	case <-time.After(5 * time.Second):
		t.Fatal("no read timeout within 5s")
	}

	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * timeout):
		t.Fatalf("Close still blocked after %v", 20*timeout)
	}
	t.Logf("Close took %v", time.Since(start))

	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(20 * timeout):
		t.Fatal("Read did not return after Close")
	}
}

func TestHangup(t *testing.T) {
	master, p := openPair(t, 2*time.Second)
	master.Close()
	// A vanished peer must end reading at once, not look like a quiet
	// line the caller would poll forever.
	start := time.Now()
	n, err := p.Read(make([]byte, 8))
	if n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want io.EOF", n, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestOpenMissing(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := Open(Config{Device: dev, Baud: 9600})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "serial: ") || !strings.Contains(err.Error(), dev) {
		t.Fatalf("error lacks prefix or device: %v", err)
	}
}

func TestOpenNotATTY(t *testing.T) {
	f := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := Open(Config{Device: f, Baud: 9600}); err == nil {
		p.Close()
		t.Fatal("opened a regular file as a serial port")
	}
}

func TestConfig(t *testing.T) {
	_, path := openPTY(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"no device", Config{Baud: 9600}},
		{"no baud", Config{Device: path}},
		{"odd baud", Config{Device: path, Baud: 12345}},
		{"negative timeout", Config{Device: path, Baud: 9600, ReadTimeout: -time.Second}},
		{"timeout over VTIME", Config{Device: path, Baud: 9600, ReadTimeout: 26 * time.Second}},
	} {
		if p, err := Open(c.cfg); err == nil {
			p.Close()
			t.Errorf("%s: opened", c.name)
		} else if !strings.HasPrefix(err.Error(), "serial: ") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestEffectiveTimeout(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Millisecond:         100 * time.Millisecond,
		100 * time.Millisecond:   100 * time.Millisecond,
		250 * time.Millisecond:   200 * time.Millisecond,
		25500 * time.Millisecond: 25500 * time.Millisecond,
	} {
		if got := effectiveTimeout(in); got != want {
			t.Errorf("effectiveTimeout(%v) = %v, want %v", in, got, want)
		}
	}
}
