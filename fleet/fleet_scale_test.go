package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
)

// TestFleetOf200: 200 kiosks, each an in-process shipper over its own
// journal, ship to one broker at once. The audit, the operator's view,
// finds every kiosk's every seq, no gap, no conflicting resend; the log
// has the fleet's events/s and the lag: how long the last record of the
// slowest kiosk took to reach the consumer.
func TestFleetOf200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 shippers")
	}
	const kiosks, records = 200, 50
	b := fleettest.Start(t, "max_connections -1")
	total := kiosks * records
	rep := startAudit(t, b, func(c *collector) bool {
		n := 0
		for i := range kiosks {
			n += c.events(fmt.Sprintf("k%03d", i))
		}
		return n >= total
	})
	start := time.Now()
	journals := make([]*fakeJournal, kiosks)
	for i := range kiosks {
		journals[i] = newFakeJournal()
		journals[i].add(records)
		cfg := testConfig(b, fmt.Sprintf("k%03d", i))
		cfg.Log = discardLogger()
		runShipper(t, cfg, journals[i], nil)
	}
	r := waitReport(t, rep)
	took := time.Since(start)
	for i := range kiosks {
		id := fmt.Sprintf("k%03d", i)
		k := r.Kiosks[id]
		if k == nil || k.Events != records || k.Lowest != 1 || k.Highest != records || len(k.Gaps) > 0 || len(k.Conflicts) > 0 {
			t.Fatalf("%s: %+v; want %d events 1..%d, no gap, no conflict", id, k, records, records)
		}
	}
	if !r.Clean() {
		t.Fatalf("the audit of the fleet is not clean: %+v", r)
	}
	t.Logf("%d kiosks x %d records: %d events in %v, %.0f events/s for the fleet; the last arrived %v after the first shipper started",
		kiosks, records, total, took.Round(time.Millisecond), float64(total)/took.Seconds(), took.Round(time.Millisecond))
}
