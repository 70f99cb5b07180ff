package logsink

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestLogRingKeepsTheLast(t *testing.T) {
	r := NewRing(3)
	if got := r.Last(10); len(got) != 0 {
		t.Fatalf("empty ring: %q", got)
	}
	for i := range 5 {
		r.add(fmt.Sprint(i))
	}
	if got := strings.Join(r.Last(0), ","); got != "2,3,4" {
		t.Fatalf("last(0) = %s", got)
	}
	if got := strings.Join(r.Last(2), ","); got != "3,4" {
		t.Fatalf("last(2) = %s", got)
	}
}

// The ring keeps text lines whatever the console's format, and only at
// the level asked for.
func TestRingHandlerKeepsTextAtTheLevel(t *testing.T) {
	var out strings.Builder
	ring := NewRing(10)
	log := slog.New(NewRingHandler(NewLogger(&out, "json", "warn").Handler(), ring, Level("warn"))).With("component", "pos")
	log.Info("quiet")
	log.Warn("loud", "n", 1)
	got := ring.Last(0)
	if len(got) != 1 || !strings.Contains(got[0], `level=WARN msg=loud component=pos n=1`) {
		t.Fatalf("ring: %q", got)
	}
	if !strings.Contains(out.String(), `"msg":"loud"`) || strings.Contains(out.String(), "quiet") {
		t.Fatalf("console: %s", out.String())
	}
}
