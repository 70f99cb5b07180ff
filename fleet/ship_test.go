package fleet

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/payment"
)

// testConfig points a kiosk at the test's broker, with a reconnect
// back-off of milliseconds.
func testConfig(b *fleettest.Broker, kiosk string) Config {
	return Config{Broker: b.URL(), KioskID: kiosk, Version: "test",
		backoff: func(n int) time.Duration {
			if n == 0 {
				return 0
			}
			return 50 * time.Millisecond
		}}
}

type running struct {
	s      *Shipper
	cancel context.CancelFunc
	done   chan error
}

// runShipper starts a shipper over j; the test's end stops it.
func runShipper(t *testing.T, cfg Config, j *fakeJournal, status func() Status) *running {
	t.Helper()
	s, err := New(cfg, j, status)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.notify = s.Notify
	j.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop is the clean stop; crash is a kill: no cursor flush, no offline
// status, no DISCONNECT, the socket just closes.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15s after its context ended")
	}
	r.done = nil
}

func (r *running) crash(t *testing.T) {
	t.Helper()
	r.s.abrupt.Store(true)
	r.stop(t)
}

// startAudit runs the consumer until done says the report is complete
// (or a minute); it returns once the consumer listens.
func startAudit(t *testing.T, b *fleettest.Broker, done func(*collector) bool) <-chan Report {
	t.Helper()
	out := make(chan Report, 1)
	ready := make(chan struct{})
	go func() {
		r, err := audit(context.Background(), Config{Broker: b.URL(), backoff: testConfig(b, "").backoff}, time.Minute, ready, done)
		if err != nil {
			t.Errorf("audit: %v", err)
		}
		out <- r
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("audit not subscribed after 10s")
	}
	return out
}

func until(kiosk string, seqs int) func(*collector) bool {
	return func(c *collector) bool { return c.events(kiosk) >= seqs }
}

func waitReport(t *testing.T, c <-chan Report) Report {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(90 * time.Second):
		t.Fatal("no audit report after 90s")
		return Report{}
	}
}

// checkStream: every seq 1..n seen, none differing from its resend.
func checkStream(t *testing.T, r Report, kiosk string, n int, allowDup bool) {
	t.Helper()
	k := r.Kiosks[kiosk]
	if k == nil {
		t.Fatalf("audit saw nothing of %s: %+v", kiosk, r)
	}
	if k.Events != n || k.Lowest != 1 || k.Highest != uint64(n) || len(k.Gaps) > 0 {
		t.Errorf("%s: %d events, seqs %d..%d, gaps %v; want %d events 1..%d, no gap", kiosk, k.Events, k.Lowest, k.Highest, k.Gaps, n, n)
	}
	if len(k.Conflicts) > 0 {
		t.Errorf("%s: duplicates that differ in content at seqs %v", kiosk, k.Conflicts)
	}
	if !allowDup && k.Duplicates > 0 {
		t.Errorf("%s: %d duplicates with no reconnect", kiosk, k.Duplicates)
	}
	if r.Undecodable > 0 || k.BadSchema > 0 || len(k.Tombstones) > 0 {
		t.Errorf("%s: %d undecodable, %d bad schema, tombstones %v", kiosk, r.Undecodable, k.BadSchema, k.Tombstones)
	}
	t.Logf("%s: %d events, %d duplicates, %d out of order", kiosk, k.Events, k.Duplicates, k.OutOfOrder)
}

func TestShip1000(t *testing.T) {
	b := fleettest.Start(t)
	j := newFakeJournal()
	j.add(1000)
	rep := startAudit(t, b, until("k1", 1000))
	sh := runShipper(t, testConfig(b, "k1"), j, nil)
	j.waitCursor(t, 1000, 30*time.Second)
	r := waitReport(t, rep)
	checkStream(t, r, "k1", 1000, false)
	if k := r.Kiosks["k1"]; k.OutOfOrder > 0 {
		t.Errorf("%d events arrived after a higher seq: the wire order is not the seq order", k.OutOfOrder)
	}
	st := sh.s.Stats()
	if st.ShippedSeq != 1000 || st.Shipped != 1000 || st.Lag != 0 || !st.Connected {
		t.Errorf("Stats = %+v; want 1000 shipped, cursor 1000, no lag, connected", st)
	}
	if j.saves > 1000/flushCount+20 {
		t.Errorf("%d SetShipped for 1000 records: the cursor writes are not batched", j.saves)
	}
	t.Logf("%d SetShipped calls for 1000 records", j.saves)
}

