package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/fleet"
	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

var (
	watchSeqRE     = regexp.MustCompile(`^\S+ KIOSK-T seq=(\d+) (\w+)`)
	watchShippedRE = regexp.MustCompile(`^\S+ KIOSK-T online .* shipped=(\d+)$`)
)

// TestFleetShipsEveryPayment: a kioskd with [fleet] on ships its journal
// to a real broker as payments happen. What `kioskd fleet watch` prints
// has every seq from 1 to what the kiosk's retained status says it
// shipped, each once, in order, and every payment's approval and vend.
func TestFleetShipsEveryPayment(t *testing.T) {
	b := fleettest.Start(t)
	k := startKioskConfig(t, fmt.Sprintf("[fleet]\nenabled = true\nbroker = %q\nstatus_every = \"1s\"\n", b.URL()), nil)
	k.sim(t, possim.Approve)

	lines := make(chan string, 1024)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- fleet.Watch(ctx, fleet.Config{Broker: b.URL()}, pw); pw.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; err != nil {
			t.Errorf("watch: %v", err)
		}
	})

	// The kiosk's retained status is the first thing a new subscriber
	// gets: once it is here, Watch listens, and no payment's record can
	// go by unseen.
	for subscribed := false; !subscribed; {
		select {
		case l := <-lines:
			subscribed = watchShippedRE.MatchString(l)
		case <-time.After(10 * time.Second):
			t.Fatal("no retained status from the kiosk")
		}
	}

	const payments = 5
	for i := range payments {
		if code, out, errs := kioskd(t, "", "pay", "-amount", fmt.Sprintf("1.%02d", i), "-config", k.cfgPath); code != exitOK {
			t.Fatalf("payment %d: exit %d\n%s%s", i, code, out, errs)
		}
	}

	// Every seq up to what the status says was shipped, each once and in
	// order; the payments' records among them.
	seen := map[uint64]int{}
	var order []uint64
	released := 0
	deadline := time.After(30 * time.Second)
	for {
		var line string
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended")
			}
			line = l
		case <-deadline:
			t.Fatalf("not every record arrived: saw %v", order)
		}
		if m := watchSeqRE.FindStringSubmatch(line); m != nil {
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			if seen[seq]++; seen[seq] == 1 {
				order = append(order, seq)
			}
			if strings.Contains(line, "state=approved vend=released") {
				released++
			}
			continue
		}
		m := watchShippedRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		shipped, _ := strconv.ParseUint(m[1], 10, 64)
		if released < payments || shipped == 0 || uint64(len(order)) < shipped {
			continue // more to come
		}
		for i, seq := range order[:shipped] {
			if seq != uint64(i+1) {
				t.Fatalf("seq %d arrived in position %d: %v", seq, i+1, order)
			}
		}
		for seq, n := range seen {
			if n > 1 {
				t.Errorf("seq %d arrived %d times (a resend without a restart)", seq, n)
			}
		}
		// The health an operator watches for a kiosk cut off too long.
		if !regexp.MustCompile(` disk_free=\d+MiB `).MatchString(line) {
			t.Errorf("status without the data partition's free space: %s", line)
		}
		t.Logf("%d payments: %d records shipped, each once, in order", payments, shipped)
		checkFleetStatus(t, k, b.URL(), shipped)
		return
	}
}

