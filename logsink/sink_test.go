package logsink

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Defect 4: a stderr that does not drain must not stop the service.
// 10,000 lines into a writer that blocks: every call returns (within a
// generous deadline), the lines that did not fit are dropped and
// counted, and once the writer moves again the count is written where
// the lines are missing. The ring behind `kioskd logs` keeps them all.
func TestLogSinkNeverBlocks(t *testing.T) {
	w := newStuckWriter()
	sink := New(w, "text")
	ring := NewRing(10000)
	log := slog.New(NewRingHandler(NewLogger(sink, "text", "info").Handler(), ring, slog.LevelInfo))
	const total = 10000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			log.Info("line", "i", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(w.release)
		t.Fatal("logging blocked on a stuck stderr")
	}
	if d := sink.Dropped(); d < total-2*sinkLines {
		t.Fatalf("%d lines dropped; the queue holds at most %d lines (and a batch in flight)", d, sinkLines)
	}
	if got := len(ring.Last(0)); got != total {
		t.Fatalf("ring kept %d lines, want all %d", got, total)
	}
	close(w.release)
	if err := sink.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	written, dropped := checkSequence(t, w.String(), total)
	if dropped != sink.Dropped() || written+dropped != total {
		t.Fatalf("written %d, dropped %d, sink counted %d", written, dropped, sink.Dropped())
	}
	// A closed sink takes no more lines (and never blocks either).
	log.Info("after close")
	if strings.Contains(w.String(), "after close") {
		t.Fatal("written after Close")
	}
}

// A drop with nothing logged after it is still reported once the writer
// is free, not only at the next line.
func TestLogSinkReportsDropsWhenIdle(t *testing.T) {
	w := newStuckWriter()
	sink := newSize(w, 2, 1<<10)
	// The worker is held in its write of line 0 before the rest come, so
	// that lines 1 and 2 fill the queue and 3 to 9 are dropped after the
	// last line queued. (Without the wait, when the worker took line 0
	// depended on the scheduler, and line 9 could be queued after the
	// drops, carrying their notice before it.)
	fmt.Fprintf(sink, "msg=line i=0\n")
	select {
	case <-w.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink's worker never wrote line 0")
	}
	for i := 1; i < 10; i++ {
		fmt.Fprintf(sink, "msg=line i=%d\n", i)
	}
	close(w.release)
	if err := sink.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The drops came after the last line queued, so no line carried their
	// notice: it is the last line, written once the writer was free.
	want := "msg=line i=0\nmsg=line i=1\nmsg=line i=2\nlog: dropped 7 lines\n"
	if out := w.String(); out != want || sink.Dropped() != 7 {
		t.Fatalf("dropped %d, output:\n%s\nwant:\n%s", sink.Dropped(), out, want)
	}
}

// The flood of the issue, on the image's console: stderr drained at
// 115200 baud (11,520 bytes/s) while the service logs a line every
// millisecond for 10 s, about nine times what the UART can carry. In
// fake time, a log call that waited on the console would take time; none
// does. The console is kept busy and what it cannot carry is counted.
func TestLogSinkAt115200Baud(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bytesPerSecond = 115200 / 10 // 8N1: ten bits a byte
		w := &baudWriter{grant: make(chan int)}
		stopUART := make(chan struct{})
		uartDone := make(chan struct{})
		go func() { // the UART: 1152 bytes of credit every 100 ms
			defer close(uartDone)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopUART:
					return
				case <-tick.C:
				}
				select {
				case w.grant <- bytesPerSecond / 10:
				case <-stopUART:
					return
				}
			}
		}()
		sink := New(w, "text")
		log := NewLogger(sink, "text", "info").With("component", "pos")
		start := time.Now()
		const total = 10000
		tick := time.NewTicker(time.Millisecond)
		var blocked int
		var longest time.Duration
		for i := range total {
			<-tick.C
			before := time.Now()
			log.Warn("line", "i", i, "peer", "127.0.0.3:41234", "reason", "not the POS session")
			if waited := time.Since(before); waited != 0 {
				blocked++
				longest = max(longest, waited)
			}
		}
		tick.Stop()
		if blocked > 0 {
			t.Errorf("%d of %d log calls waited on the console, the longest %s", blocked, total, longest)
		}
		flood := time.Since(start)
		w.mu.Lock()
		during := w.written
		w.mu.Unlock()
		// The console carries what it can meanwhile: at least what was
		// granted less one batch still being paid for.
		if min := int(flood.Seconds()*bytesPerSecond) - sinkBytes; during < min {
			t.Errorf("console wrote %d bytes during the %s flood, want at least %d", during, flood, min)
		}
		if err := sink.Close(time.Minute); err != nil {
			t.Fatal(err)
		}
		close(stopUART)
		<-uartDone
		w.mu.Lock()
		out := w.out.String()
		w.mu.Unlock()
		written, dropped := checkSequence(t, out, total)
		if dropped == 0 || dropped != sink.Dropped() {
			t.Fatalf("written %d, dropped %d, sink counted %d", written, dropped, sink.Dropped())
		}
		t.Logf("flood %s: %d lines written, %d dropped, %d bytes on the console during the flood", flood, written, dropped, during)
	})
}

func benchLogger(w io.Writer) *slog.Logger {
	return NewLogger(w, "text", "info").With("component", "pos")
}

func benchLog(b *testing.B, log *slog.Logger) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		log.Warn("connection refused", "peer", "127.0.0.3:41234", "reason", "another session is live", "n", i)
	}
}

// A log call through the sink against the floor: the same handler
// writing to io.Discard. "drained" has its writer goroutine writing to
// io.Discard; "stuck" drops every line.
func BenchmarkLogCall(b *testing.B) {
	b.Run("discard", func(b *testing.B) { benchLog(b, benchLogger(io.Discard)) })
	b.Run("sink-drained", func(b *testing.B) {
		sink := New(io.Discard, "text")
		defer sink.Close(time.Second)
		benchLog(b, benchLogger(sink))
	})
	b.Run("sink-stuck", func(b *testing.B) {
		w := newStuckWriter()
		sink := New(w, "text")
		defer func() { close(w.release); sink.Close(time.Second) }()
		benchLog(b, benchLogger(sink))
	})
}
