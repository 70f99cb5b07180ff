// Package logsink is where the service's log lines go: a console sink
// that never blocks the caller, and the ring behind `kioskd logs`.
package logsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The service's stderr is the image's 115200-baud serial console: about
// 11.5 KB/s. A flood of one WARN line per refused connection outran it,
// and every log call, the payment path's included, waited for the UART.
// Bounds of the queue between the handlers and stderr: what a burst may
// park there before lines are dropped.
const (
	sinkLines = 256
	sinkBytes = 64 << 10
	// FlushTimeout bounds the flush on stop: at 115200 baud a full
	// queue takes about 6 s, and a stop must not wait on a console.
	FlushTimeout = time.Second
)

// Sink is an io.Writer for slog handlers that never blocks: Write
// copies the line into a bounded queue and returns, and one goroutine
// writes the queue to the real writer. When the queue is full the line
// is dropped and counted, and where the gap is, once there is room again,
// a line "log: dropped N lines" is written in the log's format. The
// in-memory Ring is fed before the sink and keeps every line.
//
// Each Write is taken as one line, which is how slog's handlers write.
type Sink struct {
	w      io.Writer
	notice func(dropped int) []byte // called only by the writer goroutine
	wake   chan struct{}            // capacity 1: work is queued
	done   chan struct{}            // closed when the writer goroutine ends

	mu      sync.Mutex
	buf     []byte // ring of queued bytes
	start   int    // offset in buf of the oldest queued byte
	size    int    // queued bytes
	lines   []queuedLine
	first   int // index in lines of the oldest queued line
	n       int // queued lines
	dropped int // lines dropped since the last queued one
	total   int // lines dropped since the start
	writing int // lines taken by the writer and not yet written
	closing bool
}

type queuedLine struct {
	size          int
	droppedBefore int // lines dropped just before this one
}

// New starts a sink writing to w; format ("text" or "json") is the
// format of its dropped-lines notice.
func New(w io.Writer, format string) *Sink {
	s := newSize(w, sinkLines, sinkBytes)
	var nb bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&nb, nil)
	if strings.EqualFold(format, "json") {
		h = slog.NewJSONHandler(&nb, nil)
	}
	s.notice = func(n int) []byte {
		nb.Reset()
		r := slog.NewRecord(time.Now(), slog.LevelWarn, fmt.Sprintf("log: dropped %d lines", n), 0)
		r.AddAttrs(slog.String("component", "log"), slog.Int("dropped", n))
		h.Handle(context.Background(), r)
		return nb.Bytes()
	}
	return s
}

func newSize(w io.Writer, lines, size int) *Sink {
	s := &Sink{w: w, wake: make(chan struct{}, 1), done: make(chan struct{}),
		buf: make([]byte, size), lines: make([]queuedLine, lines),
		notice: func(n int) []byte { return fmt.Appendf(nil, "log: dropped %d lines\n", n) }}
	go s.run()
	return s
}

// Write queues p, or drops it when the queue is full or the sink closed.
// It never fails and never waits for the writer.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closing {
		s.total++ // too late to report
		s.mu.Unlock()
		return len(p), nil
	}
	if s.n == len(s.lines) || len(p) > len(s.buf)-s.size {
		s.dropped++
		s.total++
		s.mu.Unlock()
		return len(p), nil
	}
	end := (s.start + s.size) % len(s.buf)
	c := copy(s.buf[end:], p)
	copy(s.buf, p[c:])
	s.lines[(s.first+s.n)%len(s.lines)] = queuedLine{size: len(p), droppedBefore: s.dropped}
	s.dropped = 0
	s.n++
	s.size += len(p)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// run writes the queue out, a batch at a time: the lines queued when it
// looks, up to the next gap, so that each notice lands where its lines
// are missing.
func (s *Sink) run() {
	defer close(s.done)
	batch := make([]byte, 0, len(s.buf))
	for {
		s.mu.Lock()
		for s.n == 0 && s.dropped == 0 {
			if s.closing {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		var gap int
		batch = batch[:0]
		if s.n == 0 {
			// Lines were dropped and none queued since: say so now
			// rather than at the next line, which may be long coming.
			gap, s.dropped = s.dropped, 0
		} else {
			gap = s.lines[s.first].droppedBefore
			k := 0
			for k < s.n && (k == 0 || s.lines[(s.first+k)%len(s.lines)].droppedBefore == 0) {
				size := s.lines[(s.first+k)%len(s.lines)].size
				from := (s.start + len(batch)) % len(s.buf)
				c := copy(batch[len(batch):len(batch)+size], s.buf[from:])
				copy(batch[len(batch)+c:len(batch)+size], s.buf)
				batch = batch[:len(batch)+size]
				k++
			}
			s.start = (s.start + len(batch)) % len(s.buf)
			s.size -= len(batch)
			s.first = (s.first + k) % len(s.lines)
			s.n -= k
			s.writing = k
		}
		s.mu.Unlock()
		// Write errors have nowhere to go: stderr is where they would be
		// reported.
		if gap > 0 {
			s.w.Write(s.notice(gap))
		}
		if len(batch) > 0 {
			s.w.Write(batch)
		}
		s.mu.Lock()
		s.writing = 0
		s.mu.Unlock()
	}
}

// Dropped counts the lines dropped since the start.
func (s *Sink) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops taking lines and writes out the queue, waiting at most
// timeout for the writer. It reports what was not written in time; the
// writer goroutine goes on until its current write returns.
func (s *Sink) Close(timeout time.Duration) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("log: %d lines not written to stderr within %s", s.n+s.writing, timeout)
}
