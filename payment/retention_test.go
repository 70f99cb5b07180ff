package payment

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// The retention loop trims at start and then on its period: records
// older than keep go, and with shippedOnly the unshipped ones stay
// however old. Time is the bubble's; bbolt's file I/O inside the bubble
// only makes synctest.Wait wait for the write to finish.
func TestRetain(t *testing.T) {
	for _, shippedOnly := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			j, _ := openJournal(t)
			const keep, every = 48 * time.Hour, 6 * time.Hour
			for range 3 {
				newTxn(t, j, time.Now())
			}
			if err := j.SetShipped(2); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				Retain(ctx, j, keep, shippedOnly, every, slog.New(slog.DiscardHandler))
			}()
			synctest.Wait()
			if n := len(allRecords(t, j)); n != 3 {
				t.Fatalf("shippedOnly=%v: %d records after the first trim, want all 3 (none older than keep)", shippedOnly, n)
			}
			// Past keep, the next periodic trim takes what is old enough.
			time.Sleep(keep + every)
			synctest.Wait()
			left := allRecords(t, j)
			want := 0
			if shippedOnly {
				want = 1 // seq 3 was never shipped
			}
			if len(left) != want || (want == 1 && left[0].Seq != 3) {
				t.Fatalf("shippedOnly=%v: %d records left after keep, want %d (the unshipped)", shippedOnly, len(left), want)
			}
			cancel()
			<-done
		})
	}
}
