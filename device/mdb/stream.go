package mdb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// The stream format (transport C, for simulators and bus tools): each
// word is two bytes, the mode bit (00h or 01h) and the data byte. A first
// byte that is neither is a framing error: it is dropped, one byte, so
// that a stream that lost a byte falls back into step at the next word
// whose data byte is not 00h or 01h.
const (
	streamData = 0x00
	streamMode = 0x01
)

// StreamOptions tune a stream transport; the zero value is the default.
type StreamOptions struct {
	// MinBackoff and MaxBackoff bound the wait between dials of a TCP
	// stream, doubling from the first to the second while dials fail
	// (defaults 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one dial (default 1 s).
	DialTimeout time.Duration
}

// Stream is the stream transport over a TCP connection that it dials (as
// the peripheral: the simulator or bus tool listens, as a VMC owns the
// bus) and re-dials with back-off whenever it drops, or over a tty (a pty
// or a serial line) opened in raw mode.
type Stream struct {
	name string
	addr string // host:port for TCP; "" for a tty
	opts StreamOptions

	mu     sync.Mutex
	rw     streamConn // nil while a TCP stream is down
	closed bool
	done   chan struct{}

	backoff  time.Duration
	nextDial time.Time
	connects atomic.Uint64
	drops    atomic.Uint64
	framing  atomic.Uint64

	buf  [512]byte
	r, w int
	out  [4 * mdb.MaxBlock]byte
}

type streamConn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// OpenStream opens the stream transport named by device:
// "tcp://HOST:PORT" dials HOST:PORT (the first dial happens on the first
// read, so kioskd may start before the simulator); anything else is the
// path of a tty, opened in raw mode (Linux only). A tty that does not
// exist gives an error matching os.ErrNotExist.
func OpenStream(device string, opts StreamOptions) (*Stream, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	s := &Stream{name: device, opts: opts, done: make(chan struct{}), backoff: opts.MinBackoff}
	if addr, ok := strings.CutPrefix(device, "tcp://"); ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("mdb: stream %s: %w", device, err)
		}
		s.addr = addr
		return s, nil
	}
	if device == "" {
		return nil, errors.New("mdb: stream: no device given")
	}
	f, err := openTTY(device)
	if err != nil {
		return nil, fmt.Errorf("mdb: stream %s: %w", device, err)
	}
	s.rw = f
	return s, nil
}

// Connects is how many times a TCP stream has connected; Drops how many
// times its connection was lost; FramingErrors how many bytes were
// dropped to fall back into step.
func (s *Stream) Connects() uint64      { return s.connects.Load() }
func (s *Stream) Drops() uint64         { return s.drops.Load() }
func (s *Stream) FramingErrors() uint64 { return s.framing.Load() }

func (s *Stream) conn() (streamConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rw, s.closed
}

// ReadWord implements Transport.
func (s *Stream) ReadWord(deadline time.Time) (mdb.Word, error) {
	for {
		rw, closed := s.conn()
		if closed {
			return 0, ErrClosed
		}
		if rw == nil {
			if err := s.dial(deadline); err != nil {
				return 0, err
			}
			continue
		}
		for s.w-s.r >= 2 {
			m, b := s.buf[s.r], s.buf[s.r+1]
			switch m {
			case streamData:
				s.r += 2
				return mdb.Data(b), nil
			case streamMode:
				s.r += 2
				return mdb.Mark(b), nil
			}
			s.r++
			s.framing.Add(1)
		}
		if s.r > 0 {
			s.w = copy(s.buf[:], s.buf[s.r:s.w])
			s.r = 0
		}
		if err := rw.SetReadDeadline(deadline); err != nil {
			return 0, s.lost(rw, err)
		}
		n, err := rw.Read(s.buf[s.w:])
		s.w += n
		if n > 0 {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, ErrTimeout
		}
		if err == nil {
			continue
		}
		return 0, s.lost(rw, err)
	}
}

// lost handles a failed read or write: a TCP stream drops the connection
// and will re-dial; a tty's error is final.
func (s *Stream) lost(rw streamConn, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.addr == "" {
		return fmt.Errorf("mdb: stream %s: %w", s.name, err)
	}
	if s.rw == rw {
		rw.Close()
		s.rw = nil
		s.r, s.w = 0, 0
		s.drops.Add(1)
		s.nextDial = time.Now().Add(s.opts.MinBackoff)
	}
	return ErrDisconnected
}

// dial connects a TCP stream once its back-off has passed, or returns
// ErrTimeout if deadline comes first.
func (s *Stream) dial(deadline time.Time) error {
	if wait := time.Until(s.nextDial); wait > 0 {
		if !deadline.IsZero() && deadline.Before(s.nextDial) {
			wait = time.Until(deadline)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return ErrClosed
		}
		if time.Now().Before(s.nextDial) {
			return ErrTimeout
		}
	}
	c, err := net.DialTimeout("tcp", s.addr, s.opts.DialTimeout)
	if err != nil {
		s.nextDial = time.Now().Add(s.backoff)
		s.backoff = min(2*s.backoff, s.opts.MaxBackoff)
		return ErrDisconnected
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Replies are a few bytes that must leave at once.
		tc.SetNoDelay(true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return ErrClosed
	}
	s.rw = c.(streamConn)
	s.backoff = s.opts.MinBackoff
	s.connects.Add(1)
	return nil
}

// writeStall bounds one reply's write: how long a line that takes no
// bytes (a TCP peer that stopped reading, a tty whose output is stuck)
// may hold the loop before it counts as lost. It is not ReplyBudget: the
// write hands the bytes to the kernel's buffer and returns, and the loop
// measures and counts a late reply itself. With the budget as the
// deadline, a stall of the writing thread between setting it and writing
// (Go fails a write whose deadline has passed without trying it) took
// the bus down for a reply the kernel would have taken at once.
const writeStall = 100 * time.Millisecond

// WriteWords implements Transport. The words go in one write, so that
// the reply leaves as one burst with no gap a VMC could take for its
// end.
func (s *Stream) WriteWords(words []mdb.Word) error {
	rw, closed := s.conn()
	if closed {
		return ErrClosed
	}
	if rw == nil {
		return ErrDisconnected
	}
	n := 0
	for _, w := range words {
		if n+2 > len(s.out) {
			break // longer than any reply; the device never makes one
		}
		s.out[n] = streamData
		if w.Mode() {
			s.out[n] = streamMode
		}
		s.out[n+1] = w.Byte()
		n += 2
	}
	if err := rw.SetWriteDeadline(time.Now().Add(writeStall)); err != nil {
		return s.lost(rw, err)
	}
	if _, err := rw.Write(s.out[:n]); err != nil {
		return s.lost(rw, err)
	}
	return nil
}

// Close implements Transport.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	if s.rw != nil {
		return s.rw.Close()
	}
	return nil
}

// AppendStream appends words in the stream format: what a simulator on
// the VMC's side of a stream transport writes.
func AppendStream(dst []byte, words ...mdb.Word) []byte {
	for _, w := range words {
		m := byte(streamData)
		if w.Mode() {
			m = streamMode
		}
		dst = append(dst, m, w.Byte())
	}
	return dst
}
