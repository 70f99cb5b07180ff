package fleet

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/payment"
)

func TestCollector(t *testing.T) {
	c := newCollector()
	ev := func(seq uint64, state string) []byte {
		b, err := json.Marshal(Event{Schema: Schema, KioskID: "k", Record: payment.Record{Seq: seq, Kind: payment.RecordTxn,
			Txn: &payment.Txn{ID: "t", State: payment.State(state)}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	for _, s := range []uint64{1, 2, 5, 3, 2, 8} {
		c.add("kioskd/k/journal", ev(s, "approved"), now)
	}
	c.add("kioskd/k/journal", ev(8, "declined"), now) // same seq, other content
	c.add("kioskd/k/journal", []byte("{"), now)
	st, _ := json.Marshal(Status{Schema: Schema, KioskID: "k", Online: true, PendingReviews: 4})
	c.add("kioskd/k/status", st, now)
	r := c.report()
	k := r.Kiosks["k"]
	if k.Events != 5 || k.Lowest != 1 || k.Highest != 8 || k.Duplicates != 2 || k.OutOfOrder != 1 ||
		!slices.Equal(k.Gaps, []SeqRange{{4, 4}, {6, 7}}) || !slices.Equal(k.Conflicts, []uint64{8}) ||
		r.Undecodable != 1 || !k.Online() || k.PendingReviews() != 4 {
		t.Errorf("report %+v, gaps %v", k, k.Gaps)
	}
	// Lag: how late the newest record arrived (one out of order is no
	// news of how far behind the kiosk is now); MaxLag: the latest of any.
	lagged := func(seq uint64, at time.Time) []byte {
		b, _ := json.Marshal(Event{Schema: Schema, KioskID: "l", Record: payment.Record{Seq: seq, At: at, Kind: payment.RecordTxn}})
		return b
	}
	c.add("kioskd/l/journal", lagged(1, now.Add(-time.Hour)), now)
	c.add("kioskd/l/journal", lagged(3, now.Add(-50*time.Millisecond)), now)
	c.add("kioskd/l/journal", lagged(2, now.Add(-2*time.Hour)), now)
	if l := c.report().Kiosks["l"]; l.Lag != 50*time.Millisecond || l.MaxLag != 2*time.Hour {
		t.Errorf("lag %v, max %v; want 50ms, 2h", l.Lag, l.MaxLag)
	}
	var e Event
	if err := json.Unmarshal(ev(9, "approved"), &e); err != nil || e.Seq != 9 || e.Txn.ID != "t" {
		t.Errorf("Event round trip: %+v %v", e, err)
	}
	if l := eventLine(&e); !strings.Contains(l, "k seq=9 txn txn=t state=approved") {
		t.Errorf("watch line %q", l)
	}
}

// lineWriter passes each written line on.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestWatch(t *testing.T) {
	b := fleettest.Start(t)
	lines := make(lineWriter, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, Config{Broker: b.URL()}, lines) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return 10s after its context ended")
		}
	}()
	j := newFakeJournal()
	j.add(1)
	runShipper(t, testConfig(b, "kw"), j, nil)
	// Watch may subscribe after the first record went out; the retained
	// status reaches it either way, and a second record after that.
	deadline := time.After(20 * time.Second)
	var sawStatus, sawEvent bool
	for !sawStatus || !sawEvent {
		select {
		case l := <-lines:
			if strings.Contains(l, "kw online") {
				if !sawStatus {
					j.add(1)
				}
				sawStatus = true
			}
			if strings.Contains(l, "kw seq=2 txn txn=txn-000002 state=approved vend=released") {
				sawEvent = true
			}
		case <-deadline:
			t.Fatalf("watch lines: status %v, event %v after 20s", sawStatus, sawEvent)
		}
	}
}

// update_failed is optional within schema 1: absent without a rolled-back
// update, and shown by watch when there is one.
func TestStatusUpdateFailed(t *testing.T) {
	st := Status{Schema: Schema, KioskID: "k1", Online: true, Version: "1.4.0"}
	b, _ := json.Marshal(st)
	if strings.Contains(string(b), "update_failed") {
		t.Errorf("update_failed without one: %s", b)
	}
	at := time.Date(2026, 11, 30, 2, 10, 44, 0, time.UTC)
	st.UpdateFailed = &UpdateFailed{Version: "1.5.0", At: at, From: "1.4.0"}
	b, _ = json.Marshal(st)
	if !strings.Contains(string(b), `"update_failed":{"version":"1.5.0","at":"2026-11-30T02:10:44Z","from":"1.4.0"}`) {
		t.Errorf("status JSON %s", b)
	}
	if l := statusLine(&st); !strings.HasSuffix(l, " update_failed=1.5.0@2026-11-30T02:10:44Z") {
		t.Errorf("watch line %q", l)
	}
}
