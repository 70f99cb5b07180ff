package vm

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/payment"
)

// compactCutsMax caps TestVMCompactCut's cuts per board whatever
// -vm.cuts says: each trial is a boot to the journal's open, and
// `make vm-test` runs it beside TestVMPowerCut's 30 cuts.
const compactCutsMax = 10

// The seeded journal: compactPayments declined payments, each with
// compactEvidence messages of compactPayload bytes (live data, so that
// the copy has something to do: about 5 s of a 6 s start on arm64 under
// TCG), and compactScratch bytes written and freed again (free pages, so
// that compaction is due). The file (54 MiB: bbolt grows it in 16 MiB
// steps) and its copy do not fit newDisk's 64 MiB, hence compactDisk.
const (
	compactPayments = 300
	compactEvidence = 2
	compactPayload  = 8 << 10
	compactScratch  = 24 << 20
	compactDisk     = "128M"
)

// mountedLine is the kernel's line when kiosk-mount-data has mounted
// /data, a second or so before kioskd-run starts kioskd: the last mark
// on the console before the compaction, so the cut instants count from
// it.
const mountedLine = "EXT4-fs (vda): mounted filesystem"

// seededJournal is what the host put on the data partition.
type seededJournal struct {
	raw  []byte
	dump map[string]string // see dumpBolt
	txns map[string]payment.Txn
}

// TestVMCompactCut cuts the power while kioskd compacts the journal at
// start (payment.CompactJournal): the journal on the disk is seeded
// with a quarter and more of free pages, and each boot is cut at a
// random instant around the compaction, as calibrated by a boot left to
// finish it and one with nothing to compact. After every cut the disk,
// as the next mount finds it, must check clean and hold a journal equal
// key for key to the seeded one, old file or compacted copy; a partial
// copy may be left beside it, never in its place; a compaction the start
// logged must be on the disk. The next boot is on the same disk
// (a leftover copy is removed, the compaction starts over); once a cut
// came after the rename, the disk is seeded afresh so that the next
// trial has a compaction to cut. The last boot is left running: every
// payment reads back unchanged through kioskd, the file is smaller, no
// copy is left.
func TestVMCompactCut(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		seed := *vmSeed
		if seed == 0 {
			seed = uint64(time.Now().UnixNano())
		}
		cuts := min(*vmCuts, compactCutsMax)
		rng := mrand.New(mrand.NewPCG(seed, 1))
		dir := t.TempDir()
		sj := seedJournal(t, filepath.Join(dir, "seed"))
		pristine := newDiskSized(t, dir, map[string]string{"kioskd/journal.db": string(sj.raw)}, compactDisk)
		disk := filepath.Join(dir, "cut.img")
		if err := copyFile(pristine, disk); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d power cuts during compaction, -vm.seed=%d; journal %d bytes", b.name, cuts, seed, len(sj.raw))

		// Calibration, on this board, on this host, now: when after the
		// mount the compaction ends (its log line), and how long it
		// takes (the start's delay to "kioskd started" less that of a
		// start with nothing to compact: no line marks its beginning).
		v := b.boot(t, vmOpts{disk: disk, name: "calibrate"})
		_, mounted := v.waitConsole(0, mountedLine, 90*time.Second)
		i, compacted := v.waitConsole(0, "journal compacted", 60*time.Second)
		_, started := v.waitConsole(i, "kioskd started", 60*time.Second)
		line := v.console.since(i)[0]
		v.kill()
		v = b.boot(t, vmOpts{disk: disk, name: "calibrate-compacted"})
		_, mounted2 := v.waitConsole(0, mountedLine, 90*time.Second)
		_, started2 := v.waitConsole(0, "kioskd started", 60*time.Second)
		v.kill()
		end := compacted.Sub(mounted)
		took := min(max(started.Sub(mounted)-started2.Sub(mounted2), end/8), end)
		// The cuts fall over the compaction and a quarter of its
		// length either side.
		from := max(end-took-took/4, 0)
		window := end + took/4 - from
		t.Logf("%s: calibration: compaction ends at mount+%s and takes about %s: cuts at mount+%s to +%s; %s", b.name,
			end.Round(time.Millisecond), took.Round(time.Millisecond), from.Round(time.Millisecond), (from + window).Round(time.Millisecond), line)

		// Where each cut landed, as the disk tells: before this boot's
		// copy began (no copy, or one an earlier boot's cut left:
		// created before this boot), during it (a copy of this boot's)
		// or after the rename.
		var before, leftover, during, after, reseeded int
		needFresh := true
		for i := range cuts {
			if needFresh {
				if err := copyFile(pristine, disk); err != nil {
					t.Fatal(err)
				}
				reseeded++
			}
			v := b.boot(t, vmOpts{disk: disk, name: fmt.Sprintf("ccut%02d", i)})
			_, mounted := v.waitConsole(0, mountedLine, 90*time.Second)
			at := from + time.Duration(rng.Int64N(int64(window)))
			<-time.After(time.Until(mounted.Add(at))) // the cut's instant, not a wait for anything
			v.kill()
			_, logged, _ := v.console.wait(0, func(l string) bool { return strings.Contains(l, "journal compacted") }, 0, v.done)
			st := checkImageJournal(t, disk, fmt.Sprintf("cut %d", i), sj)
			// The guest's clock is the host's, read from the RTC at boot
			// in whole seconds: up to a second behind. A copy of this
			// boot is made seconds after the boot began (the mount comes
			// first), one of an earlier boot before it.
			where := "after the rename"
			switch {
			case st.compacted:
				after++
			case st.copySize < 0:
				where = "before the copy"
				before++
			case st.copyBorn.Before(v.start):
				where = "before the copy (an earlier cut's copy left)"
				leftover++
			default:
				where = "during the copy"
				during++
			}
			if !logged.IsZero() && !st.compacted {
				t.Errorf("cut %d: the start logged the compaction, the disk has the old journal (%d bytes)", i, st.size)
			}
			needFresh = st.compacted
			born := ""
			if st.copySize >= 0 {
				born = fmt.Sprintf(", born at boot%+.1fs", st.copyBorn.Sub(v.start).Seconds())
			}
			t.Logf("%s: cut %d at mount+%s, %s: journal %d bytes, copy %d bytes%s",
				b.name, i, at.Round(time.Millisecond), where, st.size, st.copySize, born)
		}

		v = b.boot(t, vmOpts{disk: disk, name: "after"})
		v.ready(90 * time.Second)
		checkGuestJournal(t, v, sj)
		out, rc := v.run("stat -c '%n %s' /data/kioskd/journal.db*", 10*time.Second)
		if rc != 0 {
			t.Fatalf("stat: exit %d: %s", rc, out)
		}
		guest := strings.Join(strings.Fields(out), " ")
		if strings.Contains(out, ".compact") {
			t.Errorf("a copy is left after a start that ran to the end: %s", out)
		}
		// A clean power-off, then the file itself as kioskd left it.
		v.send("poweroff")
		select {
		case <-v.done:
		case <-time.After(60 * time.Second):
			t.Fatal("no power-off within 60 s")
		}
		fsck(t, disk, "after the clean power-off")
		st := checkImageJournal(t, disk, "after the clean power-off", sj)
		if !st.compacted || st.copySize >= 0 {
			t.Errorf("after the last boot: journal %d bytes (seeded %d), copy %d bytes: want the compacted file alone", st.size, len(sj.raw), st.copySize)
		}
		t.Logf("%s: %d cuts: %d before the copy (%d of them with an earlier cut's copy left), %d during it, %d after the rename "+
			"(disk seeded %d times); journal %d → %d bytes (guest: %s); filesystem clean and journal content intact after every cut",
			b.name, cuts, before+leftover, leftover, during, after, reseeded, len(sj.raw), st.size, guest)
	})
}

