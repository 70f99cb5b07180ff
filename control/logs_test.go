package control

import (
	"context"
	"net/http"
	"slices"
	"testing"
)

func TestLogsHandler(t *testing.T) {
	kept := []string{"a", "b", "c"}
	var asked []int
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/logs", LogsHandler(func(n int) []string {
		asked = append(asked, n)
		if n > 0 && n < len(kept) {
			return kept[len(kept)-n:]
		}
		return kept
	}))
	mux.HandleFunc("GET /none/v1/logs", LogsHandler(nil))
	c := serveSocket(t, mux)
	got, err := c.Logs(context.Background(), 2)
	if err != nil || !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("Logs(2) = %q, %v", got, err)
	}
	if got, err := c.Logs(context.Background(), 0); err != nil || len(got) != 3 {
		t.Fatalf("Logs(0) = %q, %v", got, err)
	}
	if !slices.Equal(asked, []int{2, 0}) {
		t.Errorf("asked for %v", asked)
	}
	var none []string
	if err := c.get(context.Background(), "/none/v1/logs", &none); err != nil || none == nil || len(none) != 0 {
		t.Errorf("no lines kept: %q (nil %v), %v", none, none == nil, err)
	}
}
