package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// mdbTraceLineRE is a line of kioskd mdb trace: the time, the exchange
// decoded, and the reply's latency if there was a reply.
var mdbTraceLineRE = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} \S.* -> \S.*?( \(\d+µs\))?$`)

// lineWriter hands each line written to it to a channel, for a test
// that waits for a line of a command still running.
type lineWriter struct {
	ch  chan string
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.ch <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// TestMDBTraceThroughDaemon: a VMC drives a kioskd process through init
// and a vend; kioskd mdb trace -follow=false, from the daemon's control
// socket, prints each exchange decoded as the bench tool does, across a
// reconnect of the bus; the live trace prints the next vend as it
// happens and ends with its context, -duration and the daemon's stop;
// GET /v1/mdb/trace's lines are as docs/control-api.json has them.
func TestMDBTraceThroughDaemon(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, cfgPath := mdbDaemon(t, "stream", ln.Device())
	stop := approvingPOS(t, d)
	defer stop()
	vmc := &mdbVMC{t: t, ln: ln}
	// The first bus, dropped after init: its exchanges stay in the trace
	// as the reader dials the VMC again.
	vmc.connect()
	vmc.c.Close()
	vmc.connect()
	defer vmc.c.Close()
	vmc.vend(150, 12)

	code, out, errs := kioskd(t, "", "mdb", "trace", "-config", cfgPath, "-follow=false", "-last", "1024")
	if code != exitOK {
		t.Fatalf("kioskd mdb trace -follow=false: exit %d\n%s", code, errs)
	}
	resets := 0
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		if !mdbTraceLineRE.MatchString(l) {
			t.Errorf("not a trace line: %q", l)
		}
		if strings.Contains(l, " RESET -> ACK (") {
			resets++
		}
	}
	for _, want := range []string{
		" RESET -> ACK (",
		" POLL -> JUST RESET (",
		" SETUP CONFIG level=3 cols=0 rows=0 display=0 -> READER CONFIG level=3 ",
		" EXPANSION REQUEST ID mfr=",
		" -> PERIPHERAL ID mfr=",
		" READER ENABLE -> ACK (",
		" VEND REQUEST price=150 item=12 -> ACK (",
		" POLL -> VEND APPROVED 150 (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	if resets != 2 {
		t.Errorf("%d resets in the trace, want one per bus", resets)
	}
	if t.Failed() {
		t.Fatalf("trace:\n%s", out)
	}
	t.Logf("held trace, %d lines; the vend:\n%s", strings.Count(out, "\n"), tail(out, 3))

	// Live: a trace that starts with nothing held prints the next vend
	// as the VMC asks for it, and stops when its context ends.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lw := &lineWriter{ch: make(chan string, 1024)}
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- runMdbTrace(ctx, &cli.Env{Stdout: lw, Stderr: &stderr}, []string{"-config", cfgPath, "-last", "0"})
	}()
	// The stream is open once the daemon's ring has a reader; a POLL
	// every 20 ms until the trace prints one says so.
	waitLine := func(want string, each func()) string {
		t.Helper()
		deadline := time.After(20 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case l := <-lw.ch:
				if !mdbTraceLineRE.MatchString(l) {
					t.Errorf("live: not a trace line: %q", l)
				}
				if strings.Contains(l, want) {
					return l
				}
			case <-tick.C:
				if each != nil {
					each()
				}
			case code := <-done:
				t.Fatalf("live trace exited %d waiting for %q: %s", code, want, stderr.String())
			case <-deadline:
				t.Fatalf("live trace: no %q", want)
			}
		}
	}
	waitLine(" POLL -> ", func() { vmc.v.Poll() })
	if r, err := vmc.v.VendSuccess(12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend success: %v %v", r.Kind, err)
	}
	t.Logf("live: %s", waitLine(" VEND SUCCESS item=12 -> ACK (", nil))
	vmc.v.SessionComplete()
	vmc.pollFor(0x07, 5*time.Second) // End Session
	waitLine(" POLL -> END SESSION (", nil)
	vmc.v.VendRequest(200, 3)
	t.Logf("live: %s", waitLine(" VEND REQUEST price=200 item=3 -> ACK (", nil))
	vmc.pollFor(0x05, 20*time.Second)
	t.Logf("live: %s", waitLine(" POLL -> VEND APPROVED 200 (", nil))
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("live trace: exit %d, want 0 on its context's end: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live trace did not stop")
	}
	// -duration ends it by itself.
	if code, _, errs := kioskd(t, "", "mdb", "trace", "-config", cfgPath, "-last", "0", "-duration", "50ms"); code != exitOK {
		t.Fatalf("-duration: exit %d %s", code, errs)
	}
	checkMDBTraceAPI(t, d)

	// The daemon stopping ends a live trace, which says so.
	lw = &lineWriter{ch: make(chan string, 16)}
	stderr.Reset()
	go func() {
		done <- runMdbTrace(t.Context(), &cli.Env{Stdout: lw, Stderr: &stderr}, []string{"-config", cfgPath, "-last", "1"})
	}()
	waitLine(" -> ", nil)
	stopDaemon(t, d)
	select {
	case code := <-done:
		if code != exitUnreachable || !strings.Contains(stderr.String(), "the daemon ended the trace") {
			t.Fatalf("live trace at the daemon's stop: exit %d %q, want 4 and why", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live trace outlived the daemon")
	}
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return strings.Join(ls[max(len(ls)-n, 0):], "\n")
}

// checkMDBTraceAPI: GET /v1/mdb/trace answers NDJSON whose every line
// holds to the document's x-line-schema.
func checkMDBTraceAPI(t *testing.T, d *daemon) {
	t.Helper()
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	const op = "GET /v1/mdb/trace"
	mt := doc.response(op, "200")["content"].(map[string]any)["application/x-ndjson"].(map[string]any)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.c.Socket())
		}}}
	r, err := hc.Get("http://kioskd/v1/mdb/trace?follow=0&last=20")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%s: %s %q", op, r.Status, r.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(r.Body)
	n := 0
	for sc.Scan() {
		v, err := decodeJSON(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v: %s", op, err, sc.Bytes())
		}
		for _, e := range doc.check("line", mt["x-line-schema"].(map[string]any), v) {
			t.Errorf("%s: %s", op, e)
		}
		n++
	}
	if err := sc.Err(); err != nil || n != 20 {
		t.Fatalf("%s: %d lines, want 20: %v", op, n, err)
	}
}