// seedJournal writes the journal through the payment API and frees
// pages in it with bbolt directly, in dir.
func seedJournal(t *testing.T, dir string) seededJournal {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "journal.db")
	j, err := payment.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	// Young: the start's pruning and outbox trim keep all of it.
	now := time.Now()
	pad := make([]byte, compactPayload/2)
	for i := range compactPayments {
		tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: payment.Sen(100 + i), Key: fmt.Sprintf("order-%04d", i)}
		if err := j.Create(&tx, now); err != nil {
			t.Fatal(err)
		}
		for e := range compactEvidence {
			rand.Read(pad)
			ev := &payment.Evidence{TxnID: tx.ID, Source: "pos", Type: "transaction_result", Status: "declined",
				Disposal: "applied", Payload: fmt.Sprintf("%d:%x", e, pad)}
			next := payment.Sent
			if e == compactEvidence-1 {
				next = payment.Declined
			}
			if _, err := j.Update(tx.ID, now, ev, func(t *payment.Txn) error { t.State = next; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 64<<10)
	for k := 0; k < compactScratch/len(val); k += 64 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("scratch"))
			if err != nil {
				return err
			}
			for n := k; n < k+64; n++ {
				rand.Read(val)
				if err := b.Put([]byte(strconv.Itoa(n)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("scratch")) }); err != nil {
		t.Fatal(err)
	}
	// The empty commit brings the free count up to date, as CompactJournal's does.
	if err := db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	free := db.Stats().FreeAlloc
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if free*4 < len(raw) {
		t.Fatalf("seeded journal: %d of %d bytes free: compaction would not be due", free, len(raw))
	}
	sj := seededJournal{raw: raw, dump: dumpBolt(t, path), txns: map[string]payment.Txn{}}
	j, err = payment.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	txns, err := j.List(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range txns {
		sj.txns[x.ID] = x
	}
	if len(sj.txns) != compactPayments {
		t.Fatalf("seeded journal lists %d payments, want %d", len(sj.txns), compactPayments)
	}
	t.Logf("seeded journal: %d bytes, %d free, %d payments", len(raw), free, len(sj.txns))
	return sj
}

// dumpBolt is every key, value and sequence of a bbolt file, nested
// buckets included, by path: what compaction must keep exactly.
func dumpBolt(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		out[prefix+"\x00seq"] = strconv.FormatUint(b.Sequence(), 10)
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+"/"+string(k), b.Bucket(k))
			}
			out[prefix+"/"+string(k)] = string(v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out
}

