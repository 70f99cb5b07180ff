// Package mdb carries MDB words between the bus and protocol/mdb's
// cashless Device: the Transport interface, its drivers (a byte stream
// over TCP or a tty for simulators and bus tools, the Pi's PL011 UART with
// mark/space parity) and the bus loop that cuts the bus into units, calls
// Device.Handle and writes the reply within the standard's 5 ms.
//
// # Transports
//
// A Transport reads and writes 9-bit words. ReadWord takes a deadline
// rather than a timeout so that the bus loop can cut a block at the
// inter-byte gap: once a block has begun, each further word must arrive
// within the gap, and a read that times out ends the block. The standard
// allows at most 1 ms between the bytes of a block (the end of one stop
// bit to the next start bit); at 9600 baud a byte takes 1.15 ms on the
// wire, so a driver that returns bytes as they are received sees them at
// most 2.15 ms apart. DefaultGap is that plus a little for the scheduler.
//
// Waiting for the gap after every block would spend half the 5 ms budget
// doing nothing, so the loop also cuts a block as soon as it is complete:
// a cashless block (address 10h or 60h) whose length the standard fixes
// by its command and sub-command, for the options protocol/mdb's Device
// offers (never 32-bit money or multi-currency, the options that lengthen
// Max/Min Prices, Vend Request and Cash Sale), is handed over the moment
// its last word has a good checksum. Anything else (blocks for other
// peripherals, sub-commands of options never offered, a corrupt block) is
// cut by the gap or by the next word with the mode bit, since the VMC
// starts every block with one.
//
// # The 5 ms budget
//
// Run is meant to have its own goroutine, which it locks to an OS thread.
// Nothing on the reply path allocates (preallocated unit and reply
// buffers, sentinel errors made once, a fixed-size latency histogram; the
// tests hold it to zero allocations per exchange over the fake), so the
// loop is never drafted into GC mark assists and never waits on the
// allocator. The package does not touch the global GC settings: a library
// must not, and with no allocation of its own the loop only meets the
// collector's stop-the-world phases, which are tens of microseconds; the
// latency benchmark runs an allocating goroutine beside the loop to show
// it. A program that wants a harder bound can set GOGC or GOMEMLIMIT
// itself. The thread lock gives the loop a thread, not a P: if every P
// is busy with CPU-bound work, the woken loop waits for one until the
// scheduler preempts it (the benchmark shows this on two cores with the
// collector kept busy), so a program using the loop must keep CPU-bound
// work off its Ps or give it fewer than GOMAXPROCS goroutines.
//
// Latency is measured from the moment the last word of a unit was read
// to the moment the reply was written: for the stream and the fake, when
// WriteWords returns; for the UART, when its first byte was handed to the
// kernel, which starts sending at once (its WriteWords returns only when
// the whole reply has drained, since each parity change waits for that).
// The time a word spends in the driver before the read returns is not
// seen; on a PL011 with its FIFO that is up to the receive timeout, about
// 32 bit times (3.3 ms at 9600 baud) unless the FIFO trigger is lowered,
// which is the first thing to measure on hardware. Stats reports the median, the 99th percentile, the maximum
// and the replies later than 5 ms.
package mdb

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// Transport reads and writes MDB words. One goroutine reads and writes
// (the bus loop); Close may be called from any goroutine and makes a
// pending ReadWord return.
type Transport interface {
	// ReadWord returns the next word received, waiting until deadline
	// (the zero time waits until a word arrives or Close). A deadline
	// that passes gives an error matching os.ErrDeadlineExceeded; a
	// link that dropped and is being re-established gives one matching
	// ErrDisconnected (the unit in progress is lost; call again); after
	// Close, one matching os.ErrClosed.
	ReadWord(deadline time.Time) (mdb.Word, error)
	// WriteWords puts words on the bus in order, as one burst.
	WriteWords(w []mdb.Word) error
	Close() error
}

// The transports' verdicts. They are made once: a quiet bus times out
// hundreds of times a second, and an error value made per read would
// allocate on the hot path.
var (
	// ErrTimeout is what ReadWord returns when its deadline passes.
	ErrTimeout = fmt.Errorf("mdb: read: %w", os.ErrDeadlineExceeded)
	// ErrDisconnected says the link dropped (a stream transport's peer
	// went away); the transport re-establishes it by itself.
	ErrDisconnected = errors.New("mdb: link down")
	// ErrClosed is what a transport returns after Close.
	ErrClosed = fmt.Errorf("mdb: transport: %w", os.ErrClosed)
	// ErrMiniUART refuses the Raspberry Pi's mini UART, which has no
	// parity and so cannot carry the mode bit.
	ErrMiniUART = errors.New("mdb: the Raspberry Pi mini UART (ttyS0) has no parity and cannot carry the MDB mode bit; use the PL011 (ttyAMA0: dtoverlay=disable-bt or miniuart-bt)")
)

// DefaultGap is the inter-byte gap after which a block is taken as
// ended: the standard's 1 ms between bytes plus one byte time at 9600
// baud (1.15 ms), plus 0.35 ms for the scheduler.
const DefaultGap = 2500 * time.Microsecond

// ReplyBudget is the standard's limit from the VMC's last byte to the
// peripheral's first; replies measured later count as late.
const ReplyBudget = 5 * time.Millisecond

// noDeadline is the zero time: no deadline.
var noDeadline time.Time
