// Package mdbtest is an in-memory MDB transport for tests of the bus loop
// and of what sits on it: the device side is a device/mdb Transport, the
// VMC side a vmcsim Peripheral, so protocol/mdb/vmcsim can play the VMC
// through the real loop. It also has the VMC's end of the stream
// transport (StreamVMC), for tests over TCP or a pty.
package mdbtest

import (
	"sync"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// gapWord in the queue stands for the inter-byte gap having passed: the
// fake has no clock of its own, so the VMC side says where the gaps are
// and ReadWord times out there at once. That keeps the tests free of
// sleeps and of timing luck.
const gapWord mdb.Word = 0xFFFF

// Fake is an in-memory bus between one VMC and one device.
type Fake struct {
	mu     sync.Mutex
	in     []mdb.Word // VMC -> device, with gapWord marks
	head   int
	out    []mdb.Word // device -> VMC, since the last Handle
	writes int
	closed bool

	wake   chan struct{} // words were queued, or Close
	idle   chan struct{} // the reader found the queue empty
	timer  *time.Timer   // the reader's deadline
	wait   *time.Timer   // Handle's patience
	closeC chan struct{}

	// Wait bounds how long Handle waits for the device to take a unit
	// (default 5 s); a loop that never reads again makes Handle return
	// what was written so far instead of hanging the test.
	Wait time.Duration
}

// New makes a fake bus.
func New() *Fake {
	t := time.NewTimer(time.Hour)
	t.Stop()
	w := time.NewTimer(time.Hour)
	w.Stop()
	return &Fake{
		wait:   w,
		in:     make([]mdb.Word, 0, 1024),
		out:    make([]mdb.Word, 0, 256),
		wake:   make(chan struct{}, 1),
		idle:   make(chan struct{}, 1),
		closeC: make(chan struct{}),
		timer:  t,
		Wait:   5 * time.Second,
	}
}

// ReadWord implements devmdb.Transport.
func (f *Fake) ReadWord(deadline time.Time) (mdb.Word, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return 0, devmdb.ErrClosed
		}
		if f.head < len(f.in) {
			w := f.in[f.head]
			f.head++
			if f.head == len(f.in) {
				f.in, f.head = f.in[:0], 0
			}
			f.mu.Unlock()
			if w == gapWord {
				return 0, devmdb.ErrTimeout
			}
			return w, nil
		}
		// Nothing left: the device has handled everything it was sent.
		select {
		case f.idle <- struct{}{}:
		default:
		}
		f.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			f.timer.Reset(time.Until(deadline))
			expired = f.timer.C
		}
		select {
		case <-f.wake:
			f.timer.Stop()
		case <-f.closeC:
			f.timer.Stop()
		case <-expired:
			return 0, devmdb.ErrTimeout
		}
	}
}

// WriteWords implements devmdb.Transport.
func (f *Fake) WriteWords(w []mdb.Word) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return devmdb.ErrClosed
	}
	f.out = append(f.out, w...)
	f.writes++
	return nil
}

// Close implements devmdb.Transport.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.closeC)
	}
	return nil
}

// Send queues words for the device without waiting, with no gap after
// them; Gap queues a gap.
func (f *Fake) Send(words ...mdb.Word) {
	f.mu.Lock()
	f.in = append(f.in, words...)
	f.mu.Unlock()
	f.poke()
}

// Gap queues the inter-byte gap: the loop's next read times out there.
func (f *Fake) Gap() { f.Send(gapWord) }

func (f *Fake) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Handle plays one exchange from the VMC's side (it is a
// vmcsim.Peripheral): it sends in followed by a gap, waits until the loop
// has taken all of it and come back for more, and returns what the
// device wrote meanwhile (nil for silence). The result aliases the fake
// and is valid until the next call.
func (f *Fake) Handle(in []mdb.Word) []mdb.Word { return f.exchange(in, true) }

// HandleNoGap is Handle with no gap after in: a loop that answers it
// must have cut the unit by itself (a block complete by its length). A
// loop that waits for the gap instead comes back for more with nothing
// written, and HandleNoGap returns nil.
func (f *Fake) HandleNoGap(in []mdb.Word) []mdb.Word { return f.exchange(in, false) }

func (f *Fake) exchange(in []mdb.Word, gap bool) []mdb.Word {
	f.mu.Lock()
	select {
	case <-f.idle: // stale: from before these words
	default:
	}
	f.out = f.out[:0]
	f.in = append(f.in, in...)
	if gap {
		f.in = append(f.in, gapWord)
	}
	f.mu.Unlock()
	f.poke()
	// One timer, reset per call: Handle runs inside allocation tests.
	f.wait.Reset(f.Wait)
	select {
	case <-f.idle:
	case <-f.wait.C:
	case <-f.closeC:
	}
	f.wait.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.out) == 0 {
		return nil
	}
	return f.out
}

// Writes is how many times the device side wrote.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}
