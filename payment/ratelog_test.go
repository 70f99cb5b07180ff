package payment

import (
	"testing"
	"time"
)

func TestRateLog(t *testing.T) {
	r := rateLog{period: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	if ok, n := r.allow(t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := range 1000 {
		if ok, _ := r.allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("line %d let through inside the period", i)
		}
	}
	if ok, n := r.allow(t0.Add(10 * time.Second)); !ok || n != 1000 {
		t.Fatalf("after the period: %v %d", ok, n)
	}
}
