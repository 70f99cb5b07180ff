package mobypay

import (
	"bytes"
	"io"
)

// MaxFrame is the default bound on one NDJSON line. The largest real
// message (ipp_plans with a handful of plans) is well under 2 KiB.
const MaxFrame = 64 << 10

// ErrFrameTooLarge is returned by FrameReader.Next for a line longer than
// the reader's bound. A connection should be closed on it; a tool reading
// a file may call Next again, which skips the rest of the long line.
var ErrFrameTooLarge = newError("frame too large")

// initialFrameBuf is a FrameReader's first buffer. Real frames are a few
// hundred bytes; the buffer doubles on demand up to the frame bound, so
// an idle or refused connection costs 512 bytes, not MaxFrame.
const initialFrameBuf = 512

// FrameReader splits newline-delimited JSON: messages split across reads
// or several in one read, "\r\n" endings and blank lines are all normal.
type FrameReader struct {
	r          io.Reader
	limit      int    // max frame + 1: the most the buffer may hold
	buf        []byte // allocated at the first read, grown up to limit
	start, end int    // unread data is buf[start:end]
	scanned    int    // buf[start:scanned] holds no '\n'
	skipping   bool   // inside an over-long line
	err        error
}

// NewFrameReader reads frames of at most max bytes (MaxFrame if max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = MaxFrame
	}
	return &FrameReader{r: r, limit: max + 1}
}

// Next returns the next non-blank line without its line ending. The slice
// aliases the reader's buffer and is valid until the next call. At the end
// of input a last line without '\n' is returned before io.EOF.
func (f *FrameReader) Next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(f.buf[f.scanned:f.end], '\n'); i >= 0 {
			nl := f.scanned + i
			line := f.buf[f.start:nl]
			f.start, f.scanned = nl+1, nl+1
			if f.skipping {
				f.skipping = false
				continue
			}
			if line = trimLine(line); line != nil {
				return line, nil
			}
			continue
		}
		f.scanned = f.end
		if f.err != nil {
			line := trimLine(f.buf[f.start:f.end])
			f.start, f.scanned = f.end, f.end
			if line != nil && !f.skipping {
				return line, nil
			}
			return nil, f.err
		}
		if f.start > 0 {
			n := copy(f.buf, f.buf[f.start:f.end])
			f.scanned -= f.start
			f.start, f.end = 0, n
		}
		if f.end == len(f.buf) {
			switch {
			case f.skipping:
				// Inside an over-long line: drop what was read of it.
				f.end, f.scanned = 0, 0
			case len(f.buf) < f.limit:
				f.grow()
			default:
				// A whole bound without a newline: the frame is too large.
				f.end, f.scanned = 0, 0
				f.skipping = true
				return nil, errorf("%w: no newline within %d bytes", ErrFrameTooLarge, f.limit-1)
			}
		}
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if err != nil {
			f.err = err
		}
	}
}

// grow allocates the first buffer, or doubles it up to the bound.
func (f *FrameReader) grow() {
	n := min(max(2*len(f.buf), initialFrameBuf), f.limit)
	b := make([]byte, n)
	copy(b, f.buf[:f.end])
	f.buf = b
}

// Buffered reports bytes read but not yet returned: a partial frame.
func (f *FrameReader) Buffered() int { return f.end - f.start }

// trimLine drops a trailing '\r' and returns nil for a blank line.
func trimLine(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if len(bytes.TrimLeft(b, " \t\r")) == 0 {
		return nil
	}
	return b
}

// WriteFrame writes one newline-ended frame in a single Write, so that
// concurrent writers on a connection never interleave halves of messages.
func WriteFrame(w io.Writer, frame []byte) error {
	if len(frame) == 0 || frame[len(frame)-1] != '\n' {
		return newError("frame does not end with a newline")
	}
	if _, err := w.Write(frame); err != nil {
		return errorf("write frame: %w", err)
	}
	return nil
}
