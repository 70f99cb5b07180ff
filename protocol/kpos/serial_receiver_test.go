package kpos

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const lineWait = 5 * time.Second // bound on any single wait

// fakeLine is one opening of a serial line: the test plays KPOS on the
// other end. Like device/serial's ports, Close ends a Read in progress
// and Read then reports os.ErrClosed.
type fakeLine struct {
	in     *io.PipeReader // the kiosk reads what KPOS writes
	kpos   *io.PipeWriter
	out    *io.PipeWriter // the kiosk writes what KPOS reads
	answer *FrameReader
	closed atomic.Bool
}

func newFakeLine() *fakeLine {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	return &fakeLine{in: inR, kpos: inW, out: outW, answer: NewFrameReader(outR, 0)}
}

func (l *fakeLine) Read(b []byte) (int, error) {
	n, err := l.in.Read(b)
	if l.closed.Load() {
		return n, os.ErrClosed
	}
	return n, err
}

func (l *fakeLine) Write(b []byte) (int, error) { return l.out.Write(b) }

func (l *fakeLine) Close() error {
	l.closed.Store(true)
	l.in.Close()
	l.out.Close()
	return nil
}

// send writes a frame as KPOS; the kiosk reads it on Run's goroutine.
func (l *fakeLine) send(t *testing.T, n SerialNotification) {
	t.Helper()
	data, err := n.AppendData(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.kpos.Write(AppendFrame(nil, data)); err != nil {
		t.Fatal(err)
	}
}

// reply reads the kiosk's next 0026 and returns its resultCode.
func (l *fakeLine) reply(t *testing.T) string {
	t.Helper()
	data, err := l.answer.Next()
	if err != nil {
		t.Fatalf("no 0026: %v", err)
	}
	code, err := ParseSerialResponse(data)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// receiverGoroutines counts the goroutines running SerialReceiver code.
func receiverGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kpos.(*SerialReceiver)") {
			n++
		}
	}
	return n
}

// expectNoReceiverGoroutines waits until no goroutine runs
// SerialReceiver code. Run joins its goroutines, but one that has just
// called its deferred Done still shows the receiver's frames until it is
// descheduled, and no event marks that: the goroutine dump is read again
// every millisecond, up to a deadline, rather than spun on.
func expectNoReceiverGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(lineWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for receiverGoroutines() > 0 {
		select {
		case <-deadline.C:
			buf := make([]byte, 1<<20)
			t.Fatalf("SerialReceiver goroutines left behind:\n%s", buf[:runtime.Stack(buf, true)])
		case <-tick.C:
		}
	}
}

// startReceiver runs a receiver whose Open hands out the lines sent on
// lines (or fails with the errors sent there) and returns a channel that
// is closed when Run returns.
func startReceiver(ctx context.Context, lines <-chan any, h SerialNotificationFunc) <-chan struct{} {
	r := NewSerialReceiver(SerialReceiverConfig{
		Open: func() (io.ReadWriteCloser, error) {
			select {
			case l := <-lines:
				if err, ok := l.(error); ok {
					return nil, err
				}
				return l.(*fakeLine), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
	}, h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return done
}

func awaitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(lineWait):
		t.Fatal("Run did not return after cancel")
	}
}

// TestSerialReceiverStops: Run returns once its context ends, while
// serving a line or while waiting to reopen one, and leaves no goroutine
// behind; the line it served is closed.
func TestSerialReceiverStops(t *testing.T) {
	expectNoReceiverGoroutines(t)
	t.Run("serving", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		lines := make(chan any, 1)
		l := newFakeLine()
		lines <- l
		done := startReceiver(ctx, lines, func(context.Context, SerialNotification, []byte) (string, error) {
			return ResultSuccess, nil
		})
		l.send(t, goldenNotification)
		if code := l.reply(t); code != ResultSuccess { // Run is in its read loop now
			t.Fatalf("answered %s", code)
		}
		cancel()
		awaitDone(t, done)
		if !l.closed.Load() {
			t.Error("line left open")
		}
		expectNoReceiverGoroutines(t)
	})
	t.Run("reopening", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		lines := make(chan any) // unbuffered: a receive proves Open was called
		done := startReceiver(ctx, lines, nil)
		notThere := errors.New("no such device")
		lines <- notThere
		lines <- notThere // a second Open: the back-off has run once
		cancel()
		awaitDone(t, done)
		expectNoReceiverGoroutines(t)
	})
}

// TestSerialReceiverAnswers: the handler's code is the answer; a frame
// the handler could not record gets none, so KPOS sends it again; a line
// that ends is reopened.
func TestSerialReceiverAnswers(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines := make(chan any, 1)
	first := newFakeLine()
	lines <- first
	var calls atomic.Int32
	done := startReceiver(ctx, lines, func(_ context.Context, n SerialNotification, data []byte) (string, error) {
		if string(data[:4]) != "0025" || n.MRN != goldenMRN {
			t.Errorf("handler got %+v from %q", n, data)
		}
		if calls.Add(1) == 1 {
			return "", errors.New("journal full")
		}
		return "KP049", nil
	})
	first.send(t, goldenNotification) // not recorded: no answer
	first.send(t, goldenNotification) // the repeat: this answer is the first one
	if code := first.reply(t); code != "KP049" || calls.Load() != 2 {
		t.Fatalf("answered %s after %d handler calls", code, calls.Load())
	}
	second := newFakeLine()
	lines <- second
	first.kpos.Close() // the line ends (EOF): the receiver opens the next
	second.send(t, goldenNotification)
	if code := second.reply(t); code != "KP049" {
		t.Fatalf("after reopening: answered %s", code)
	}
	cancel()
	awaitDone(t, done)
}
