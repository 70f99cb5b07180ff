package payment

import (
	"testing"
	"testing/synctest"
	"time"
)

// The happy path is three commits: created before the request leaves,
// approved with releasing before the relay moves, released after it.
// Sent and the ack ride in the approval's commit, and the outbox still
// has a record of every step, in order, each at its own time.
func TestThreeCommitsOnTheHappyPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, slowConfig())
		synctest.Wait()
		before, _ := h.j.LastRecord()
		c0 := h.j.Commits()
		tx := h.pay("card", 100)
		synctest.Wait()
		if c := h.j.Commits() - c0; c != 1 {
			t.Fatalf("%d commits once the request has left, want 1 (created)", c)
		}
		time.Sleep(time.Second)
		h.svc.Report(ack(tx.ID, "processing"))
		synctest.Wait()
		if c := h.j.Commits() - c0; c != 1 {
			t.Fatalf("%d commits after the ack, want 1: sent and the ack are held", c)
		}
		time.Sleep(time.Second)
		h.svc.Report(success(tx.ID, 100))
		h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendReleased })
		synctest.Wait()
		if c := h.j.Commits() - c0; c != 3 {
			t.Fatalf("%d commits for a payment, want 3", c)
		}
		if h.vend.count() != 1 {
			t.Fatalf("%d vends", h.vend.count())
		}
		recs, err := h.j.Records(before, 100)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		var ats []time.Duration
		for _, r := range recs {
			steps = append(steps, string(r.Txn.State)+"/"+string(r.Txn.Vend))
			ats = append(ats, r.At.Sub(tx.CreatedAt))
		}
		want := []string{"created/none", "sent/none", "acked/none", "approved/releasing", "approved/released"}
		if len(steps) != len(want) {
			t.Fatalf("outbox %v, want %v", steps, want)
		}
		for i := range want {
			if steps[i] != want[i] {
				t.Fatalf("outbox %v, want %v", steps, want)
			}
		}
		// Each held step keeps its own time: the ack came a second in.
		if ats[0] != 0 || ats[1] != 0 || ats[2] != time.Second || ats[3] != 2*time.Second {
			t.Fatalf("record times after creation %v", ats)
		}
		ev, err := h.j.EvidenceFor(tx.ID)
		if err != nil || len(ev) != 2 || ev[0].Type != "ack" || ev[1].Status != "success" {
			t.Fatalf("evidence %+v %v, want the ack and the result", ev, err)
		}
	})
}

// Steps held for the next commit are bounded: a terminal that acks again
// and again has its acks written once maxLater are held.
func TestHeldStepsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, slowConfig())
		tx := h.pay("card", 100)
		synctest.Wait()
		c0 := h.j.Commits()
		for range 3 * maxLater {
			h.svc.Report(ack(tx.ID, "processing"))
			synctest.Wait()
		}
		// sent and 3*maxLater acks, 25 steps: with maxLater held, the
		// next step commits them all with it, 9 a commit.
		if c := h.j.Commits() - c0; c != 2 {
			t.Fatalf("%d commits for %d acks held at most %d at a time, want 2", c, 3*maxLater, maxLater)
		}
		if n := len(h.svc.heldPayloads()); n != 3*maxLater+1-2*(maxLater+1) {
			t.Fatalf("%d held after the flood, want %d", n, 3*maxLater+1-2*(maxLater+1))
		}
	})
}

// A clean stop writes what was held: the ack is evidence on record.
func TestHeldStepsWrittenAtStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := t.TempDir() + "/journal.db"
		h, _, stop := startAt(t, slowConfig(), path)
		tx := h.pay("card", 100)
		h.svc.Report(ack(tx.ID, "processing"))
		synctest.Wait()
		if got := h.journaled(tx.ID); got.State != Created {
			t.Fatalf("before the stop, journaled %s, want created (sent and acked held)", got.State)
		}
		stop()
		j, err := OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		got, err := j.Get(tx.ID)
		if err != nil || got.State != Acked || got.Evidence != 1 {
			t.Fatalf("after a clean stop: %+v %v, want acked with the ack's evidence", got, err)
		}
	})
}