func TestShipBrokerDownMiddleThird(t *testing.T) {
	b := fleettest.Start(t)
	j := newFakeJournal()
	rep := startAudit(t, b, until("k2", 900))
	sh := runShipper(t, testConfig(b, "k2"), j, nil)
	j.add(300)
	j.waitCursor(t, 300, 30*time.Second)
	b.Stop()
	j.add(300) // appended while the broker is away
	b.Resume()
	j.add(300)
	j.waitCursor(t, 900, 60*time.Second)
	r := waitReport(t, rep)
	checkStream(t, r, "k2", 900, true)
	if st := sh.s.Stats(); st.ShippedSeq != 900 || st.Lag != 0 {
		t.Errorf("Stats = %+v; want the cursor caught up at 900", st)
	}
	sh.stop(t)
	if st := sh.s.Stats(); st.Connected {
		t.Errorf("Stats = %+v after Run returned; want not connected", st)
	}
}

// TestShipCrashes kills the shipper at several points mid-stream (no
// cursor flush, the socket just closes) and restarts the broker once;
// a new Shipper over the same journal carries on from its durable
// cursor. Every seq arrives, resends are identical.
func TestShipCrashes(t *testing.T) {
	b := fleettest.Start(t)
	j := newFakeJournal()
	const trials, per = 8, 1000
	rep := startAudit(t, b, until("k3", trials*per))
	for i := range trials {
		from := uint64(len(j.recs))
		j.mu.Lock()
		j.readAt = from + 100 + uint64(i)*97 // a different point each time
		j.mu.Unlock()
		j.add(per)
		sh := runShipper(t, testConfig(b, "k3"), j, nil)
		if i == trials/2 {
			b.Restart() // mid-stream, records in flight
		}
		// Crash when the shipper reads past readAt: publishes are in
		// flight and acknowledged ones are not all saved.
		select {
		case <-j.reached:
		case <-time.After(60 * time.Second):
			t.Fatalf("trial %d: the shipper never read past %d", i, j.readAt)
		}
		sh.crash(t)
		t.Logf("trial %d: crashed with the cursor at %d, %d records in the journal", i, j.cursor(), len(j.recs))
	}
	sh := runShipper(t, testConfig(b, "k3"), j, nil)
	j.waitCursor(t, trials*per, 60*time.Second)
	r := waitReport(t, rep)
	checkStream(t, r, "k3", trials*per, true)
	sh.stop(t)
	if k := r.Kiosks["k3"]; k.Duplicates == 0 {
		t.Errorf("no resend after %d crashes: the crashes did not hit mid-stream", trials)
	}
}

// TestShipRefusedRecord: a record over the broker's size limit is
// refused (PUBACK 0x95) on every try; it becomes a tombstone and the
// stream goes on, with no gap.
func TestShipRefusedRecord(t *testing.T) {
	b := fleettest.Start(t, "message_size_limit 4000")
	j := newFakeJournal()
	j.add(5)
	j.mu.Lock()
	j.recs[2].Evidence = &payment.Evidence{Seq: 3, TxnID: j.recs[2].Txn.ID, Type: "transaction_result", Payload: strings.Repeat("x", 5000)}
	j.mu.Unlock()
	rep := startAudit(t, b, until("k6", 5))
	sh := runShipper(t, testConfig(b, "k6"), j, nil)
	j.waitCursor(t, 5, 30*time.Second)
	r := waitReport(t, rep)
	k := r.Kiosks["k6"]
	if k == nil || k.Events != 5 || len(k.Gaps) > 0 || !slices.Equal(k.Tombstones, []uint64{3}) || len(k.Conflicts) > 0 {
		t.Fatalf("report %+v; want seqs 1..5 with 3 a tombstone", k)
	}
	if st := sh.s.Stats(); st.Refused != 1 || st.ShippedSeq != 5 || st.LastError == "" {
		t.Errorf("Stats = %+v; want 1 refused, cursor 5, the refusal as last error", st)
	}
}

// statuses subscribes and passes kiosk's statuses on.
func statuses(t *testing.T, b *fleettest.Broker, kiosk string) <-chan Status {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan Status, 100)
	ready := make(chan struct{})
	if _, err := subscribe(ctx, Config{Broker: b.URL(), backoff: testConfig(b, "").backoff}, ready, func(topic string, p []byte) {
		if topic != StatusTopic(kiosk) {
			return
		}
		var st Status
		if err := json.Unmarshal(p, &st); err != nil {
			t.Errorf("status %q: %v", p, err)
			return
		}
		select {
		case out <- st:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed after 10s")
	}
	return out
}

func waitStatus(t *testing.T, c <-chan Status, online bool) Status {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case st := <-c:
			if st.Online == online {
				return st
			}
		case <-deadline:
			t.Fatalf("no status online=%v within 20s", online)
		}
	}
}

