package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/internal/cli"
)

// The regression test through `kioskd run` itself: with stderr stuck,
// the service still starts, answers the control API and stops on
// request (the flush on stop is bounded). Before the sink, the first log
// line blocked serve for good.
func TestRunWithStuckStderr(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, "")
	// stderr is a serial console nobody drains (flow control held, a
	// hung getty): a pipe nobody reads blocks every Write.
	unread, w := io.Pipe()
	defer unread.Close() // the blocked Writes return, failing
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := make(chan started, 1)
	exited := make(chan int, 1)
	go func() {
		exited <- runService(ctx, &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: w}, cfgPath, up)
	}()
	select {
	case <-up:
	case code := <-exited:
		t.Fatalf("run exited %d", code)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start with stderr stuck")
	}
	if code, out, errs := kioskd(t, "", "status", "-config", cfgPath); code != exitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ := kioskd(t, "", "logs", "-config", cfgPath)
	if code != exitOK || !strings.Contains(out, "kioskd started") {
		t.Fatalf("logs: exit %d\n%s", code, out)
	}
	cancel()
	select {
	case code := <-exited:
		if code != exitOK {
			t.Fatalf("run exited %d after a clean stop", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop with stderr stuck")
	}
}
