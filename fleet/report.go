package fleet

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Clean reports an audit that found nothing wrong: no kiosk with a gap
// in its seqs or a seq seen twice with different content, and nothing
// undecodable on the kiosks' topics.
func (r Report) Clean() bool {
	if r.Undecodable > 0 {
		return false
	}
	for _, k := range r.Kiosks {
		if len(k.Gaps) > 0 || len(k.Conflicts) > 0 || k.BadSchema > 0 {
			return false
		}
	}
	return true
}

// WriteText writes the report as `kioskd fleet audit` shows it: one
// line per kiosk, by kiosk_id, problems spelled out.
func (r Report) WriteText(w io.Writer) {
	ids := make([]string, 0, len(r.Kiosks))
	for id := range r.Kiosks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		k := r.Kiosks[id]
		online := "offline"
		if k.Online() {
			online = "online"
		}
		fmt.Fprintf(w, "%s %s: %d events, seq %d-%d, %d resent, last seen %s, lag %s (max %s), %d pending reviews",
			id, online, k.Events, k.Lowest, k.Highest, k.Duplicates, since(k.LastSeen), lagText(k.Lag), lagText(k.MaxLag), k.PendingReviews())
		if len(k.Gaps) > 0 {
			gaps := make([]string, len(k.Gaps))
			for i, g := range k.Gaps {
				gaps[i] = g.String()
			}
			fmt.Fprintf(w, "; GAPS %s", strings.Join(gaps, ","))
		}
		if len(k.Conflicts) > 0 {
			fmt.Fprintf(w, "; CONFLICTING resends of seq %v", k.Conflicts)
		}
		if len(k.Tombstones) > 0 {
			fmt.Fprintf(w, "; refused by the broker: seq %v (in the kiosk's journal)", k.Tombstones)
		}
		if k.BadSchema > 0 {
			fmt.Fprintf(w, "; %d messages of an unknown schema", k.BadSchema)
		}
		fmt.Fprintln(w)
	}
	if len(ids) == 0 {
		fmt.Fprintln(w, "no kiosk heard from")
	}
	if r.Undecodable > 0 {
		fmt.Fprintf(w, "%d messages on kioskd topics could not be decoded\n", r.Undecodable)
	}
}

func since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// lagText rounds a lag to what an operator acts on: milliseconds while
// it keeps up, seconds once it does not.
func lagText(d time.Duration) string {
	if d > -time.Second && d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
