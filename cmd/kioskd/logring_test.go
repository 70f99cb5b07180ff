package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestLogRingKeepsTheLast(t *testing.T) {
	r := newLogRing(3)
	if got := r.last(10); len(got) != 0 {
		t.Fatalf("empty ring: %q", got)
	}
	for i := range 5 {
		r.add(fmt.Sprint(i))
	}
	if got := strings.Join(r.last(0), ","); got != "2,3,4" {
		t.Fatalf("last(0) = %s", got)
	}
	if got := strings.Join(r.last(2), ","); got != "3,4" {
		t.Fatalf("last(2) = %s", got)
	}
}
