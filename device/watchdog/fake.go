package watchdog

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// fakeFedBuffer is how many feed times Fed holds before newer ones are
// dropped; Feeds still counts them all.
const fakeFedBuffer = 64

// Fake is a Device in memory, for tests and the simulated board. It
// records its feeds and its magic close, and can tell when a real board
// would have been reset. It is safe for concurrent use.
type Fake struct {
	timeout time.Duration
	fed     chan time.Time
	closed  chan struct{}

	mu       sync.Mutex
	last     time.Time
	feeds    int
	isClosed bool
	feedErr  error
}

var _ Device = (*Fake)(nil)

// NewFake returns an armed fake with the given timeout.
func NewFake(timeout time.Duration) *Fake {
	now := time.Now()
	return &Fake{
		timeout: timeout,
		fed:     make(chan time.Time, fakeFedBuffer),
		closed:  make(chan struct{}),
		last:    now,
	}
}

// Feed records a feed, or returns the error set by SetFeedError.
func (f *Fake) Feed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed {
		return fmt.Errorf("watchdog: feed fake: %w", os.ErrClosed)
	}
	if f.feedErr != nil {
		return f.feedErr
	}
	now := time.Now()
	f.feeds++
	f.last = now
	select {
	case f.fed <- now:
	default:
	}
	return nil
}

// Timeout is the timeout given to NewFake.
func (f *Fake) Timeout() time.Duration { return f.timeout }

// Close records the magic close.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed {
		return fmt.Errorf("watchdog: close fake: %w", os.ErrClosed)
	}
	f.isClosed = true
	close(f.closed)
	return nil
}

// Identity names the fake in status output.
func (f *Fake) Identity() string { return "fake watchdog" }

// Fed delivers the time of each feed, up to a buffer of 64 unread.
func (f *Fake) Fed() <-chan time.Time { return f.fed }

// Closed is closed by the magic close.
func (f *Fake) Closed() <-chan struct{} { return f.closed }

// MagicClosed reports whether Close was called.
func (f *Fake) MagicClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isClosed
}

// Feeds counts the successful feeds.
func (f *Fake) Feeds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.feeds
}

// LastFeed is the time of the last feed, or of NewFake before any.
func (f *Fake) LastFeed() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// SetFeedError makes Feed fail with err until it is called with nil.
func (f *Fake) SetFeedError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feedErr = err
}

// Expired reports whether a real watchdog would have reset the board by
// now: armed, not closed, and not fed within the timeout.
func (f *Fake) Expired(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.isClosed && now.Sub(f.last) > f.timeout
}
