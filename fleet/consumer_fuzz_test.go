package fleet

import (
	"math"
	"testing"
	"time"
)

// A seq at the top of the range, from a buggy kiosk or anyone who can
// publish on the broker, is one gap, found at once.
func TestAuditGapsAtTheTopOfTheRange(t *testing.T) {
	c := newCollector()
	now := time.Now()
	for _, p := range []string{
		`{"schema":1,"kiosk_id":"K","seq":1,"kind":"txn"}`,
		`{"schema":1,"kiosk_id":"K","seq":3,"kind":"txn"}`,
		`{"schema":1,"kiosk_id":"K","seq":18446744073709551615,"kind":"txn"}`,
	} {
		c.add("kioskd/K/journal", []byte(p), now)
	}
	k := c.report().Kiosks["K"]
	want := []SeqRange{{2, 2}, {4, math.MaxUint64 - 1}}
	if len(k.Gaps) != 2 || k.Gaps[0] != want[0] || k.Gaps[1] != want[1] {
		t.Fatalf("gaps %v, want %v", k.Gaps, want)
	}
}

// FuzzCollector feeds the operator's consumer what a broker may carry on
// the kiosks' topics: it never panics, its report is consistent (gaps
// lie between the lowest and highest seq and never cover one that
// arrived), and it returns.
func FuzzCollector(f *testing.F) {
	f.Add("kioskd/K/journal", []byte(`{"schema":1,"kiosk_id":"K","seq":1,"kind":"txn","at":"2026-12-01T09:00:00Z"}`),
		[]byte(`{"schema":1,"kiosk_id":"K","seq":4,"kind":"evidence"}`))
	f.Add("kioskd/K/status", []byte(`{"schema":1,"kiosk_id":"K","online":true,"pending_reviews":2}`), []byte(`{"schema":2,"kiosk_id":"K"}`))
	f.Add("kioskd/K/journal", []byte(`{"schema":1,"kiosk_id":"K","seq":18446744073709551615}`), []byte(`{"schema":1,"kiosk_id":"K","seq":1,"refused":{"reason":149}}`))
	f.Add("kioskd//journal", []byte(`not json`), []byte(`{"kiosk_id":"","seq":0}`))
	f.Fuzz(func(t *testing.T, topic string, a, b []byte) {
		c := newCollector()
		now := time.Now()
		for _, p := range [][]byte{a, b, a} {
			c.add(topic, p, now)
			c.add("kioskd/K/journal", p, now)
		}
		for id, k := range c.report().Kiosks {
			for _, g := range k.Gaps {
				if g.From > g.To || g.From <= k.Lowest || g.To >= k.Highest {
					t.Fatalf("%s: gap %v outside (%d, %d)", id, g, k.Lowest, k.Highest)
				}
			}
		}
	})
}
