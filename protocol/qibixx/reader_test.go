package qibixx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/qibixx"
	"github.com/kioskd/kioskd/protocol/qibixx/qibixxsim"
)

const wait = 5 * time.Second

// rig is a Reader serving a loopback TCP link whose far end is the
// simulated board.
type rig struct {
	t      *testing.T
	r      *qibixx.Reader
	b      *qibixxsim.Board
	ln     net.Listener
	cancel context.CancelFunc
	served chan error
	queue  []mdb.Event
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRig(t *testing.T, cfg qibixx.Config) *rig {
	t.Helper()
	g := &rig{t: t, logs: &syncBuffer{}}
	cfg.Log = slog.New(slog.NewTextHandler(g.logs, nil))
	var err error
	if g.r, err = qibixx.New(cfg); err != nil {
		t.Fatal(err)
	}
	if g.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.ln.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	t.Cleanup(func() { g.stop() })
	g.connect(ctx)
	return g
}

// connect serves a new link to a new board and brings it up.
func (g *rig) connect(ctx context.Context) {
	g.t.Helper()
	c, err := net.Dial("tcp", g.ln.Addr().String())
	if err != nil {
		g.t.Fatal(err)
	}
	far, err := g.ln.Accept()
	if err != nil {
		g.t.Fatal(err)
	}
	g.served = make(chan error, 1)
	served := g.served
	go func() { served <- g.r.Serve(ctx, c) }()
	g.b = qibixxsim.New(far)
	if err := g.b.Up(wait); err != nil {
		g.t.Fatal(err)
	}
	g.want(mdb.EventEnabled)
}

func (g *rig) stop() {
	if g.cancel != nil {
		g.cancel()
		g.cancel = nil
		select {
		case <-g.served:
		case <-time.After(wait):
			g.t.Error("Serve did not return after the cancel")
		}
	}
}

// want waits for the next event of kind, skipping the state events
// (reset, enabled, session completed...) before it; a vend event of
// another kind fails the test.
func (g *rig) want(kind mdb.EventKind) mdb.Event {
	g.t.Helper()
	deadline := time.After(wait)
	for {
		for len(g.queue) > 0 {
			e := g.queue[0]
			g.queue = g.queue[1:]
			if e.Kind == kind {
				return e
			}
			if e.Vend != 0 || e.Kind == mdb.EventVendRefused {
				g.t.Fatalf("event %v %+v, want %v", e.Kind, e, kind)
			}
		}
		select {
		case <-g.r.Notify():
			g.queue = g.r.Events(g.queue)
		case <-deadline:
			g.t.Fatalf("no %v event within %s", kind, wait)
		}
	}
}

func (g *rig) choose(price string, item int) mdb.Event {
	g.t.Helper()
	if err := g.b.Request(price, item); err != nil {
		g.t.Fatal(err)
	}
	return g.want(mdb.EventVendRequested)
}

// The board is configured on every link: off, the address, currency and
// always idle, then on.
func TestReaderConfiguresBoard(t *testing.T) {
	g := newRig(t, qibixx.Config{Address: mdb.AddrCashless2, AlwaysIdle: true})
	got := g.b.SetConf()
	want := map[string]string{"mdb-addr": "0x60", "mdb-currency-code": "0x1458", "mdb-always-idle": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("SETCONF %s=%q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if s := g.r.State(); s != mdb.StateEnabled {
		t.Errorf("state %v after the VMC enabled the reader", s)
	}
}

// A whole sale: the VMC's request, kioskd's approval for the price,
// the VMC's success.
func TestReaderSale(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("1.50", 12)
	if e.Price != 150 || e.Item != 12 || e.Vend != 1 {
		t.Fatalf("vend requested %+v", e)
	}
	if err := g.r.Approve(e.Vend, 200); !errors.Is(err, mdb.ErrAmount) {
		t.Errorf("approve above the price: %v", err)
	}
	if err := g.r.Approve(e.Vend, 150); err != nil {
		t.Fatal(err)
	}
	if c, err := g.b.Answer(wait); err != nil || c != "C,VEND,1.50" {
		t.Fatalf("the board got %q %v, want C,VEND,1.50", c, err)
	}
	if err := g.r.Approve(e.Vend, 150); !errors.Is(err, mdb.ErrNoVend) {
		t.Errorf("a second approval: %v, want ErrNoVend", err)
	}
	g.b.Dispense()
	if s := g.want(mdb.EventVendSucceeded); s.Vend != 1 || s.Price != 150 || s.Item != 12 {
		t.Errorf("success %+v", s)
	}
	g.want(mdb.EventSessionCompleted)
	// The next customer.
	if e := g.choose("2", 3); e.Vend != 2 || e.Price != 200 {
		t.Errorf("the next request %+v", e)
	}
}

func TestReaderDeny(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("1.00", 5)
	if err := g.r.Deny(e.Vend); err != nil {
		t.Fatal(err)
	}
	if c, err := g.b.Answer(wait); err != nil || c != "C,STOP" {
		t.Fatalf("the board got %q %v, want C,STOP", c, err)
	}
	if err := g.r.Approve(e.Vend, 100); !errors.Is(err, mdb.ErrNoVend) {
		t.Errorf("approve after deny: %v", err)
	}
	g.want(mdb.EventSessionCompleted)
}

func TestReaderVendFailure(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("3.20", 7)
	g.r.Approve(e.Vend, 320)
	g.b.Answer(wait)
	g.b.Fail()
	if f := g.want(mdb.EventVendFailed); f.Vend != e.Vend || f.Price != 320 {
		t.Errorf("failure %+v", f)
	}
}

// The customer cancels at the machine while the payment runs: the
// vend is cancelled, not approved, and a late approval fails.
func TestReaderCancel(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("1.00", 1)
	g.b.Cancel()
	if c := g.want(mdb.EventVendCancelled); c.Vend != e.Vend || c.Approved || c.Cause != mdb.CauseVendCancel {
		t.Errorf("cancel %+v", c)
	}
	if err := g.r.Approve(e.Vend, 100); !errors.Is(err, mdb.ErrNoVend) {
		t.Errorf("approve after the cancel: %v", err)
	}
}

// A reset after the approval went out and before any report: the vend
// is unconfirmed (for review), and the VMC's late report of it finds no
// vend.
func TestReaderResetMidVend(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("1.00", 1)
	g.r.Approve(e.Vend, 100)
	g.b.Answer(wait)
	g.b.Reset()
	if u := g.want(mdb.EventVendUnconfirmed); u.Vend != e.Vend {
		t.Errorf("unconfirmed %+v", u)
	}
	g.b.Dispense()
	g.want(mdb.EventSessionCompleted)
	if strings.Count(g.logs.String(), "vend outcome for no approved vend") != 1 {
		t.Errorf("the late success is not logged as odd:\n%s", g.logs)
	}
	// A reset while the payment still runs cancels the vend.
	e = g.choose("1.00", 1)
	g.b.Reset()
	if c := g.want(mdb.EventVendCancelled); c.Vend != e.Vend || c.Cause != mdb.CauseReset {
		t.Errorf("reset while waiting: %+v", c)
	}
}

// No answer before MaxResponse less VendMargin: the reader denies the
// vend itself.
func TestReaderTimeout(t *testing.T) {
	g := newRig(t, qibixx.Config{MaxResponse: 1 * time.Second, VendMargin: 900 * time.Millisecond})
	e := g.choose("1.00", 1)
	if c, err := g.b.Answer(wait); err != nil || c != "C,STOP" {
		t.Fatalf("the board got %q %v, want C,STOP", c, err)
	}
	g.want(mdb.EventVendTimedOut)
	if err := g.r.Approve(e.Vend, 100); !errors.Is(err, mdb.ErrNoVend) && !errors.Is(err, mdb.ErrTooLate) {
		t.Errorf("approve after the timeout: %v", err)
	}
}

// Prices that are no price: refused with a C,STOP, no payment; one
// vend per session unless multivend.
func TestReaderRefuses(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	for _, line := range []string{"c,STATUS,VEND,1.005,1", "c,STATUS,VEND,0.00,1", "c,STATUS,VEND,abc,1", "c,STATUS,VEND,1.00,99999"} {
		g.b.Send(line)
		if c, err := g.b.Answer(wait); err != nil || c != "C,STOP" {
			t.Fatalf("%s: the board got %q %v", line, c, err)
		}
		if e := g.want(mdb.EventVendRefused); e.Cause != mdb.CausePrice || e.Price != -1 {
			t.Errorf("%s: %+v", line, e)
		}
	}
	e := g.choose("1.00", 1)
	g.r.Approve(e.Vend, 100)
	g.b.Answer(wait)
	g.b.Send("c,VEND,SUCCESS", "c,STATUS,IDLE", "c,STATUS,VEND,1.00,2")
	g.want(mdb.EventVendSucceeded)
	if c, err := g.b.Answer(wait); err != nil || c != "C,STOP" {
		t.Fatalf("second vend in a session: the board got %q %v", c, err)
	}
	if e := g.want(mdb.EventVendRefused); e.Cause != mdb.CauseMultivend {
		t.Errorf("second vend: %+v", e)
	}
}

// Garbage and overlong lines are refused and counted, logged a few
// times rather than once each, and the reader goes on selling.
func TestReaderGarbage(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	var junk []byte
	for i := range 200 {
		junk = append(junk, bytes.Repeat([]byte{byte(i)}, 3)...)
		junk = append(junk, '\n')
	}
	junk = append(junk, bytes.Repeat([]byte("c,STATUS,"), 1000)...)
	junk = append(junk, "\r\n"...)
	if err := g.b.SendRaw(junk); err != nil {
		t.Fatal(err)
	}
	e := g.choose("1.00", 4) // read after all the junk
	if g.r.Refused() < 100 {
		t.Errorf("%d lines refused", g.r.Refused())
	}
	if n := strings.Count(g.logs.String(), "line from the board refused"); n != 1 {
		t.Errorf("%d log lines for the junk, want 1 (rate-limited):\n%s", n, g.logs)
	}
	if err := g.r.Approve(e.Vend, 100); err != nil {
		t.Fatal(err)
	}
	if c, err := g.b.Answer(wait); err != nil || c != "C,VEND,1.00" {
		t.Fatalf("after the junk: %q %v", c, err)
	}
}

// The link drops: Serve returns its error, a vend waiting is cancelled
// and an approved one unconfirmed; Approve says the link is down; a new
// link configures the board again.
func TestReaderLinkDrop(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	e := g.choose("1.00", 1)
	g.r.Approve(e.Vend, 100)
	g.b.Answer(wait)
	g.b.Close()
	select {
	case err := <-g.served:
		if err == nil {
			t.Fatal("Serve returned nil for a dropped link")
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after the link dropped")
	}
	g.want(mdb.EventVendUnconfirmed)
	if s := g.r.State(); s != mdb.StateInactive {
		t.Errorf("state %v with no link", s)
	}
	if err := g.r.Deny(99); !errors.Is(err, mdb.ErrNoVend) {
		t.Errorf("deny with no link: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.connect(ctx)
	e = g.choose("2.00", 2)
	if e.Vend != 2 {
		t.Errorf("vend ids restart on a new link: %+v", e)
	}
	if g.r.Connects() != 2 || g.r.Drops() != 1 {
		t.Errorf("connects %d drops %d", g.r.Connects(), g.r.Drops())
	}
	g.b.Close()
	<-g.served
	g.want(mdb.EventVendCancelled)
	if err := g.r.Approve(e.Vend, 200); !errors.Is(err, mdb.ErrNoVend) {
		t.Errorf("approve after the drop: %v", err)
	}
	g.cancel = nil
}

// Stopping denies a vend still waiting and switches the slave off, so
// the VMC stops offering cashless.
func TestReaderStopSwitchesOff(t *testing.T) {
	g := newRig(t, qibixx.Config{})
	g.choose("1.00", 1)
	g.stop()
	if c, err := g.b.Next(wait); err != nil || c != "C,STOP" {
		t.Fatalf("first command after the stop %q %v, want C,STOP", c, err)
	}
	if err := g.b.Expect("C,0", wait); err != nil {
		t.Fatal(err)
	}
	g.want(mdb.EventVendCancelled)
}

// A board set to whole units: prices and approvals without decimals, and
// a price written with decimals is refused.
func TestReaderWholeUnits(t *testing.T) {
	g := newRig(t, qibixx.Config{Scale: mdb.Scale{Factor: 1, Decimals: 0}})
	e := g.choose("2", 1)
	if e.Price != 200 {
		t.Fatalf("vend requested %+v", e)
	}
	g.r.Approve(e.Vend, 200)
	if c, err := g.b.Answer(wait); err != nil || c != "C,VEND,2" {
		t.Fatalf("the board got %q %v", c, err)
	}
	g.b.Dispense()
	g.want(mdb.EventVendSucceeded)
	g.b.Send("c,STATUS,VEND,2.00,1")
	if e := g.want(mdb.EventVendRefused); e.Cause != mdb.CausePrice {
		t.Errorf("a price with decimals: %+v", e)
	}
	if _, err := qibixx.New(qibixx.Config{Scale: mdb.Scale{Factor: 5, Decimals: 2}}); !errors.Is(err, qibixx.ErrConfig) {
		t.Errorf("scale factor 5: %v", err)
	}
}
