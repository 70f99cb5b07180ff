package logsink

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Ring keeps the last lines the service logged, so a technician on the
// serial console can read them through the control API without a log
// file on a read-only root.
type Ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

// NewRing keeps the last n lines.
func NewRing(n int) *Ring { return &Ring{lines: make([]string, n)} }

func (r *Ring) add(line string) {
	r.mu.Lock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// Last returns up to n lines (all it keeps for n <= 0), oldest first.
func (r *Ring) Last(n int) []string {
	if r == nil { // a daemon run without a ring (tests) keeps no lines
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// ringHandler formats each record as one text line into the ring and
// passes it on to the real handler.
type ringHandler struct {
	next slog.Handler
	ring *Ring
	text slog.Handler // formats into buf
	buf  *bytes.Buffer
	mu   *sync.Mutex
}

// NewRingHandler returns a handler that keeps each record, formatted
// as text, in ring and passes it on to next.
func NewRingHandler(next slog.Handler, ring *Ring, level slog.Leveler) slog.Handler {
	buf := &bytes.Buffer{}
	return &ringHandler{next: next, ring: ring, buf: buf, mu: &sync.Mutex{},
		text: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})}
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	if h.text.Handle(ctx, r) == nil {
		h.ring.add(string(bytes.TrimRight(h.buf.Bytes(), "\n")))
	}
	h.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{next: h.next.WithAttrs(as), ring: h.ring, text: h.text.WithAttrs(as), buf: h.buf, mu: h.mu}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring, text: h.text.WithGroup(name), buf: h.buf, mu: h.mu}
}

// Level parses a log level name ("debug", "info", "warn", "error"); a
// name it does not know is info. The config is validated before the
// logger is made, so nothing unknown reaches here from run.
func Level(level string) slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	return lvl
}

// NewLogger builds a logger writing one line per event on w, as JSON
// for format "json", else as text.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: Level(level)}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
