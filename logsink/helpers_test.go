package logsink

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// stuckWriter blocks every Write until release is closed, like a serial
// console nobody drains (flow control held, a hung getty).
type stuckWriter struct {
	release chan struct{}
	entered chan struct{} // signalled when a Write is first blocked
	mu      sync.Mutex
	out     bytes.Buffer
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{release: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func (w *stuckWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

var (
	seqLineRE = regexp.MustCompile(`msg=line .*?\bi=(\d+)`)
	noticeRE  = regexp.MustCompile(`level=WARN msg="log: dropped (\d+) lines" component=log dropped=(\d+)`)
)

// checkSequence reads lines numbered 0..total-1 with drop notices among
// them: every number is either written once, in order, or counted by the
// notice that stands where it is missing. It returns the lines written
// and dropped.
func checkSequence(t *testing.T, out string, total int) (written, dropped int) {
	t.Helper()
	next := 0
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if m := noticeRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n <= 0 || m[1] != m[2] {
				t.Fatalf("bad notice %q", l)
			}
			next += n
			dropped += n
			continue
		}
		m := seqLineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a whole log line: %q", l)
		}
		if i, _ := strconv.Atoi(m[1]); i != next {
			t.Fatalf("line %d where %d was due (no notice for the gap)", i, next)
		}
		next++
		written++
	}
	if next != total {
		t.Fatalf("%d lines accounted for (%d written, %d dropped), want %d", next, written, dropped, total)
	}
	return written, dropped
}

// baudWriter is a serial console at a rate the test sets: each Write
// waits for byte credit that the test grants on a channel, so the rate is
// exact in synctest's fake time and nothing sleeps.
type baudWriter struct {
	grant   chan int
	credit  int
	mu      sync.Mutex
	out     bytes.Buffer
	written int
}

func (w *baudWriter) Write(p []byte) (int, error) {
	for w.credit < len(p) {
		w.credit += <-w.grant
	}
	w.credit -= len(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += len(p)
	return w.out.Write(p)
}
