package mdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// startLoop runs a loop over tr for d until the test ends.
func startLoop(t testing.TB, tr devmdb.Transport, d *mdb.Device, opts devmdb.Options) *devmdb.Loop {
	t.Helper()
	l := devmdb.NewLoop(tr, d, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		tr.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	return l
}

func newDevice(t testing.TB) *mdb.Device {
	t.Helper()
	d, err := mdb.New(mdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitEvent waits for the device to report an event of kind.
func waitEvent(t testing.TB, d *mdb.Device, kind mdb.EventKind) mdb.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var evs []mdb.Event
	for {
		evs = d.Events(evs[:0])
		for _, e := range evs {
			if e.Kind == kind {
				return e
			}
		}
		select {
		case <-d.Notify():
		case <-timeout:
			t.Fatalf("no %v event", kind)
		}
	}
}

// session plays a whole card sale through v: setup, enable, vend
// request, the test's approval, vend success, session complete.
func session(t testing.TB, v *vmcsim.VMC, d *mdb.Device) {
	t.Helper()
	if _, err := v.Init(mdb.OptionAlwaysIdle); err != nil {
		t.Fatal(err)
	}
	if r, err := v.VendRequest(150, 12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend request: %v %v", r.Kind, err)
	}
	e := waitEvent(t, d, mdb.EventVendRequested)
	if e.Price != 150 || e.Item != 12 {
		t.Fatalf("vend requested %+v", e)
	}
	if err := d.Approve(e.Vend, e.Price); err != nil {
		t.Fatal(err)
	}
	ms, err := v.Poll()
	if err != nil || len(ms) != 1 || ms[0].Code != 0x05 || ms[0].Data[1] != 0 || ms[0].Data[2] != 150 {
		t.Fatalf("poll after approval: %v %v", ms, err)
	}
	if r, err := v.VendSuccess(12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend success: %v %v", r.Kind, err)
	}
	waitEvent(t, d, mdb.EventVendSucceeded)
	r, err := v.SessionComplete()
	if err != nil {
		t.Fatal(err)
	}
	ms, _ = v.Split(r.Data())
	if r.Kind == mdb.ReplyACK {
		ms, err = v.Poll()
	}
	if err != nil || len(ms) != 1 || ms[0].Code != 0x07 {
		t.Fatalf("session complete: %v %v", ms, err)
	}
	waitEvent(t, d, mdb.EventSessionCompleted)
}

func TestSessionOverFake(t *testing.T) {
	f := mdbtest.New()
	d := newDevice(t)
	l := startLoop(t, f, d, devmdb.Options{})
	session(t, vmcsim.New(f, mdb.AddrCashless1), d)
	if s := l.Stats(); s.Count == 0 || s.Late != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestGapCutsBlock: a VMC that stalls mid-block for longer than the gap
// has sent two fragments, not a block. The first is a block without its
// end (silence, as for any reception error), the second unmarked words
// (not handshakes the device is waiting for: silence); the repeat of the
// whole block is answered.
func TestGapCutsBlock(t *testing.T) {
	f := mdbtest.New()
	d := newDevice(t)
	var units [][]mdb.Word
	var gaps []bool
	startLoop(t, f, d, devmdb.Options{Trace: func(e devmdb.TraceEntry) {
		units = append(units, append([]mdb.Word(nil), e.Unit...))
		gaps = append(gaps, e.Gap)
	}})
	v := vmcsim.New(f, mdb.AddrCashless1)
	if _, err := v.Init(0); err != nil {
		t.Fatal(err)
	}
	vend := v.Block(3, 0x00, 0, 150, 0, 12)
	f.Send(vend[:3]...)
	f.Gap()
	if got := f.Handle(vend[3:]); got != nil {
		t.Fatalf("a block cut in two was answered: %03x", got)
	}
	if got := f.Handle(vend); len(got) != 1 || got[0] != mdb.Mark(mdb.ACK) {
		t.Fatalf("the whole block: %03x, want ACK", got)
	}
	// The fragments: the start cut by the gap, then each unmarked word
	// by itself (outside a block it can only be a handshake), then the
	// whole block, complete without the gap.
	n := len(units)
	if n < 6 || len(units[n-6]) != 3 || !gaps[n-6] || len(units[n-2]) != 1 || len(units[n-1]) != 7 || gaps[n-1] {
		t.Errorf("units %03x gaps %v", units[max(0, n-6):], gaps[max(0, n-6):])
	}
	// A block for another peripheral (a coin changer at 08h) has no
	// length known here: the gap ends it, and the next marked word, the
	// VMC's next block, would too.
	other := mdb.AppendCommand(nil, 0x0B, nil)
	other = append(other, mdb.AppendCommand(nil, 0x0A, []byte{1, 2})...)
	if got := f.Handle(other); got != nil {
		t.Fatalf("another peripheral's blocks answered: %03x", got)
	}
	if n := len(units); len(units[n-2]) != 2 || len(units[n-1]) != 4 || !gaps[n-2] || !gaps[n-1] {
		t.Errorf("other peripheral's units %03x gaps %v", units[n-2:], gaps[n-2:])
	}
}

// TestCompleteCutsAtOnce: a known block is handed over without waiting for
// the gap, which is set to an hour here: the reply comes anyway.
func TestCompleteCutsAtOnce(t *testing.T) {
	f := mdbtest.New()
	d := newDevice(t)
	startLoop(t, f, d, devmdb.Options{Gap: time.Hour})
	// POLL with no gap after it. (Sending it and then asking for the
	// reply raced the loop: a reply written before the ask was wiped.)
	got := f.HandleNoGap(mdb.AppendCommand(nil, 0x12, nil))
	var r mdb.Reply
	if err := mdb.ParseReply(&r, got); err != nil || r.Kind != mdb.ReplyData || r.Data()[0] != 0x00 {
		t.Fatalf("poll after power-up: %03x %v, want Just Reset", got, err)
	}
}

func TestSessionOverTCP(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := devmdb.OpenStream(ln.Device(), devmdb.StreamOptions{MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t)
	l := startLoop(t, st, d, devmdb.Options{})
	c := accept(t, ln)
	defer c.Close()
	sv := &mdbtest.StreamVMC{C: c}
	session(t, vmcsim.New(sv, mdb.AddrCashless1), d)
	if sv.Err != nil {
		t.Fatal(sv.Err)
	}
	s := l.Stats()
	t.Logf("TCP loopback reply latency over %d replies: p50 %v p99 %v max %v, late %d", s.Count, s.P50, s.P99, s.Max, s.Late)
	if s.Count < 10 {
		t.Errorf("stats %+v", s)
	}
}

func accept(t testing.TB, ln *mdbtest.Listener) net.Conn {
	t.Helper()
	select {
	case c := <-ln.Conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the device did not connect")
	}
	return nil
}

// TestRedial: the VMC (simulator) drops the connection mid-session; the
// device dials again and the VMC, starting over as after a power cycle,
// finds it answering. The vend requested before the drop is the payment
// side's to settle; the VMC's reset reports it.
func TestRedial(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := devmdb.OpenStream(ln.Device(), devmdb.StreamOptions{MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t)
	startLoop(t, st, d, devmdb.Options{})
	c := accept(t, ln)
	v := vmcsim.New(&mdbtest.StreamVMC{C: c}, mdb.AddrCashless1)
	if _, err := v.Init(mdb.OptionAlwaysIdle); err != nil {
		t.Fatal(err)
	}
	if r, err := v.VendRequest(150, 12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend request: %v %v", r.Kind, err)
	}
	c.Close()
	c = accept(t, ln)
	defer c.Close()
	sv := &mdbtest.StreamVMC{C: c}
	v = vmcsim.New(sv, mdb.AddrCashless1)
	if _, err := v.Init(mdb.OptionAlwaysIdle); err != nil {
		t.Fatalf("after the redial: %v", err)
	}
	if st.Connects() != 2 || st.Drops() != 1 {
		t.Errorf("connects %d drops %d", st.Connects(), st.Drops())
	}
	waitEvent(t, d, mdb.EventVendCancelled)
	if sv.Err != nil {
		t.Fatal(sv.Err)
	}
}

// TestRedialBackoff: nobody listening; the transport keeps dialling,
// with back-off, and reports the link down (not a failure) meanwhile.
func TestRedialBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	st, err := devmdb.OpenStream("tcp://"+addr, devmdb.StreamOptions{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var down int
	for range 5 {
		_, err := st.ReadWord(time.Now().Add(50 * time.Millisecond))
		if errors.Is(err, devmdb.ErrDisconnected) {
			down++
		} else if !errors.Is(err, devmdb.ErrTimeout) {
			t.Fatalf("ReadWord: %v", err)
		}
	}
	if down == 0 {
		t.Error("never reported the link down")
	}
	st.Close()
	if _, err := st.ReadWord(time.Time{}); !errors.Is(err, devmdb.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestOpenStreamErrors(t *testing.T) {
	if _, err := devmdb.OpenStream("tcp://nohost", devmdb.StreamOptions{}); err == nil {
		t.Error("tcp without a port accepted")
	}
	if _, err := devmdb.OpenStream("", devmdb.StreamOptions{}); err == nil {
		t.Error("empty device accepted")
	}
	_, err := devmdb.OpenStream("/dev/nonexistent-mdb", devmdb.StreamOptions{})
	if !errors.Is(err, errNotExistOrUnsupported(err)) {
		t.Errorf("missing tty: %v", err)
	}
}

// TestReplyPathAllocs: an exchange through the loop, from the VMC's
// block to the reply read back, allocates nothing, on either side.
func TestReplyPathAllocs(t *testing.T) {
	f := mdbtest.New()
	d := newDevice(t)
	startLoop(t, f, d, devmdb.Options{})
	v := vmcsim.New(f, mdb.AddrCashless1)
	if _, err := v.Init(0); err != nil {
		t.Fatal(err)
	}
	poll := mdb.AppendCommand(nil, 0x12, nil)
	f.Handle(poll)
	allocs := testing.AllocsPerRun(500, func() {
		if got := f.Handle(poll); len(got) != 1 {
			panic(fmt.Sprintf("poll: %03x", got))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per exchange, want 0", allocs)
	}
}

// noDeadlineSoon is a read deadline for words already sent: far enough
// not to matter, near enough that a bug fails the test instead of
// hanging it.
func noDeadlineSoon() time.Time { return time.Now().Add(5 * time.Second) }

// TestRETOverTCP: the VMC asks for the reply again (RET) and gets the
// same words; its NAK gets silence and the reply rides on the next poll.
func TestRETOverTCP(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := devmdb.OpenStream(ln.Device(), devmdb.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startLoop(t, st, newDevice(t), devmdb.Options{})
	c := accept(t, ln)
	defer c.Close()
	sv := &mdbtest.StreamVMC{C: c}
	v := vmcsim.New(sv, mdb.AddrCashless1)
	if r, err := v.Reset(); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("reset: %v %v", r.Kind, err)
	}
	v.NoHandshake = true
	if _, err := v.Poll(); err != nil {
		t.Fatal(err)
	}
	first := append([]mdb.Word(nil), v.Last...)
	again := v.Answer(mdb.RET)
	if len(again) != len(first) || again[0] != first[0] || len(first) != 2 {
		t.Fatalf("RET: %03x, first %03x", again, first)
	}
	if got := v.Answer(mdb.NAK); got != nil {
		t.Fatalf("NAK answered %03x", got)
	}
	v.NoHandshake = false
	ms, err := v.Poll()
	if err != nil || len(ms) != 1 || ms[0].Code != 0x00 {
		t.Fatalf("poll after NAK: %v %v, want Just Reset again", ms, err)
	}
}
