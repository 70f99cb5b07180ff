package main

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// logRing keeps the last lines the service logged, so a technician on the
// serial console can read them through the control API without a log
// file on a read-only root.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]string, n)} }

func (r *logRing) add(line string) {
	r.mu.Lock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// last returns up to n lines, oldest first.
func (r *logRing) last(n int) []string {
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
	ring *logRing
	text slog.Handler // formats into buf
	buf  *bytes.Buffer
	mu   *sync.Mutex
}

func newRingHandler(next slog.Handler, ring *logRing, level slog.Leveler) slog.Handler {
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
