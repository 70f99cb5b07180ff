package mobypay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	r.c.SetDeadline(deadline)
	return client, r.c
}

func readAll(t *testing.T, fr *FrameReader) []string {
	t.Helper()
	var got []string
	for {
		b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, string(b))
	}
}

func TestFramesOverTCP(t *testing.T) {
	// Two messages in one write, one split over three, CRLF, blank lines,
	// and a last line without its newline.
	writes := []string{
		`{"a":1}` + "\n" + `{"b":2}` + "\r\n",
		`{"c"`, `:3`, "}\n\n   \r\n\t\n",
		`{"d":4}`,
	}
	want := []string{`{"a":1}`, `{"b":2}`, `{"c":3}`, `{"d":4}`}
	client, server := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		for _, w := range writes {
			if _, err := client.Write([]byte(w)); err != nil {
				done <- err
				return
			}
		}
		done <- client.(*net.TCPConn).CloseWrite()
	}()
	got := readAll(t, NewFrameReader(server, 0))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

// oneByteReader delivers its input a byte at a time: the worst split.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestFrameSplitEverywhere(t *testing.T) {
	in := "{\"x\":\"first\"}\r\n\n{\"y\":2}\n{\"z\":[1,2,3]}\n"
	got := readAll(t, NewFrameReader(&oneByteReader{[]byte(in)}, 16))
	want := []string{`{"x":"first"}`, `{"y":2}`, `{"z":[1,2,3]}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

func TestFrameTooLarge(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := `{"ok":1}` + "\n" + long + "\n" + `{"after":1}` + "\n" + strings.Repeat("y", 40)
	fr := NewFrameReader(strings.NewReader(in), 32)
	var got []string
	var tooLarge int
	for {
		b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrFrameTooLarge) {
			tooLarge++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	// The over-long line is reported once and skipped; the unterminated
	// tail over the bound is reported too, and never returned as a frame.
	if tooLarge != 2 || strings.Join(got, "|") != `{"ok":1}|{"after":1}` {
		t.Fatalf("got frames %q and %d oversize errors", got, tooLarge)
	}
}

func TestFrameExactlyAtBound(t *testing.T) {
	line := strings.Repeat("z", 32)
	fr := NewFrameReader(strings.NewReader(line+"\n"+line+"z\n"), 32)
	if b, err := fr.Next(); err != nil || string(b) != line {
		t.Fatalf("a line of exactly the bound: %q, %v", b, err)
	}
	if b, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a line one over the bound: %q, %v", b, err)
	}
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the long line: %v, want EOF", err)
	}
}

func TestGarbageFloodIsCutOff(t *testing.T) {
	client, server := tcpPair(t)
	go func() {
		junk := bytes.Repeat([]byte{0xff}, 4096)
		for i := 0; i < 64; i++ { // 256 KiB, no newline
			if _, err := client.Write(junk); err != nil {
				return
			}
		}
	}()
	_, err := NewFrameReader(server, 0).Next()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestWriteFrame(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, []byte("{}")); err == nil {
		t.Fatal("frame without newline accepted")
	}
	if err := WriteFrame(&b, []byte("{}\n")); err != nil || b.String() != "{}\n" {
		t.Fatalf("WriteFrame: %v, wrote %q", err, b.String())
	}
}

// TestFrameBufferGrowsOnDemand: a reader starts with a small buffer, keeps
// it for small frames, and grows it only as far as a long frame needs.
func TestFrameBufferGrowsOnDemand(t *testing.T) {
	small := `{"type":"ack","txn_id":"TXN1"}`
	var in strings.Builder
	for range 100 {
		in.WriteString(small + "\r\n")
	}
	fr := NewFrameReader(strings.NewReader(in.String()), 0)
	if fr.buf != nil {
		t.Fatalf("buffer of %d bytes allocated before the first read", len(fr.buf))
	}
	for i := range 100 {
		if b, err := fr.Next(); err != nil || string(b) != small {
			t.Fatalf("frame %d: %q, %v", i, b, err)
		}
	}
	if len(fr.buf) > initialFrameBuf {
		t.Fatalf("small frames grew the buffer to %d bytes", len(fr.buf))
	}

	long := `{"pad":"` + strings.Repeat("p", 10_000) + `"}`
	fr = NewFrameReader(&oneByteReader{[]byte(small + "\n" + long + "\n" + small + "\n")}, 0)
	for i, want := range []string{small, long, small} {
		if b, err := fr.Next(); err != nil || string(b) != want {
			t.Fatalf("frame %d: %d bytes, %v; want %d bytes", i, len(b), err, len(want))
		}
	}
	if n := len(fr.buf); n < len(long) || n > 2*len(long) {
		t.Fatalf("buffer %d bytes after a %d-byte frame", n, len(long))
	}

	// Growth stops at the bound: one byte more is too large.
	fr = NewFrameReader(strings.NewReader(strings.Repeat("x", 5000)+"\n"), 4000)
	if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the bound: %v", err)
	}
	if len(fr.buf) != 4001 {
		t.Fatalf("buffer %d bytes, want the bound 4001", len(fr.buf))
	}
}