// imageJournal is what a data image holds of the journal.
type imageJournal struct {
	size      int64
	copySize  int64     // journal.db.compact, -1: none
	copyBorn  time.Time // the copy's creation, by the guest's clock
	compacted bool      // smaller than seeded
}

// checkImageJournal checks the disk as the next mount finds it (ext4's
// journal replayed, then a full check) and the journal on it against
// the seeded one, key for key.
func checkImageJournal(t *testing.T, disk, when string, sj seededJournal) imageJournal {
	t.Helper()
	cp := replayedCopy(t, disk, when)
	defer os.Remove(cp)
	fsck(t, cp, when)
	out := filepath.Join(filepath.Dir(disk), "image-journal")
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(out)
	// debugfs says a missing file on stderr and exits 0: what was
	// dumped is seen from the host's side.
	for _, f := range []string{"journal.db", "journal.db.compact"} {
		cmd := exec.Command("debugfs", "-R", "dump /kioskd/"+f+" "+filepath.Join(out, f), cp)
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: debugfs dump %s: %v\n%s", when, f, err, o)
		}
	}
	st := imageJournal{copySize: -1}
	fi, err := os.Stat(filepath.Join(out, "journal.db"))
	if err != nil {
		t.Fatalf("%s: no journal on the disk: %v", when, err)
	}
	st.size, st.compacted = fi.Size(), fi.Size() < int64(len(sj.raw))
	if fi, err := os.Stat(filepath.Join(out, "journal.db.compact")); err == nil {
		st.copySize = fi.Size()
		o, err := exec.Command("debugfs", "-R", "stat /kioskd/journal.db.compact", cp).CombinedOutput()
		m := crtimeRe.FindSubmatch(o)
		if err != nil || m == nil {
			t.Fatalf("%s: debugfs stat journal.db.compact: %v\n%s", when, err, o)
		}
		sec, _ := strconv.ParseInt(string(m[1]), 16, 64)
		extra, _ := strconv.ParseInt(string(m[2]), 16, 64)
		st.copyBorn = time.Unix(sec+(extra&3)<<32, extra>>2)
	}
	if d := diffDump(sj.dump, dumpBolt(t, filepath.Join(out, "journal.db"))); d != "" {
		t.Fatalf("%s: the journal on the disk (%d bytes) differs from the seeded one:\n%s", when, st.size, d)
	}
	return st
}

// crtimeRe is debugfs's creation time of an inode: seconds, then the
// extra field (nanoseconds << 2, and the epoch bits).
var crtimeRe = regexp.MustCompile(`crtime: 0x([0-9a-f]+):([0-9a-f]+)`)

// diffDump describes up to a few differences between two dumps.
func diffDump(want, got map[string]string) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %q", k))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("changed %q: %d bytes, want %d", k, len(g), len(w)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %q", k))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("and %d more", len(diffs)-10))
	}
	return strings.Join(diffs, "\n")
}

// checkGuestJournal reads every payment back through kioskd.
func checkGuestJournal(t *testing.T, v *VM, sj seededJournal) {
	t.Helper()
	got := map[string]payment.Txn{}
	for _, x := range v.journal() {
		if x.Quarantined {
			t.Errorf("%s: quarantined: a record the journal could not read back", x.ID)
		}
		got[x.ID] = x
	}
	for id, w := range sj.txns {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: missing from the journal", id)
		case g.State != w.State || g.Amount != w.Amount || g.Vend != w.Vend || g.Key != w.Key ||
			g.Evidence != w.Evidence || !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt):
			t.Errorf("%s: changed: %+v, seeded %+v", id, g, w)
		}
	}
	if len(got) != len(sj.txns) {
		t.Errorf("the journal lists %d payments, %d were seeded", len(got), len(sj.txns))
	}
}
