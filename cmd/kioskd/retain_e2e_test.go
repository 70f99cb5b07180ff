package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// A kiosk that starts on a journal with years of finished payments and
// megabytes of free pages compacts the file before it opens it, and
// prunes the payments that are over beside the service; one that an
// interruption left for review stays.
func TestStartPrunesAndCompacts(t *testing.T) {
	const finished = 30
	old := time.Now().Add(-200 * 24 * time.Hour)
	var path, interrupted string
	var before int64
	var pruned []string
	k := startKioskWith(t, func(dataDir string) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dataDir, "journal.db")
		j, err := payment.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		for range finished {
			tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: 300}
			if err := j.Create(&tx, old); err != nil {
				t.Fatal(err)
			}
			if _, err := j.Update(tx.ID, old, nil, func(t *payment.Txn) error { t.State = payment.Declined; return nil }); err != nil {
				t.Fatal(err)
			}
			pruned = append(pruned, tx.ID)
		}
		// Sent and never answered: the restart flags it for review.
		tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: 300, State: payment.Sent}
		if err := j.Create(&tx, old); err != nil {
			t.Fatal(err)
		}
		interrupted = tx.ID
		j.Close()
		freePages(t, path, 4<<20)
		before = fileSizeOf(t, path)
	})
	if after := fileSizeOf(t, path); after*2 > before {
		t.Errorf("journal %d bytes at start, %d once running: want it compacted", before, after)
	}
	c := control.NewClient(filepath.Join(k.dir, "ctl.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Pruning runs beside the service, started with it: the journal is
	// asked until it has happened, within the deadline.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := c.Journal(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 0, len(list))
		for _, tx := range list {
			ids = append(ids, tx.ID)
		}
		if !slices.ContainsFunc(pruned, func(id string) bool { return slices.Contains(ids, id) }) {
			if len(ids) != 1 || ids[0] != interrupted || list[0].Review == "" {
				t.Fatalf("journal after pruning: %+v; want only %s, flagged", list, interrupted)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("finished payments not pruned: %d still listed", len(ids))
		case <-tick.C:
		}
	}
	// The prune's line follows its last commit, which the loop above may
	// have seen first: the log is asked again until it is there.
	for {
		logs, err := c.Logs(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(logs, "\n")
		missing := ""
		for _, want := range []string{"journal compacted", "old payments pruned", "payments=30"} {
			if !strings.Contains(text, want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("log has no %q:\n%s", missing, text)
		case <-tick.C:
		}
	}
}

// freePages grows the bbolt file at path by about n bytes and frees them
// again, as a long offline stretch followed by trimming would.
func freePages(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scratch := []byte("test-scratch")
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(scratch)
		if err != nil {
			return err
		}
		v := make([]byte, 1024)
		for i := range n / len(v) {
			if err := b.Put([]byte{byte(i >> 16), byte(i >> 8), byte(i)}, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(scratch) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

func fileSizeOf(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
