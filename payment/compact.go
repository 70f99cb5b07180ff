package payment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/internal/atomicfile"
	"github.com/kioskd/kioskd/internal/diskspace"
)

// A bbolt file never shrinks: pages that pruning and trimming free are
// reused by later writes, but the file keeps its high-water size. After
// a long offline stretch (records kept until shipped) or a kiosk's first
// pruning of years of payments, most of it can be free; compaction at
// start gives that back to the partition.

// Compaction thresholds: a journal is rewritten only when at least
// compactMinFree bytes, and at least 1/compactFraction of the file, are
// free pages. Below that the rewrite's writes to the SD card cost more
// than the space is worth.
const (
	compactMinFree  = 1 << 20
	compactFraction = 4
	compactTxMax    = 4 << 20 // bytes per transaction of the copy: bounded memory
)

// Compaction is what CompactJournal found and did.
type Compaction struct {
	Before, After int64 // file sizes in bytes (After == Before when not compacted)
	Free          int64 // bytes in free pages before
	Compacted     bool
	Reason        string // why not, when not
}

// CompactJournal rewrites the journal at path into a new file without
// its free pages and renames it over the old one, when enough of it is
// free (see compactMinFree). It must run before OpenJournal, with
// nothing else holding the file. A power cut at any point leaves either
// the old file or the complete new one: the copy is fsynced before the
// rename, the directory after, and a copy left half-written by a cut is
// deleted by the next start. It refuses, leaving the journal as it is,
// when the partition has no room for the copy. A journal that does not
// exist yet is no error.
func CompactJournal(path string) (Compaction, error) {
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Compaction{}, fmt.Errorf("journal: compact: remove leftover copy: %w", err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Compaction{Reason: "no journal yet"}, nil
	}
	if err != nil {
		return Compaction{}, fmt.Errorf("journal: compact: %w", err)
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return Compaction{}, fmt.Errorf("journal: compact: open %s: %w", path, err)
	}
	defer src.Close()
	// A commit is what brings the free-page count up to date.
	if err := src.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return Compaction{}, fmt.Errorf("journal: compact: %s: %w", path, err)
	}
	c := Compaction{Before: fi.Size(), After: fi.Size(), Free: int64(src.Stats().FreeAlloc)}
	if c.Free < compactMinFree || c.Free*compactFraction < c.Before {
		c.Reason = fmt.Sprintf("only %d of %d bytes free", c.Free, c.Before)
		return c, nil
	}
	// The copy needs what is in use, and a margin for its own pages.
	need := c.Before - c.Free + c.Before/8
	if u, err := diskspace.Of(filepath.Dir(path)); err != nil {
		return c, fmt.Errorf("journal: compact: %w", err)
	} else if int64(u.Avail) < need {
		c.Reason = fmt.Sprintf("the partition has %d bytes free, the copy needs %d", u.Avail, need)
		return c, nil
	}
	if err := copyCompact(tmp, src); err != nil {
		os.Remove(tmp)
		return c, fmt.Errorf("journal: compact %s: %w", path, err)
	}
	if err := src.Close(); err != nil {
		os.Remove(tmp)
		return c, fmt.Errorf("journal: compact: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return c, fmt.Errorf("journal: compact: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return c, fmt.Errorf("journal: compact: %w", err)
	}
	c.Compacted = true
	if fi, err := os.Stat(path); err == nil {
		c.After = fi.Size()
	}
	return c, nil
}

// copyCompact writes src's live pages into a new file at tmp, without a
// sync per transaction (a cut leaves a copy nobody uses), and syncs it
// once at the end.
func copyCompact(tmp string, src *bolt.DB) (err error) {
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return err
	}
	// bbolt panics on a damaged page. The copy reads every page, which
	// the service may never do: a damage that the journal's reads would
	// never meet must not become a start that always crashes.
	defer func() {
		if p := recover(); p != nil {
			dst.Close()
			err = fmt.Errorf("copy stopped on a damaged page: %v", p)
		}
	}()
	if err := bolt.Compact(dst, src, compactTxMax); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
