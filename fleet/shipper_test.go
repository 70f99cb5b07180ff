package fleet

import (
	"slices"
	"testing"
	"time"
)

func TestNotifyNeverBlocks(t *testing.T) {
	s, err := New(Config{Broker: "mqtt://127.0.0.1:1", KioskID: "k"}, newFakeJournal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 10000 {
			s.Notify()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("10,000 Notify calls with no shipper reading did not return in 5s")
	}
	if len(s.notify) != 1 {
		t.Errorf("%d notifications pending, want them coalesced into 1", len(s.notify))
	}
}

func TestAdvance(t *testing.T) {
	acked := map[uint64]bool{2: true, 3: true, 5: true}
	c, order := advance(1, []uint64{2, 3, 4, 5}, acked)
	if c != 3 || !slices.Equal(order, []uint64{4, 5}) {
		t.Errorf("advance = %d %v; want 3 [4 5]", c, order)
	}
}
