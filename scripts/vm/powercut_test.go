package vm

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

var vmSeed = flag.Uint64("vm.seed", 0, "seed of the power-cut instants (0: from the clock, logged)")

// payLoop pays back to back in the guest until the power goes.
const payLoop = "(while :; do kioskd pay -amount 1.00 -timeout 60s; done) </dev/null >/dev/null 2>&1 &"

// bootRecord is what the rig saw of one boot before its power cut.
type bootRecord struct {
	ready, cut time.Time
	pulses     []pulse
}

// TestVMPowerCut cuts the power (SIGKILL to QEMU: the guest's page cache
// and the disk requests in flight are lost, unlike kill -9 of kioskd;
// what the virtual disk completed is kept, as on a card that does not
// lose acknowledged writes) at
// random instants during back-to-back payments, boots again on the same
// disk each time, and checks across all boots: no payment vended twice,
// no vend without a journaled success, every request the POS saw
// journaled, the filesystem clean after each cut, every record readable,
// and the next payment works.
func TestVMPowerCut(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		seed := *vmSeed
		if seed == 0 {
			seed = uint64(time.Now().UnixNano())
		}
		t.Logf("%s: %d power cuts, -vm.seed=%d", b.name, *vmCuts, seed)
		rng := rand.New(rand.NewPCG(seed, 0))
		dir := t.TempDir()
		disk := newDisk(t, dir, nil)
		pos := newPOSSim()
		var boots []bootRecord
		midPulse := 0
		for i := range *vmCuts {
			// Every other boot on a disk throttled like an SD card: more
			// of the journal's writes are in flight when the power goes.
			v := b.boot(t, vmOpts{disk: disk, iops: 100 * (i % 2), name: fmt.Sprintf("cut%03d", i)})
			ready := v.ready(90 * time.Second)
			startPOS(t, v, pos)
			v.waitLinked(30 * time.Second)
			seen := len(pos.requests())
			v.run(payLoop, 10*time.Second)
			// The first request of this boot reached the POS; then the
			// power goes at a random instant within the next few
			// payments (one takes about half a second here).
			if !pos.waitRequest(seen, 30*time.Second, v.done) {
				t.Fatalf("boot %d: no payment request reached the POS; console:\n%s", i, v.console.tail(20))
			}
			<-time.After(time.Duration(rng.Int64N(int64(3 * time.Second)))) // the cut's instant, not a wait for anything

			cut := time.Now()
			v.kill()
			ps := vends(v.gpio.pulses(lineRelay, true, v.start))
			if len(ps) > 0 && ps[len(ps)-1].off.IsZero() {
				midPulse++
			}
			boots = append(boots, bootRecord{ready: ready, cut: cut, pulses: ps})
			fsckAfterCut(t, disk, i)
			if (i+1)%50 == 0 {
				t.Logf("%s: %d cuts so far, %d requests seen by the POS, filesystem clean after each", b.name, i+1, len(pos.requests()))
			}
		}

		// The next payment works, then the whole journal is read back.
		v := b.boot(t, vmOpts{disk: disk, name: "after"})
		ready := v.ready(90 * time.Second)
		startPOS(t, v, pos)
		v.waitLinked(30 * time.Second)
		since := time.Now()
		next := v.pay("2.00")
		if next.State != payment.Approved || next.Vend != payment.VendReleased {
			t.Fatalf("the payment after the power cuts: %s %s review %q", next.State, next.Vend, next.Review)
		}
		if ps := v.gpio.waitPulses(lineRelay, true, since, 1, 5*time.Second); len(ps) != 1 {
			t.Fatalf("the payment after the power cuts: relay pulses %v, want one", ps)
		}
		txns := v.journal()
		boots = append(boots, bootRecord{ready: ready, cut: time.Now(), pulses: vends(v.gpio.pulses(lineRelay, true, v.start))})
		// A clean power-off: init's shutdown stops kioskd and unmounts
		// /data, so the disk must now check clean as it is.
		v.send("poweroff")
		select {
		case <-v.done:
		case <-time.After(60 * time.Second):
			t.Fatal("no power-off within 60 s")
		}
		fsck(t, disk, "after the clean power-off")

		checkPowerCuts(t, b.name, boots, txns, pos.requests(), midPulse)
	})
}

