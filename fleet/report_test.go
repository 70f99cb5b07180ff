package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestReportCleanAndText(t *testing.T) {
	now := time.Now()
	good := &KioskReport{KioskID: "K1", Events: 10, Lowest: 1, Highest: 10, Duplicates: 2, LastSeen: now,
		Lag: 42 * time.Millisecond, MaxLag: 3*time.Hour + 1400*time.Millisecond,
		Status: &Status{Online: true, PendingReviews: 1}}
	r := Report{Kiosks: map[string]*KioskReport{"K1": good}}
	if !r.Clean() {
		t.Fatal("a report with no gap or conflict is not clean")
	}
	var b strings.Builder
	r.WriteText(&b)
	if got := b.String(); !strings.HasPrefix(got, "K1 online: 10 events, seq 1-10, 2 resent, last seen ") || !strings.Contains(got, ", lag 42ms (max 3h0m1s), 1 pending reviews\n") {
		t.Errorf("clean report:\n%s", got)
	}

	r.Kiosks["K2"] = &KioskReport{KioskID: "K2", Events: 5, Lowest: 1, Highest: 8, Gaps: []SeqRange{{4, 5}, {7, 7}}, Conflicts: []uint64{3}}
	if r.Clean() {
		t.Fatal("a report with gaps and a conflicting resend is clean")
	}
	b.Reset()
	r.WriteText(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "K2 offline: ") || !strings.Contains(lines[1], "; GAPS 4-5,7") ||
		!strings.Contains(lines[1], "; CONFLICTING resends of seq [3]") || !strings.Contains(lines[1], "last seen never") {
		t.Errorf("report with problems:\n%s", b.String())
	}
	if (Report{Undecodable: 1}).Clean() {
		t.Error("undecodable messages on the kiosks' topics are clean")
	}
}
