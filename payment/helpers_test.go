package payment

// The service tests' fakes and harness. The harness works on real time and
// inside a testing/synctest bubble alike; the tests of timeouts, graces
// and deadlines run in a bubble, where time is the bubble's fake clock.
// The journal is a real bbolt file there: file I/O inside a bubble is
// fine, it only is not "durably blocking", so synctest.Wait waits it out
// rather than treating it as idle.

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type sent struct {
	kind, txn, plan string
}

type fakeProvider struct {
	ready atomic.Bool
	sent  chan sent
	fail  error // returned by Request
}

func (p *fakeProvider) Name() string { return "mobypay" }
func (p *fakeProvider) Ready() error {
	if !p.ready.Load() {
		return errors.New("not connected")
	}
	return nil
}
func (p *fakeProvider) Request(t *Txn) error {
	p.sent <- sent{"request", t.ID, ""}
	return p.fail
}
func (p *fakeProvider) SelectPlan(t *Txn, id string) error {
	p.sent <- sent{"plan", t.ID, id}
	return nil
}
func (p *fakeProvider) Cancel(t *Txn) error { p.sent <- sent{"cancel", t.ID, ""}; return nil }

type fakeVender struct {
	mu     sync.Mutex
	pulls  []string
	pulses map[string]int // a train's pulses as the relay gave them, by txn
	err    error
	hang   bool // a relay that never answers: Vend returns when ctx ends
	failAt int  // a train's relay fails after this many pulses, reported (0: never)
	// crash, when set, is asked at each point of a train whether the
	// power goes there: before pulse k ("before"), with pulse k on
	// ("on"), pulse k ended but not reported ("ended"), reported
	// ("reported"). Yes ends Vend at once, as a power cut would.
	crash func(k int, phase string) bool
}

var errPowerCut = errors.New("power cut")

func (v *fakeVender) Vend(ctx context.Context, t Txn, progress func(int) error) error {
	v.mu.Lock()
	v.pulls = append(v.pulls, t.ID)
	err, hang, failAt, crash := v.err, v.hang, v.failAt, v.crash
	v.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if crash == nil {
		crash = func(int, string) bool { return false }
	}
	for k := 1; k <= t.PulsesTotal; k++ {
		if crash(k, "before") {
			return errPowerCut
		}
		v.mu.Lock()
		if v.pulses == nil {
			v.pulses = map[string]int{}
		}
		v.pulses[t.ID]++
		v.mu.Unlock()
		if crash(k, "on") || crash(k, "ended") {
			return errPowerCut
		}
		if err := progress(k); err != nil {
			return err
		}
		if crash(k, "reported") {
			return errPowerCut
		}
		if k == failAt {
			return errors.New("relay: GPIO17: line busy")
		}
	}
	return err
}

func (v *fakeVender) given(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pulses[id]
}

func (v *fakeVender) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.pulls)
}

type fakePrinter struct{ n atomic.Int32 }

func (p *fakePrinter) Receipt(Txn) { p.n.Add(1) }

type harness struct {
	t      *testing.T
	svc    *Service
	prov   *fakeProvider
	vend   *fakeVender
	print  *fakePrinter
	events <-chan Event
	j      *Journal
}

func fastConfig() Config {
	return Config{
		Timeouts: map[string]Timeouts{
			"card": {Ack: 5 * time.Second, Result: 5 * time.Second, Plan: 5 * time.Second},
			"ipp":  {Ack: 5 * time.Second, Result: 5 * time.Second, Plan: 5 * time.Second},
		},
		CancelGrace: 5 * time.Second, ReconnectGrace: 5 * time.Second,
		IPPAutoSelect: "none", SuccessAfterCancel: "vend",
	}
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h, _, _ := startAt(t, cfg, filepath.Join(t.TempDir(), "journal.db"))
	return h
}

