package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
)

// traceSrc is a bus trace the test feeds: what the daemon's ring would
// hold, and its readers.
type traceSrc struct {
	mu      sync.Mutex
	held    []control.MDBExchange
	readers []*traceRd
	closed  chan struct{} // a reader closed
}

type traceRd struct {
	src     *traceSrc
	ready   chan struct{}
	pending []control.MDBExchange
	dropped uint64
}

func newTraceSrc(n int) *traceSrc {
	s := &traceSrc{closed: make(chan struct{}, 16)}
	for i := range n {
		s.held = append(s.held, exchange(i))
	}
	return s
}

func exchange(i int) control.MDBExchange {
	return control.MDBExchange{Time: time.Unix(1700000000, int64(i)).UTC(), Unit: []string{"112", "012"}, Reply: []string{"100"}, LatencyUS: int64(i), Text: fmt.Sprintf("POLL -> ACK #%d", i)}
}

func (s *traceSrc) OpenMDBTrace(last int) (control.MDBTraceReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rd := &traceRd{src: s, ready: make(chan struct{}, 1)}
	rd.pending = append(rd.pending, s.held[len(s.held)-min(last, len(s.held)):]...)
	s.readers = append(s.readers, rd)
	return rd, nil
}

// put is an exchange on the bus; lost is how many each reader missed
// before it.
func (s *traceSrc) put(x control.MDBExchange, lost uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, x)
	for _, rd := range s.readers {
		rd.pending = append(rd.pending, x)
		rd.dropped += lost
		select {
		case rd.ready <- struct{}{}:
		default:
		}
	}
}

func (rd *traceRd) Ready() <-chan struct{} { return rd.ready }

func (rd *traceRd) Next(dst []control.MDBExchange) ([]control.MDBExchange, uint64) {
	rd.src.mu.Lock()
	defer rd.src.mu.Unlock()
	n := min(cap(dst)-len(dst), len(rd.pending))
	dst = append(dst, rd.pending[:n]...)
	rd.pending = rd.pending[n:]
	d := rd.dropped
	rd.dropped = 0
	return dst, d
}

func (rd *traceRd) Close() { rd.src.closed <- struct{}{} }

// traceServer serves only GET /v1/mdb/trace on a unix socket; ended
// receives each time a handler has returned.
type traceServer struct {
	c     *control.Client
	sock  string
	stop  chan struct{}
	ended chan struct{}
}

func startTraceServer(t *testing.T, src control.MDBTraceSource) *traceServer {
	t.Helper()
	ts := &traceServer{sock: filepath.Join(t.TempDir(), "ctl.sock"), stop: make(chan struct{}), ended: make(chan struct{}, 16)}
	ln, err := control.Listen(ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	h := control.MDBTraceHandler(src, ts.stop)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/mdb/trace", func(w http.ResponseWriter, r *http.Request) {
		h(w, r)
		ts.ended <- struct{}{}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	ts.c = control.NewClient(ts.sock)
	return ts
}

func (ts *traceServer) get(t *testing.T, path string) (int, string, []byte) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", ts.sock)
	}}}
	r, err := hc.Get("http://kioskd" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, r.Header.Get("Content-Type"), b
}

func waitCh(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
}

// TestMDBTraceOff: with [mdb] off the trace is refused as the API
// refuses, 404 with an Error body; a bad query is 400 either way.
func TestMDBTraceOff(t *testing.T) {
	ts := startTraceServer(t, nil)
	code, ct, body := ts.get(t, "/v1/mdb/trace")
	var e control.Error
	if code != http.StatusNotFound || ct != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("[mdb] off: %d %q %s", code, ct, body)
	}
	for _, q := range []string{"?last=-1", "?last=x", "?follow=maybe"} {
		if code, _, body := ts.get(t, "/v1/mdb/trace"+q); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, code, body)
		}
	}
	err := ts.c.MDBTrace(t.Context(), control.MDBTraceOptions{Last: 5}, func(control.MDBTraceLine) error { return nil })
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound || ae.Msg != e.Error {
		t.Fatalf("client with [mdb] off: %v", err)
	}
}

