package watchdog

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	f := NewFake(time.Second)
	if f.Timeout() != time.Second || f.Feeds() != 0 || f.MagicClosed() {
		t.Fatal("fresh fake")
	}
	if !f.Expired(time.Now().Add(2 * time.Second)) {
		t.Fatal("an unfed fake does not expire")
	}
	// More feeds than Fed buffers: none may block.
	for range 2 * fakeFedBuffer {
		if err := f.Feed(); err != nil {
			t.Fatal(err)
		}
	}
	if f.Feeds() != 2*fakeFedBuffer || len(f.Fed()) != fakeFedBuffer {
		t.Fatalf("feeds %d, buffered %d", f.Feeds(), len(f.Fed()))
	}
	last := f.LastFeed()
	if f.Expired(last.Add(time.Second)) || !f.Expired(last.Add(time.Second+1)) {
		t.Fatal("expiry not at the timeout after the last feed")
	}

	boom := errors.New("boom")
	f.SetFeedError(boom)
	if err := f.Feed(); !errors.Is(err, boom) || f.Feeds() != 2*fakeFedBuffer {
		t.Fatalf("Feed: %v", err)
	}
	f.SetFeedError(nil)

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Closed():
	default:
		t.Fatal("Closed not closed")
	}
	if !f.MagicClosed() || f.Expired(last.Add(time.Hour)) {
		t.Fatal("a magic-closed fake still counts down")
	}
	if err := f.Feed(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Feed after Close: %v", err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}