// startAt is start on the journal file at path, recovered first as kioskd
// run does; stop ends the service and closes the journal, so that a test
// can start again on the same file (a restart).
func startAt(t *testing.T, cfg Config, path string) (h *harness, recovered []Txn, stop func()) {
	t.Helper()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if recovered, err = j.Recover(time.Now()); err != nil {
		j.Close()
		t.Fatal(err)
	}
	h = &harness{t: t, prov: &fakeProvider{sent: make(chan sent, 16)}, vend: &fakeVender{}, print: &fakePrinter{}, j: j}
	h.prov.ready.Store(true)
	h.svc = NewService(cfg, j, h.vend, h.print, h.prov)
	ev, unsub := h.svc.Subscribe()
	h.events = ev
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; unsub(); j.Close() }) }
	t.Cleanup(stop)
	return h, recovered, stop
}

// wait returns the first payment event for id that satisfies ok.
func (h *harness) wait(id string, ok func(Txn) bool) Txn {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, open := <-h.events:
			if !open {
				h.t.Fatalf("waiting on %s: dropped as a subscriber that fell behind", id)
			}
			if e.Txn != nil && e.Txn.ID == id && ok(*e.Txn) {
				return *e.Txn
			}
		case <-deadline:
			got, _ := h.j.Get(id)
			h.t.Fatalf("timed out waiting on %s; journal has %+v", id, got)
		}
	}
}

func (h *harness) state(id string, s State) Txn {
	h.t.Helper()
	return h.wait(id, func(t Txn) bool { return t.State == s })
}

func (h *harness) expectSent(kind string) sent {
	h.t.Helper()
	select {
	case s := <-h.prov.sent:
		if s.kind != kind {
			h.t.Fatalf("sent %s, want %s", s.kind, kind)
		}
		return s
	case <-time.After(10 * time.Second):
		h.t.Fatalf("nothing sent, want %s", kind)
	}
	return sent{}
}

func (h *harness) pay(mode string, amount Sen) Txn {
	h.t.Helper()
	tx, err := h.svc.Create(context.Background(), CreateRequest{Mode: mode, Amount: amount})
	if err != nil {
		h.t.Fatal(err)
	}
	h.expectSent("request")
	if tx.State != Sent {
		h.t.Fatalf("after create: %s", tx.State)
	}
	return tx
}

func ack(id, status string) Report {
	return Report{TxnID: id, Kind: ReportAck, Status: status, Evidence: Evidence{Type: "ack", Status: status}}
}

func success(id string, amount Sen) Report {
	return Report{TxnID: id, Kind: ReportApproved, Amount: &amount, POSTxnID: "000410", AuthCode: "A1",
		Evidence: Evidence{Type: "transaction_result", Status: "success"}}
}

func slowConfig() Config {
	cfg := fastConfig()
	cfg.Timeouts = map[string]Timeouts{
		"card": {Ack: 15 * time.Second, Result: 2 * time.Minute, Plan: time.Minute},
		"ipp":  {Ack: 15 * time.Second, Result: 2 * time.Minute, Plan: time.Minute},
	}
	cfg.CancelGrace, cfg.ReconnectGrace = 30*time.Second, 30*time.Second
	return cfg
}

var (
	linkDown = POSState{Provider: "mobypay", State: "disconnected"}
	linkUp   = POSState{Provider: "mobypay", State: "connected"}
)

// published counts the payment events published for id so far: one per
// step, whether committed then or held for the next commit (soon).
func (h *harness) published(id string) int {
	n := 0
	for {
		select {
		case e, open := <-h.events:
			if !open {
				h.t.Fatalf("counting writes for %s: dropped as a subscriber that fell behind", id)
			}
			if e.Txn != nil && e.Txn.ID == id {
				n++
			}
		default:
			return n
		}
	}
}

// journaled is id's record once the service has done all it can do at
// this instant. Only inside a synctest bubble: synctest.Wait returns when
// the loop is blocked on its select again (a loop inside a journal write
// is in a syscall, not durably blocked, so Wait waits for it), and time
// moves on only by the test's sleeps, so a deadline can be checked to the
// nanosecond on either side.
func (h *harness) journaled(id string) Txn {
	h.t.Helper()
	synctest.Wait()
	got, err := h.j.Get(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}