// checkFleetStatus: kioskd status says the kiosk is shipping, in words
// and in JSON of the shape docs/control-api.json publishes.
func checkFleetStatus(t *testing.T, k *kiosk, broker string, shipped uint64) {
	t.Helper()
	code, out, errs := kioskd(t, "", "status", "-config", k.cfgPath)
	if code != exitOK || !strings.Contains(out, "\nfleet: connected to "+broker+", shipped through seq ") ||
		!strings.Contains(out, "\ndata partition "+filepath.Join(k.dir, "data")) {
		t.Fatalf("kioskd status: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = kioskd(t, "", "status", "-json", "-config", k.cfgPath)
	var st control.Status
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || st.Fleet == nil {
		t.Fatalf("kioskd status -json: exit %d\n%s%s", code, out, errs)
	}
	if f := st.Fleet; !f.Connected || f.ShippedSeq < shipped || f.Broker != broker {
		t.Errorf("status fleet %+v, want connected to %s, shipped through at least %d", f, broker, shipped)
	}
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	resp := doc.response("GET /v1/status", "200")
	schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	v, err := decodeJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.check("status", schema, v) {
		t.Errorf("status -json with the fleet on: %s", e)
	}
}

var fleetKills = flag.Int("fleet.kills", 50, "TestFleetSurvivesSIGKILL: how many times kioskd is SIGKILLed while it ships")

// TestFleetSurvivesSIGKILL: kioskd, a process of its own with [fleet]
// on, is SIGKILLed at a random instant while it journals payments and
// ships them, and started again on the same journal, -fleet.kills times.
// An audit that listened throughout sees, for the kiosk, every seq from
// 1 to the last one exactly once in effect: no gap, and the resends that
// the kills cause identical to the first sending.
func TestFleetSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	b := fleettest.Start(t)
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, crashConfig(10*time.Millisecond)+
		fmt.Sprintf("\n[fleet]\nenabled = true\nbroker = %q\nstatus_every = \"1s\"\n", b.URL()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait, err := fleet.StartAudit(ctx, fleet.Config{Broker: b.URL()}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("%d kills, seed %d", *fleetKills, seed)
	deadline := time.Now().Add(5 * time.Minute)
	for i := range *fleetKills {
		if time.Now().After(deadline) {
			t.Fatalf("only %d kills in 5 minutes", i)
		}
		// Not this test's business: the crash guard would hold the
		// fifth start off as a crash loop.
		os.Remove(filepath.Join(dir, "data", "restarts"))
		d := startDaemon(t, cfgPath)
		stopPOS := approvingPOS(t, d)
		payUntil(t, d, time.After(time.Duration(rng.IntN(300))*time.Millisecond), false)
		d.kill()
		stopPOS()
	}

	// The last start's payments end (none is left in flight for the
	// next start's recovery to change), then a clean stop; the journal
	// then says what its last record is, and one more start, with
	// nothing to do, ships what is left.
	os.Remove(filepath.Join(dir, "data", "restarts"))
	d := startDaemon(t, cfgPath)
	stopPOS := approvingPOS(t, d)
	payUntil(t, d, time.After(100*time.Millisecond), true)
	stopPOS()
	stopDaemon(t, d)
	j, err := payment.OpenJournal(filepath.Join(dir, "data", "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	last, err := j.LastRecord()
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, cfgPath)
	waitShipped(t, d, last)
	stopDaemon(t, d)
	cancel()
	rep, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	k := rep.Kiosks["KIOSK-T"]
	if k == nil {
		t.Fatalf("the audit heard nothing from KIOSK-T: %+v", rep)
	}
	if k.Lowest != 1 || k.Highest != last || len(k.Gaps) > 0 || len(k.Conflicts) > 0 || uint64(k.Events) != last {
		t.Fatalf("after %d kills: seqs %d-%d, %d events, gaps %v, conflicting resends %v; want 1-%d, every one",
			*fleetKills, k.Lowest, k.Highest, k.Events, k.Gaps, k.Conflicts, last)
	}
	t.Logf("%d kills: %d records, each seen, %d resends (identical), no gap", *fleetKills, last, k.Duplicates)
}

// approvingPOS connects a simulated POS that approves every payment to
// the daemon and waits until the daemon sees it.
func approvingPOS(t *testing.T, d *daemon) (stop func()) {
	t.Helper()
	sim, err := possim.New(possim.Config{Addr: d.posAddr, Secret: []byte(testSecret), Behaviour: possim.Approve,
		Delay: 5 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sim.Run(ctx); close(done) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	d.watch(wctx).connected()
	return func() { cancel(); <-done }
}

// payUntil makes payments one after another, each followed to its end,
// until stop fires (mid-payment, mid-publish, wherever it lands); with
// finish, the payment in progress then is followed to its end too.
func payUntil(t *testing.T, d *daemon, stop <-chan time.Time, finish bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := d.c.Follow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for stopped := false; !stopped; {
		tx, _, err := d.c.Pay(context.Background(), control.PayRequest{Amount: "1.00", Mode: "card"}, "")
		if err != nil {
			t.Fatalf("pay: %v", err)
		}
		for done := false; !done; {
			select {
			case <-stop:
				if !finish {
					return
				}
				stopped, stop = true, nil
			case e, ok := <-events:
				if !ok {
					t.Fatal("the event stream ended")
				}
				done = e.Txn != nil && e.Txn.ID == tx.ID && control.Over(*e.Txn)
			case <-time.After(10 * time.Second):
				t.Fatalf("payment %s did not end", tx.ID)
			}
		}
	}
}

// stopDaemon stops kioskd cleanly (SIGTERM) and waits for it.
func stopDaemon(t *testing.T, d *daemon) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("kioskd did not stop 15 s after SIGTERM")
	}
}

// waitShipped waits until the daemon's shipper has every journal record
// up to last acknowledged. The daemon's status is read every 50 ms: the
// shipper's progress has no event of its own.
func waitShipped(t *testing.T, d *daemon, last uint64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := d.c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f := st.Fleet; f != nil && f.ShippedSeq >= last {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("the shipper did not reach seq %d: %+v", last, st.Fleet)
		case <-tick.C:
		}
	}
}