// checkPowerCuts holds the journal against what the rig saw.
func checkPowerCuts(t *testing.T, name string, boots []bootRecord, txns []payment.Txn, seen []string, midPulse int) {
	t.Helper()
	byID := map[string]payment.Txn{}
	for _, x := range txns {
		byID[x.ID] = x
	}
	for _, id := range seen {
		if _, ok := byID[id]; !ok {
			t.Errorf("the POS received a request for %s, which the journal does not have", id)
		}
	}
	// Per boot: each pulse needs a vend the journal began in that boot
	// (one whose payment was created there: payments are created after
	// kioskd is up and before the cut), and each vend the journal says
	// released needs a pulse. A payment vended again after a restart
	// would be a pulse in a boot with no vend of its own.
	var pulses, released, attempts, unknown, review int
	for k, bt := range boots {
		var att, rel int
		for _, x := range txns {
			if x.CreatedAt.Before(bt.ready.Add(-2*time.Second)) || x.CreatedAt.After(bt.cut.Add(2*time.Second)) {
				continue
			}
			if x.Vend != payment.VendNone {
				att++
			}
			if x.Vend == payment.VendReleased {
				rel++
			}
		}
		if len(bt.pulses) > att || len(bt.pulses) < rel {
			t.Errorf("boot %d: %d relay pulses, %d vends begun and %d released in the journal", k, len(bt.pulses), att, rel)
		}
		pulses += len(bt.pulses)
	}
	for _, x := range txns {
		if x.Quarantined {
			t.Errorf("%s: quarantined: a record the journal could not read back", x.ID)
		}
		if x.Vend != payment.VendNone && x.State != payment.Approved {
			t.Errorf("%s: vend %s for a payment %s", x.ID, x.Vend, x.State)
		}
		switch x.Vend {
		case payment.VendReleasing:
			t.Errorf("%s: still releasing after a restart: the interrupted vend was not resolved", x.ID)
		case payment.VendReleased:
			released++
		case payment.VendUnknown:
			unknown++
		}
		if x.Vend != payment.VendNone {
			attempts++
		}
		if x.Review != "" {
			review++
		}
	}
	// One vend at a time: a cut interrupts at most one.
	if unknown > len(boots)-1 {
		t.Errorf("%d vends unknown after %d cuts", unknown, len(boots)-1)
	}
	t.Logf("%s: %d cuts (%d during a relay pulse): %d payments journaled, %d requests seen by the POS, %d pulses, "+
		"%d vends released, %d interrupted (vend_unknown), %d flagged for review; filesystem clean after every cut",
		name, len(boots)-1, midPulse, len(txns), len(seen), pulses, released, unknown, review)
	if pulses < released || pulses > attempts {
		t.Errorf("%d relay pulses across all boots, %d vends begun, %d released", pulses, attempts, released)
	}
}

// journal reads every payment back through kioskd.
func (v *VM) journal() []payment.Txn {
	v.t.Helper()
	out, rc := v.run("kioskd journal -n 0 -json", 60*time.Second)
	if rc != 0 {
		v.t.Fatalf("kioskd journal: exit %d: %s", rc, out)
	}
	var txns []payment.Txn
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var x payment.Txn
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			v.t.Fatalf("kioskd journal: %v: %q", err, l)
		}
		txns = append(txns, x)
	}
	return txns
}

// fsckAfterCut checks a copy of the disk as the next mount finds it:
// ext4's journal replayed (what the kernel does at mount), then a full
// read-only check.
func fsckAfterCut(t *testing.T, disk string, i int) {
	t.Helper()
	cp := replayedCopy(t, disk, fmt.Sprintf("cut %d", i))
	defer os.Remove(cp)
	fsck(t, cp, fmt.Sprintf("after cut %d", i))
}

// replayedCopy is a copy of the disk with ext4's journal replayed; the
// caller removes it.
func replayedCopy(t *testing.T, disk, when string) string {
	t.Helper()
	cp := disk + ".fsck"
	if err := copyFile(disk, cp); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("e2fsck", "-E", "journal_only", "-y", cp).CombinedOutput()
	if code := exitCode(err); code > 1 {
		os.Remove(cp)
		t.Fatalf("%s: e2fsck -E journal_only: exit %d\n%s", when, code, out)
	}
	return cp
}

func fsck(t *testing.T, img, when string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: e2fsck -fn %s: %v\n%s", when, filepath.Base(img), err, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return 255
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