func TestStatusRetainedAndWill(t *testing.T) {
	b := fleettest.Start(t)
	j := newFakeJournal()
	j.add(3)
	health := func() Status { return Status{POS: "up", Printer: "ok", PendingReviews: 2} }
	sh := runShipper(t, testConfig(b, "k4"), j, health)
	j.waitCursor(t, 3, 20*time.Second)

	// A consumer that connects after the kiosk gets the retained status.
	st := waitStatus(t, statuses(t, b, "k4"), true)
	if st.KioskID != "k4" || st.Schema != Schema || st.PendingReviews != 2 || st.POS != "up" || st.Version != "test" {
		t.Errorf("retained status %+v", st)
	}

	// The connection cut without a DISCONNECT: the broker publishes the
	// Will, and the shipper, reconnected, says online again.
	live := statuses(t, b, "k4")
	waitStatus(t, live, true) // the retained one
	sh.s.conn.Load().Close()
	if st := waitStatus(t, live, false); st.KioskID != "k4" {
		t.Errorf("Will %+v", st)
	}
	waitStatus(t, live, true)

	// A crash: the Will is what stays retained.
	sh.crash(t)
	waitStatus(t, live, false)
	if st := waitStatus(t, statuses(t, b, "k4"), false); st.Online {
		t.Errorf("retained after a crash: %+v", st)
	}

	// A clean stop publishes offline itself (a DISCONNECT with reason 0
	// discards the Will).
	sh = runShipper(t, testConfig(b, "k4"), j, health)
	waitStatus(t, live, true)
	sh.stop(t)
	waitStatus(t, live, false)
	if st := waitStatus(t, statuses(t, b, "k4"), false); st.KioskID != "k4" {
		t.Errorf("retained after a clean stop: %+v", st)
	}
}

func TestStatusOnChange(t *testing.T) {
	b := fleettest.Start(t)
	j := newFakeJournal()
	reviews := make(chan int, 1)
	reviews <- 0
	n := 0
	health := func() Status {
		select {
		case n = <-reviews:
		default:
		}
		return Status{PendingReviews: n}
	}
	live := statuses(t, b, "k5")
	runShipper(t, testConfig(b, "k5"), j, health)
	if st := waitStatus(t, live, true); st.PendingReviews != 0 {
		t.Fatalf("first status %+v", st)
	}
	reviews <- 3
	deadline := time.After(10 * time.Second)
	for {
		select {
		case st := <-live:
			if st.PendingReviews == 3 {
				return
			}
		case <-deadline:
			t.Fatal("a changed status not published within 10s")
		}
	}
}

// BenchmarkShip is records/s from the journal to a local broker, one
// kiosk, cursor writes included (the fake's SetShipped costs no fsync:
// the journal's cost is the journal's benchmark).
func BenchmarkShip(b *testing.B) {
	br := fleettest.Start(b)
	j := newFakeJournal()
	j.add(b.N)
	shipAll(b, br, j, func(*Shipper) { j.waitCursor(b, uint64(b.N), 5*time.Minute) })
}

// BenchmarkShipJournal is BenchmarkShip from a real bbolt journal: the
// records a kiosk offline for a while has waiting, read in pages and
// shipped, the cursor fsynced as the daemon writes it.
func BenchmarkShipJournal(b *testing.B) {
	br := fleettest.Start(b)
	j, err := payment.OpenJournal(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := range b.N {
		tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: payment.Sen(100 + i%900)}
		if err := j.Create(&tx, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	shipAll(b, br, j, func(s *Shipper) {
		// The journal's cursor is written every 250 ms; the shipper's
		// own count of what was acknowledged is the moment it is done.
		waitUntil(b, "every record shipped", 5*time.Minute, func() bool { return s.Stats().ShippedSeq >= uint64(b.N) })
	})
}

// shipAll times one shipper over src from its start until wait returns,
// and reports records/s.
func shipAll(b *testing.B, br *fleettest.Broker, src Source, wait func(*Shipper)) {
	cfg := testConfig(br, "bench")
	cfg.Log = discardLogger()
	s, err := New(cfg, src, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	wait(s)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