// TestMDBTraceLimit: at most MaxMDBTraceStreams streams at once; one
// more is refused 429 with an Error body, and a stream whose client went
// away gives its slot back.
func TestMDBTraceLimit(t *testing.T) {
	src := newTraceSrc(1)
	ts := startTraceServer(t, src)
	type open struct {
		cancel context.CancelFunc
		done   chan error
	}
	var streams []open
	for range control.MaxMDBTraceStreams {
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- ts.c.MDBTrace(ctx, control.MDBTraceOptions{Last: 1, Follow: true}, func(control.MDBTraceLine) error {
				select {
				case first <- struct{}{}:
				default:
				}
				return nil
			})
		}()
		waitCh(t, first, "held exchange on a stream")
		streams = append(streams, open{cancel, done})
	}
	code, ct, body := ts.get(t, "/v1/mdb/trace?follow=0")
	var e control.Error
	if code != http.StatusTooManyRequests || ct != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("one stream too many: %d %q %s", code, ct, body)
	}
	streams[0].cancel()
	if err := <-streams[0].done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled stream: %v", err)
	}
	waitCh(t, src.closed, "reader closed")
	waitCh(t, ts.ended, "handler returned")
	if code, _, body := ts.get(t, "/v1/mdb/trace?follow=0&last=1"); code != http.StatusOK {
		t.Fatalf("after one went away: %d %s", code, body)
	}
	// The daemon stopping ends every stream, cleanly.
	close(ts.stop)
	for _, s := range streams[1:] {
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("stream at stop: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream outlived the stop")
		}
	}
}

// TestMDBTraceFollow: the held exchanges first, then live ones as they
// come, and a line that counts the ones the stream lost; without follow
// the held ones and the end.
func TestMDBTraceFollow(t *testing.T) {
	src := newTraceSrc(5)
	ts := startTraceServer(t, src)
	var held []control.MDBTraceLine
	err := ts.c.MDBTrace(t.Context(), control.MDBTraceOptions{Last: 2}, func(l control.MDBTraceLine) error {
		held = append(held, l)
		return nil
	})
	if err != nil || len(held) != 2 || held[0].Text != "POLL -> ACK #3" || held[1].Text != "POLL -> ACK #4" {
		t.Fatalf("follow=0 last=2: %v %+v", err, held)
	}
	var all []control.MDBTraceLine
	err = ts.c.MDBTrace(t.Context(), control.MDBTraceOptions{Last: 50}, func(l control.MDBTraceLine) error {
		all = append(all, l)
		return nil
	})
	if err != nil || len(all) != 5 || all[0].Text != "POLL -> ACK #0" {
		t.Fatalf("follow=0 last=50 of 5 held: %v %+v", err, all)
	}
	if !held[1].Time.Equal(exchange(4).Time) || held[1].LatencyUS != 4 || len(held[1].Unit) != 2 || held[1].Reply[0] != "100" {
		t.Errorf("line as sent: %+v", held[1])
	}

	lines := make(chan control.MDBTraceLine, 16)
	done := make(chan error, 1)
	go func() {
		done <- ts.c.MDBTrace(t.Context(), control.MDBTraceOptions{Last: 1, Follow: true}, func(l control.MDBTraceLine) error {
			lines <- l
			return nil
		})
	}()
	next := func() control.MDBTraceLine {
		select {
		case l := <-lines:
			return l
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no line")
		}
		return control.MDBTraceLine{}
	}
	if l := next(); l.Text != "POLL -> ACK #4" {
		t.Fatalf("held: %+v", l)
	}
	src.put(exchange(5), 0)
	if l := next(); l.Text != "POLL -> ACK #5" || l.Dropped != 0 {
		t.Fatalf("live: %+v", l)
	}
	src.put(exchange(9), 3)
	if l := next(); l.Dropped != 3 || l.Text != "" {
		t.Fatalf("dropped line: %+v", l)
	}
	if l := next(); l.Text != "POLL -> ACK #9" {
		t.Fatalf("after the drop: %+v", l)
	}
	close(ts.stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("at stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream outlived the stop")
	}
}
