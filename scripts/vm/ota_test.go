package vm

// The update tests (issue 15, `make vm-ota`): A/B root slots, signed RAUC
// bundles, the health gate committing an update only once kioskd has
// stayed healthy, and a bad update rolling back by itself.
//
// Updates go through `kioskd update` in the technician's shell where the
// test is about kioskd's part (Good, DuringPayment: the wait for a
// payment in progress, the refusal of new ones, the pending-update
// record), through `rauc install` where it is about the slots alone
// (Exits, Hangs, Crashes, PowerCut). The gate asks the slot's own
// `kioskd health`. On arm64 under TCG, two cores shared with a CI run,
// each test alone with its slots and bundles made: Good 1m40s (kioskd
// update to B committed in about 35 s), Crashes 1m25s, DuringPayment 2m
// (its POS holds each payment 40 s). The six together, slots and
// bundles made once: about 11 minutes (the five before DuringPayment
// took 9).
//
// The virtual board's disk is one image with an MBR, as the card is:
//
//	p1  sectors   2048..4095    1 MiB  raw: U-Boot's redundant env, two
//	                                    copies of 16 KiB at 0 and 64 KiB
//	                                    into it (disk offsets 0x100000
//	                                    and 0x110000)
//	p2  sectors   4096..266239 128 MiB root slot A (/dev/vda2)
//	p3  sectors 266240..528383 128 MiB root slot B (/dev/vda3)
//	p4  sectors 528384..       192 MiB data (/dev/vda4): secrets, journal,
//	                                    /data/rauc, the test's bundles
//
// The bootloader is the test: QEMU runs with -no-reboot, so every reset
// or reboot of the guest (its own, the watchdog's) ends the QEMU process
// and returns here, where bootNext applies RAUC's reference U-Boot boot
// script (BOOT_ORDER, BOOT_x_LEFT, one try taken per boot) to the env in
// the image with the host's fw_printenv/fw_setenv, reads that slot's
// /boot/vmlinuz and /boot/initrd out of it with debugfs and boots them
// with root= and rauc.slot=. In the guest, rauc's uboot backend edits
// the same env with its own fw_setenv (/etc/fw_env.config on /dev/vda1).
//
// Bundles are verity bundles, as the image ships them (mkbundle.sh):
// rauc mounts the squashfs through loop and dm-verity, each block
// checked as it is read, and reads the manifest from the signature, so
// the slots have no unsquashfs, as the image has none (kioskd update's
// rauc info works without it). They are signed by a CA made with
// openssl for each run (no key in the repository); the slots' keyring
// is its certificate.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// The disk's layout, in 512-byte sectors.
const (
	envStart   = 2048
	envSectors = 2048
	slotAStart = 4096
	slotBStart = 266240
	slotSecs   = 262144
	dataStart  = 528384
	dataSize   = "192M"
	diskSize   = 450 << 20
	envSize    = 0x4000
	envCopy2   = 0x10000 // the second copy, from the partition's start
	bootTries  = 3       // the reference script's BOOT_x_LEFT
)

var slotStart = map[string]int64{"A": slotAStart, "B": slotBStart}

// otaBoard is what the update tests add to a board, made once a run: the
// test CA, the root slots and the bundles of each variant.
type otaBoard struct {
	b       *board
	dir     string
	ca      string // the keyring
	cert    string // the signer's certificate and key
	key     string
	mu      sync.Mutex
	slots   map[string]string // "variant version": ext4 image
	bundles map[string]string // variant: .raucb
	err     error
}

var (
	otaMu     sync.Mutex
	otaBoards = map[string]*otaBoard{}
)

func needOTA(t *testing.T, b *board) *otaBoard {
	t.Helper()
	for _, tool := range []string{"rauc", "fw_printenv", "fw_setenv", "sfdisk", "debugfs", "openssl", "mksquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the update tests need %s on the host: apt-get install rauc libubootenv-tool fdisk e2fsprogs openssl squashfs-tools", tool)
		}
	}
	otaMu.Lock()
	defer otaMu.Unlock()
	o := otaBoards[b.name]
	if o == nil {
		o = &otaBoard{b: b, dir: filepath.Join(b.dir, "ota"), slots: map[string]string{}, bundles: map[string]string{}}
		o.err = o.makeCA()
		otaBoards[b.name] = o
	}
	if o.err != nil {
		t.Fatalf("%s: update test CA: %v", b.name, o.err)
	}
	return o
}

// hostRun runs a command on the host in dir; its output goes in the error.
func hostRun(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// makeCA makes the test CA and a signer under it. The signer has no
// extendedKeyUsage: rauc 1.8 refuses codeSigning there.
func (o *otaBoard) makeCA() error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	o.ca, o.cert, o.key = filepath.Join(o.dir, "ca.pem"), filepath.Join(o.dir, "signer.pem"), filepath.Join(o.dir, "signer.key")
	ext := filepath.Join(o.dir, "signer.ext")
	if err := os.WriteFile(ext, []byte("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
			"-subj", "/CN=kioskd virtual board test CA", "-addext", "basicConstraints=critical,CA:TRUE",
			"-addext", "keyUsage=critical,keyCertSign,cRLSign"},
		{"req", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out", "signer.csr",
			"-subj", "/CN=kioskd virtual board test signer"},
		{"x509", "-req", "-in", "signer.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
			"-out", "signer.pem", "-days", "2", "-extfile", "signer.ext"},
	} {
		if err := hostRun(o.dir, "openssl", args...); err != nil {
			return err
		}
	}
	return nil
}

// slot returns the root slot image of variant and version, made once.
func (o *otaBoard) slot(t *testing.T, variant, version string) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := variant + " " + version
	if img := o.slots[k]; img != "" {
		return img
	}
	bin, err := filepath.Abs(filepath.Join(*vmDist, "kioskd-linux-"+o.b.name))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(o.dir, "slot-"+variant+"-"+version+".ext4")
	start := time.Now()
	if err := hostRun(".", "sh", "mkslot.sh", o.b.name, bin, o.ca, variant, version, img); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: slot %s %s made in %s", o.b.name, variant, version, time.Since(start).Round(time.Second))
	o.slots[k] = img
	return img
}

// bundle returns the signed bundle of variant (version 2.0-VARIANT),
// made once.
func (o *otaBoard) bundle(t *testing.T, variant string) string {
	t.Helper()
	img := o.slot(t, variant, "2.0-"+variant)
	o.mu.Lock()
	defer o.mu.Unlock()
	if f := o.bundles[variant]; f != "" {
		return f
	}
	src := filepath.Join(o.dir, "bundle-"+variant)
	os.RemoveAll(src)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf("[update]\ncompatible=kioskd-vboard-%s\nversion=2.0-%s\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n", o.b.name, variant)
	if err := os.WriteFile(filepath.Join(src, "manifest.raucm"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(img, filepath.Join(src, "rootfs.ext4")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(o.dir, variant+".raucb")
	os.Remove(out)
	start := time.Now()
	if err := hostRun(o.dir, "rauc", "--cert", o.cert, "--key", o.key, "--keyring", o.ca, "bundle", src, out); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(out)
	t.Logf("%s: bundle %s: %d bytes, made in %s", o.b.name, variant, st.Size(), time.Since(start).Round(time.Second))
	o.bundles[variant] = out
	return out
}

// otaDisk is one test's disk image and the host's view of its env.
type otaDisk struct {
	o      *otaBoard
	dir    string
	path   string
	envCfg string
	boots  int
}

// newDisk makes the disk as the factory leaves it: slot A written and
// good to boot, B empty, the env's defaults (BOOT_ORDER "A B", three
// tries each), the data partition provisioned with the POS secret and
// the bundles of variants in /data/bundles.
func (o *otaBoard) newDisk(t *testing.T, variants ...string) *otaDisk {
	t.Helper()
	d := &otaDisk{o: o, dir: t.TempDir()}
	d.path = filepath.Join(d.dir, "disk.img")
	a := o.slot(t, "good", "1.0")
	src := filepath.Join(d.dir, "data-src")
	if err := os.MkdirAll(filepath.Join(src, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "secrets/pos.secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "bundles"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		if err := os.Link(o.bundle(t, v), filepath.Join(src, "bundles", v+".raucb")); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(d.dir, "data.img")
	table := fmt.Sprintf("label: dos\nstart=%d, size=%d, type=da\nstart=%d, size=%d, type=83\nstart=%d, size=%d, type=83\nstart=%d, type=83\n",
		envStart, envSectors, slotAStart, slotSecs, slotBStart, slotSecs, dataStart)
	if err := os.WriteFile(filepath.Join(d.dir, "table"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"truncate", "-s", strconv.Itoa(diskSize), d.path},
		{"sh", "-c", "sfdisk -q " + d.path + " <table"},
		{"dd", "if=" + a, "of=" + d.path, "bs=512", fmt.Sprintf("seek=%d", slotAStart), "conv=notrunc,sparse", "status=none"},
		{"mkfs.ext4", "-q", "-F", "-L", "kioskdata", "-d", src, data, dataSize},
		{"dd", "if=" + data, "of=" + d.path, "bs=512", fmt.Sprintf("seek=%d", dataStart), "conv=notrunc,sparse", "status=none"},
	}
	for _, s := range steps {
		if err := hostRun(d.dir, s[0], s[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(data)
	d.envCfg = filepath.Join(d.dir, "fw_env.config")
	cfg := fmt.Sprintf("%s 0x%x 0x%x\n%s 0x%x 0x%x\n", d.path, envStart*512, envSize, d.path, envStart*512+envCopy2, envSize)
	if err := os.WriteFile(d.envCfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// A blank env: fw_setenv starts from the defaults given with -f.
	def := filepath.Join(d.dir, "default.env")
	if err := os.WriteFile(def, []byte(fmt.Sprintf("BOOT_ORDER=A B\nBOOT_A_LEFT=%d\nBOOT_B_LEFT=%d\n", bootTries, bootTries)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := hostRun(d.dir, "fw_setenv", "-c", d.envCfg, "-f", def, "-s", def); err != nil {
		t.Fatal(err)
	}
	return d
}

// env is the disk's U-Boot env as the host's fw_printenv reads it.
func (d *otaDisk) env(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("fw_printenv", "-c", d.envCfg).CombinedOutput()
	if err != nil {
		t.Fatalf("fw_printenv: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// setenv writes variables (key=value lines: fw_setenv -s ignores the
// "key value" form without a word).
func (d *otaDisk) setenv(t *testing.T, kv ...string) {
	t.Helper()
	f := filepath.Join(d.dir, "setenv")
	if err := os.WriteFile(f, []byte(strings.Join(kv, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := hostRun(d.dir, "fw_setenv", "-c", d.envCfg, "-s", f); err != nil {
		t.Fatal(err)
	}
}

// choose is RAUC's reference U-Boot boot script: missing variables get
// their defaults; the first slot of BOOT_ORDER with tries left is booted
// and loses one; with none left every slot gets its tries back and the
// board resets (here: the script runs again).
func (d *otaDisk) choose(t *testing.T) string {
	t.Helper()
	for range 2 {
		e := d.env(t)
		var set []string
		if e["BOOT_ORDER"] == "" {
			e["BOOT_ORDER"] = "A B"
			set = append(set, "BOOT_ORDER=A B")
		}
		for _, s := range []string{"A", "B"} {
			if e["BOOT_"+s+"_LEFT"] == "" {
				e["BOOT_"+s+"_LEFT"] = strconv.Itoa(bootTries)
				set = append(set, fmt.Sprintf("BOOT_%s_LEFT=%d", s, bootTries))
			}
		}
		for _, s := range strings.Fields(e["BOOT_ORDER"]) {
			left, _ := strconv.Atoi(e["BOOT_"+s+"_LEFT"])
			if _, ok := slotStart[s]; !ok || left <= 0 {
				continue
			}
			d.setenv(t, append(set, fmt.Sprintf("BOOT_%s_LEFT=%d", s, left-1))...)
			t.Logf("bootloader: found valid slot %s, %d attempts remaining (env %s)", s, left-1, d.envString(t))
			return s
		}
		t.Logf("bootloader: no valid slot found, resetting tries to %d", bootTries)
		d.setenv(t, fmt.Sprintf("BOOT_A_LEFT=%d", bootTries), fmt.Sprintf("BOOT_B_LEFT=%d", bootTries))
	}
	t.Fatal("bootloader: no slot to boot after resetting the tries")
	return ""
}

func (d *otaDisk) envString(t *testing.T) string {
	e := d.env(t)
	return fmt.Sprintf("BOOT_ORDER=%q BOOT_A_LEFT=%s BOOT_B_LEFT=%s", e["BOOT_ORDER"], e["BOOT_A_LEFT"], e["BOOT_B_LEFT"])
}

// bootNext is one power-on: the bootloader's choice, that slot's kernel
// and initramfs, QEMU until the guest resets or reboots.
func (d *otaDisk) bootNext(t *testing.T, name string) (*VM, string) {
	t.Helper()
	s := d.choose(t)
	d.boots++
	dir := filepath.Join(d.dir, fmt.Sprintf("boot%02d", d.boots))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fs := fmt.Sprintf("%s?offset=%d", d.path, slotStart[s]*512)
	for _, f := range []string{"vmlinuz", "initrd"} {
		if err := hostRun(dir, "debugfs", "-R", "dump /boot/"+f+" "+filepath.Join(dir, f), fs); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("bootloader: slot %s has no /boot/%s", s, f)
		}
	}
	part := map[string]int{"A": 2, "B": 3}[s]
	v := d.o.b.boot(t, vmOpts{disk: d.path, name: name, noReboot: true,
		kernel: filepath.Join(dir, "vmlinuz"), initrd: filepath.Join(dir, "initrd"),
		cmdline: fmt.Sprintf("root=/dev/vda%d rauc.slot=%s", part, s)})
	return v, s
}

// waitExit waits for QEMU to end: the guest reset or rebooted.
func (v *VM) waitExit(d time.Duration, what string) {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(d):
		v.t.Fatalf("%s: the guest did not reset within %s; console ends:\n%s", what, d, v.console.tail(30))
	}
}

// payOnce connects the host's POS simulator and pays once, approved and
// vended.
func (v *VM) payOnce(amount string) payment.Txn {
	v.t.Helper()
	startPOS(v.t, v, newPOSSim())
	v.waitLinked(30 * time.Second)
	txn := v.pay(amount)
	if txn.State != payment.Approved || txn.Vend != payment.VendReleased {
		v.t.Fatalf("payment: %s %s, want approved, released", txn.State, txn.Vend)
	}
	return txn
}

const (
	gateGood   = "booted slot marked good"
	trialFile  = "rauc/kioskd-trial" // on the data partition: the slot on trial (kioskd-rauc-pre-install)
	gateReboot = "rebooting: the bootloader counts this try"
	bootWait   = 150 * time.Second // power-on to kioskd listening, under TCG
)

// bootA boots the factory disk's slot A, waits for the gate to commit
// it and pays once.
func (d *otaDisk) bootA(t *testing.T) (*VM, payment.Txn) {
	t.Helper()
	v, s := d.bootNext(t, "slot-a")
	if s != "A" {
		t.Fatalf("first boot from slot %s, want A", s)
	}
	v.waitConsole(0, "vboard: slot A, version 1.0", bootWait)
	v.ready(bootWait)
	txn := v.payOnce("1.50")
	v.waitConsole(0, gateGood, 60*time.Second)
	return v, txn
}

// install installs a bundle from /data/bundles in the guest and checks
// what rauc left in the env: B first, its tries full.
func (d *otaDisk) install(t *testing.T, v *VM, variant string) {
	t.Helper()
	start := time.Now()
	out, rc := v.run("rauc install /data/bundles/"+variant+".raucb 2>&1", 5*time.Minute)
	if rc != 0 {
		t.Fatalf("rauc install: exit %d:\n%s", rc, out)
	}
	t.Logf("%s: rauc install %s: %s", d.o.b.name, variant, time.Since(start).Round(100*time.Millisecond))
	// The guest's fw_setenv wrote through its page cache to the disk;
	// the host reads the env after the guest is down.
}

// update installs a bundle from /data/bundles with `kioskd update` in
// the guest's shell, as a technician does: kioskd stops selling, waits
// for the payment in progress (wait says when the test's part of that is
// done), runs rauc install, writes its pending-update record and reboots
// the board. update follows kioskd's log and the command's states on the
// console from line from, waits for QEMU to end and checks the record
// on the data partition; it returns when kioskd began the install.
func (d *otaDisk) update(t *testing.T, v *VM, variant string, from int, wait func()) time.Time {
	t.Helper()
	bundle := "/data/bundles/" + variant + ".raucb"
	start := time.Now()
	v.run("(kioskd update "+bundle+"; echo \"kioskd update: exit $?\") >/dev/console 2>&1 &", 20*time.Second)
	v.waitConsole(from, "update: not taking new payments", 60*time.Second)
	if wait != nil {
		wait()
	}
	_, installing := v.waitConsole(from, "update: installing", 3*time.Minute)
	v.waitConsole(from, "installing: rauc install", 30*time.Second)
	_, installed := v.waitConsole(from, "update: installed; rebooting", 5*time.Minute)
	// Not awaited: the command's "rebooting" line and its exit 0. The
	// reboot's kill of every process may end it before it prints them
	// (when rcK stops kioskd before its next poll, it goes by the
	// pending-update record: TestUpdateDaemonGoneAfterInstall).
	t.Logf("%s: kioskd update %s: waiting %s, rauc install %s", d.o.b.name, variant,
		installing.Sub(start).Round(100*time.Millisecond), installed.Sub(installing).Round(100*time.Millisecond))
	v.waitExit(90*time.Second, "the reboot after kioskd update")
	// The guest's fw_setenv and kioskd wrote through its page cache to
	// the disk before the reboot synced it; the host reads them now.
	var p struct {
		FromSlot      string `json:"from_slot"`
		Bundle        string `json:"bundle"`
		BundleVersion string `json:"bundle_version"`
	}
	raw := d.dataFile(t, "kioskd/update-pending.json")
	if err := json.Unmarshal(raw, &p); err != nil || p.FromSlot != "A" || p.Bundle != bundle || p.BundleVersion != "2.0-"+variant {
		t.Errorf("update-pending.json after kioskd update: %s (%v); want from A, %s, version 2.0-%s", raw, err, bundle, variant)
	}
	return installing
}

// dataFile reads a file of the data partition (/dev/vda4) out of the
// disk image with debugfs; the guest must be down.
func (d *otaDisk) dataFile(t *testing.T, path string) []byte {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat /"+path, fmt.Sprintf("%s?offset=%d", d.path, int64(dataStart)*512)).Output()
	if err != nil {
		t.Fatalf("debugfs cat /%s: %v", path, err)
	}
	return out
}

// updateState is the update in `kioskd status -json`.
func (v *VM) updateState() control.Update {
	v.t.Helper()
	out, rc := v.run("kioskd status -json", 20*time.Second)
	var st struct {
		Update control.Update `json:"update"`
	}
	if rc != 0 || json.Unmarshal([]byte(out), &st) != nil {
		v.t.Fatalf("kioskd status -json: exit %d: %s", rc, out)
	}
	return st.Update
}

// reboot reboots the guest and waits for QEMU to end.
func (v *VM) reboot(what string) {
	v.t.Helper()
	v.send("reboot")
	v.waitExit(90*time.Second, what)
}

// rollBack boots the bad slot B until its tries are gone (the gate's
// reboot or the watchdog ends each boot, as wait says), then expects A
// back, committed, taking payments, with B bad.
func (d *otaDisk) rollBack(t *testing.T, before []payment.Txn, wait func(v *VM, try int)) {
	t.Helper()
	start := time.Now()
	for try := 1; try <= bootTries; try++ {
		v, s := d.bootNext(t, fmt.Sprintf("slot-b-try%d", try))
		if s != "B" {
			t.Fatalf("try %d: booted slot %s, want B (env %s)", try, s, d.envString(t))
		}
		wait(v, try)
		t.Logf("%s: try %d of slot B over after %s", d.o.b.name, try, time.Since(start).Round(time.Second))
	}
	if e := d.env(t); e["BOOT_B_LEFT"] != "0" {
		t.Fatalf("after %d tries of B: env %s, want BOOT_B_LEFT=0", bootTries, d.envString(t))
	}
	v, s := d.bootNext(t, "slot-a-again")
	if s != "A" {
		t.Fatalf("after B's tries: booted slot %s, want A", s)
	}
	v.waitConsole(0, "vboard: slot A, version 1.0", bootWait)
	v.ready(bootWait)
	t.Logf("%s: rolled back to A %s after the reboot into B", d.o.b.name, time.Since(start).Round(time.Second))
	txn := v.payOnce("2.50")
	v.waitConsole(0, gateGood, 60*time.Second)
	if booted, boot := v.raucStatus(); booted != "A" || boot["B"] != "bad" || boot["A"] != "good" {
		t.Errorf("rauc status after the rollback: booted %q, boot status %v; want A, A good, B bad", booted, boot)
	}
	after := v.journal()
	checkKept(t, before, after)
	if len(after) != len(before)+1 || after[0].ID != txn.ID {
		t.Errorf("journal after the rollback: %d payments, want the %d before and %s", len(after), len(before), txn.ID)
	}
	v.run("sync", 30*time.Second)
	v.kill()
	t.Logf("%s: env after the rollback: %s", d.o.b.name, d.envString(t))
	if e := d.env(t); e["BOOT_B_LEFT"] != "0" || e["BOOT_A_LEFT"] != strconv.Itoa(bootTries) {
		t.Errorf("env after the rollback: %s, want BOOT_A_LEFT=%d (A committed again), BOOT_B_LEFT=0", d.envString(t), bootTries)
	}
}

// raucStatus is `rauc status --detailed --output-format=json` in the
// guest: the slot booted (its bootname) and each slot's boot status
// (good, bad) by bootname.
func (v *VM) raucStatus() (booted string, boot map[string]string) {
	v.t.Helper()
	out, rc := v.run("rauc status --detailed --output-format=json 2>/dev/null", 60*time.Second)
	var st struct {
		Booted string                      `json:"booted"`
		Slots  []map[string]map[string]any `json:"slots"`
	}
	if rc != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil {
		v.t.Fatalf("rauc status: exit %d: %s", rc, out)
	}
	boot = map[string]string{}
	for _, m := range st.Slots {
		for _, s := range m {
			name, _ := s["bootname"].(string)
			bs, _ := s["boot_status"].(string)
			boot[name] = bs
		}
	}
	return st.Booted, boot
}

// checkKept: every payment journaled before the update is still there,
// the same.
func checkKept(t *testing.T, before, after []payment.Txn) {
	t.Helper()
	got := map[string]payment.Txn{}
	for _, x := range after {
		got[x.ID] = x
	}
	for _, x := range before {
		y, ok := got[x.ID]
		if !ok || y.State != x.State || y.Vend != x.Vend || y.Amount != x.Amount {
			t.Errorf("payment %s before the update: %s %s %d; after: %+v (found %v)", x.ID, x.State, x.Vend, x.Amount, y, ok)
		}
	}
}

// TestVMOTAGood: an update that is good. Slot A boots and takes a
// payment; the bundle installs into B; the reboot boots B (the env's
// first choice now); the gate commits it once kioskd has been healthy
// for HEALTH_MIN_UP; the env has B first with its tries full, and the
// journal on /data has the payments from before.
func TestVMOTAGood(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "good")
		v, _ := d.bootA(t)
		before := v.journal()
		start := time.Now()
		d.update(t, v, "good", v.console.len(), nil)
		if e := d.env(t); e["BOOT_ORDER"] != "B A" {
			t.Fatalf("after the install: env %s, want BOOT_ORDER \"B A\"", d.envString(t))
		}
		// rauc's pre-install handler put B on trial: the gate may reboot
		// it until it commits it.
		if got := string(d.dataFile(t, trialFile)); got != "B\n" {
			t.Errorf("%s after the install: %q, want B", trialFile, got)
		}
		v, s := d.bootNext(t, "slot-b")
		if s != "B" {
			t.Fatalf("after the install: booted slot %s, want B", s)
		}
		v.waitConsole(0, "vboard: slot B, version 2.0-good", bootWait)
		v.waitConsole(0, "booted; committed once the health gate marks slot B good", bootWait)
		v.ready(bootWait)
		_, at := v.waitConsole(0, gateGood, 90*time.Second)
		t.Logf("%s: update committed %s after kioskd update started (%s after B's power-on)", b.name,
			time.Since(start).Round(time.Second), at.Sub(v.start).Round(time.Second))
		if u := v.updateState(); u.State != control.UpdateIdle || u.LastFailed != nil {
			t.Errorf("update state on B: %+v, want idle, no failure", u)
		}
		if booted, boot := v.raucStatus(); booted != "B" || boot["B"] != "good" {
			t.Errorf("rauc status after the update: booted %q, boot status %v; want B, good", booted, boot)
		}
		checkKept(t, before, v.journal())
		txn := v.payOnce("3.00")
		if j := v.journal(); len(j) != len(before)+1 || j[0].ID != txn.ID {
			t.Errorf("journal on B: %d payments, want the %d from A and %s", len(j), len(before), txn.ID)
		}
		v.run("sync", 30*time.Second)
		v.kill()
		if got := string(d.dataFile(t, trialFile)); got != "" {
			t.Errorf("%s after the commit: %q, want none: B's trial is over", trialFile, got)
		}
		e := d.env(t)
		t.Logf("%s: env after the update: %s", b.name, d.envString(t))
		if e["BOOT_ORDER"] != "B A" || e["BOOT_B_LEFT"] != strconv.Itoa(bootTries) {
			t.Errorf("env after the commit: %s, want BOOT_ORDER \"B A\", BOOT_B_LEFT=%d", d.envString(t), bootTries)
		}
	})
}

// TestVMOTAExits: an update whose kioskd exits at once. B never gets
// healthy; its gate reboots it at HEALTH_DEADLINE, three times; the
// bootloader goes back to A, which boots, commits itself again and
// takes a payment, and RAUC reports B bad.
func TestVMOTAExits(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "exits")
		v, _ := d.bootA(t)
		before := v.journal()
		d.install(t, v, "exits")
		v.reboot("reboot after the install")
		d.rollBack(t, before, func(v *VM, try int) {
			v.waitConsole(0, "vboard: slot B, version 2.0-exits", bootWait)
			v.waitConsole(0, "kioskd-faulty: exits", bootWait)
			v.waitConsole(0, gateReboot, 90*time.Second)
			v.waitExit(60*time.Second, fmt.Sprintf("try %d", try))
		})
	})
}

// TestVMOTAHangs: an update whose kioskd arms the watchdog and then
// hangs. The watchdog resets B each time, before the gate's deadline;
// after three tries the bootloader goes back to A.
func TestVMOTAHangs(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "hangs")
		v, _ := d.bootA(t)
		before := v.journal()
		d.install(t, v, "hangs")
		v.reboot("reboot after the install")
		d.rollBack(t, before, func(v *VM, try int) {
			v.waitConsole(0, "vboard: slot B, version 2.0-hangs", bootWait)
			v.waitConsole(0, "kioskd-faulty: hangs", bootWait)
			v.waitExit(90*time.Second, fmt.Sprintf("try %d", try))
			if _, _, ok := v.console.wait(0, func(l string) bool { return strings.Contains(l, gateReboot) }, 0, v.done); ok {
				t.Errorf("try %d: the gate rebooted; want the watchdog's reset", try)
			}
		})
	})
}

// TestVMOTACrashes: an update whose kioskd runs, answers status and is
// killed 3 s after each start. The gate wants HEALTH_MIN_UP of health,
// not an answer: it must not commit B, and reboots it at its deadline
// (the tries that follow and the fallback are TestVMOTAExits').
func TestVMOTACrashes(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "crashes")
		v, _ := d.bootA(t)
		d.install(t, v, "crashes")
		v.reboot("reboot after the install")
		v, s := d.bootNext(t, "slot-b")
		if s != "B" {
			t.Fatalf("after the install: booted slot %s, want B", s)
		}
		v.waitConsole(0, "vboard: slot B, version 2.0-crashes", bootWait)
		// kioskd answered on B before it was killed: the gate saw a
		// kioskd that was up, not one that stayed up.
		v.waitConsole(0, "pos server listening", bootWait)
		v.waitConsole(0, "kioskd-faulty: crashes", bootWait)
		v.waitConsole(0, gateReboot, 90*time.Second)
		v.waitExit(60*time.Second, "the gate's reboot")
		if _, _, ok := v.console.wait(0, func(l string) bool { return strings.Contains(l, gateGood) }, 0, v.done); ok {
			t.Fatal("the gate committed a kioskd that is killed 3 s after each start")
		}
		if e := d.env(t); e["BOOT_ORDER"] != "B A" || e["BOOT_B_LEFT"] != strconv.Itoa(bootTries-1) {
			t.Errorf("after one failed try of B: env %s, want BOOT_ORDER \"B A\", BOOT_B_LEFT=%d", d.envString(t), bootTries-1)
		}
	})
}

// TestVMOTAPowerCut: the power goes during the slot write of an install,
// -vm.otacuts times (default 1): the first cut a second into the write,
// the others at random points of its first two seconds (the seed is
// logged). RAUC marked B unbootable before writing it, so A boots after
// every cut, with its journal; the install again then commits B, and its
// write's length is logged, to show where the cuts fell in it.
func TestVMOTAPowerCut(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "good")
		v, _ := d.bootA(t)
		before := v.journal()
		seed := time.Now().UnixNano()
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		var cuts []string
		for cut := 1; cut <= *vmOTACuts; cut++ {
			from := v.console.len()
			v.send("rauc install /data/bundles/good.raucb >/dev/console 2>&1 &")
			_, at := v.waitConsole(from, "Copying image to rootfs.1", 2*time.Minute)
			delay := time.Second
			if cut > 1 {
				delay = time.Duration(rng.Int64N(int64(2 * time.Second)))
			}
			<-time.After(delay) // the cut's instant in the write: not a wait for anything
			v.kill()
			cuts = append(cuts, time.Since(at).Round(10*time.Millisecond).String())
			t.Logf("%s: power cut %d %s after the write began; env %s", b.name, cut, cuts[len(cuts)-1], d.envString(t))
			var s string
			v, s = d.bootNext(t, fmt.Sprintf("slot-a-after-cut%d", cut))
			if s != "A" {
				t.Fatalf("after cut %d, %s into the write of B: booted slot %s, want A (env %s)", cut, cuts[len(cuts)-1], s, d.envString(t))
			}
			v.waitConsole(0, "vboard: slot A, version 1.0", bootWait)
			v.ready(bootWait)
			v.waitConsole(0, gateGood, 60*time.Second)
			checkKept(t, before, v.journal())
		}
		// The install again, whole, on the console: from the write's
		// start to rauc's exit is what the cuts fell in.
		from := v.console.len()
		v.send(`rauc install /data/bundles/good.raucb >/dev/console 2>&1; echo "rauc install: exit" $? >/dev/console`)
		_, began := v.waitConsole(from, "Copying image to rootfs.1", 2*time.Minute)
		_, ended := v.waitConsole(from, "rauc install: exit 0", 5*time.Minute)
		t.Logf("%s: %d power cuts (seed %d) at %s into the write; slot A booted after each; uncut, the write to rauc's exit takes %s",
			b.name, len(cuts), seed, strings.Join(cuts, ", "), ended.Sub(began).Round(10*time.Millisecond))
		v.reboot("reboot after the install")
		v, s := d.bootNext(t, "slot-b")
		if s != "B" {
			t.Fatalf("after the install: booted slot %s, want B", s)
		}
		v.waitConsole(0, "vboard: slot B, version 2.0-good", bootWait)
		v.waitConsole(0, gateGood, bootWait)
		v.ready(bootWait)
		checkKept(t, before, v.journal())
		v.run("sync", 30*time.Second)
		v.kill()
		if e := d.env(t); e["BOOT_ORDER"] != "B A" || e["BOOT_B_LEFT"] != strconv.Itoa(bootTries) {
			t.Errorf("env after the commit: %s, want BOOT_ORDER \"B A\", BOOT_B_LEFT=%d", d.envString(t), bootTries)
		}
	})
}

// duringPaymentDelay is how long the POS holds each payment of
// TestVMOTADuringPayment (possim's slow: ack, then the result after it):
// room for kioskd update to start and a second payment to be refused
// while the first is in progress, under TCG on shared cores.
const duringPaymentDelay = 40 * time.Second

// TestVMOTADuringPayment: `kioskd update` during a payment. A payment is
// at the POS when the update starts: a second payment meanwhile is
// refused with the update's reason, the install waits for the first
// payment's end and its vend (the relay pulse ends before rauc starts),
// then B boots and is committed, and the journal on B has every payment
// from A, the one that was in progress approved and released.
func TestVMOTADuringPayment(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		o := needOTA(t, b)
		d := o.newDisk(t, "good")
		v, s := d.bootNext(t, "slot-a")
		if s != "A" {
			t.Fatalf("first boot from slot %s, want A", s)
		}
		v.waitConsole(0, "vboard: slot A, version 1.0", bootWait)
		v.ready(bootWait)
		pos := newPOSSim()
		pos.behaviour, pos.delay = possim.Slow, duringPaymentDelay
		startPOS(t, v, pos)
		v.waitLinked(30 * time.Second)
		if txn := v.pay("1.50"); txn.State != payment.Approved || txn.Vend != payment.VendReleased {
			t.Fatalf("payment before the update: %s %s, want approved, released", txn.State, txn.Vend)
		}
		v.waitConsole(0, gateGood, 60*time.Second)
		before := v.journal()

		// The payment in progress: at the POS, which holds it.
		from, reqs := v.console.len(), len(pos.requests())
		since := time.Now()
		v.run("kioskd pay -amount 2.00 -timeout 3m -json >/data/held.json 2>&1 &", 20*time.Second)
		if !pos.waitRequest(reqs, 60*time.Second, v.done) {
			t.Fatal("the POS did not get the payment within 60s")
		}
		held := pos.requests()[reqs]
		bundle := "/data/bundles/good.raucb"
		var pulse pulse
		installing := d.update(t, v, "good", from, func() {
			// The update waits: the payment is in progress, nothing
			// installs, a new payment is refused with the reason.
			if u := v.updateState(); u.State != control.UpdateWaiting {
				t.Errorf("update with a payment in progress: %+v, want waiting", u)
			}
			out, rc := v.run("kioskd pay -amount 1.00 -timeout 30s -json 2>&1", 60*time.Second)
			if rc != 1 || !strings.Contains(out, "updating: installing "+bundle) {
				t.Errorf("a payment during the update: exit %d: %s; want exit 1, refused \"updating: installing %s\"", rc, out, bundle)
			}
			if txn := v.txn(held); txn.State.Final() {
				t.Fatalf("the held payment ended (%s) before the test saw the update wait: raise duringPaymentDelay", txn.Summary())
			}
			if _, _, ok := v.console.wait(from, func(l string) bool { return strings.Contains(l, "update: installing") }, 0, v.done); ok {
				t.Error("rauc install began while the payment was in progress")
			}
			// The payment ends and vends; only then does the install begin.
			ps := v.gpio.waitPulses(lineRelay, true, since, 1, duringPaymentDelay+60*time.Second)
			if len(ps) != 1 || ps[0].off.IsZero() {
				t.Fatalf("relay pulses of the held payment: %v, want one", ps)
			}
			pulse = ps[0]
		})
		if !installing.After(pulse.off) {
			t.Errorf("rauc install began at %s, the held payment's vend pulse ended at %s", installing.Format(time.StampMilli), pulse.off.Format(time.StampMilli))
		}
		t.Logf("%s: the held payment's vend ended %s after it began; the install began %s after the vend", b.name,
			pulse.off.Sub(since).Round(100*time.Millisecond), installing.Sub(pulse.off).Round(100*time.Millisecond))
		if ps := v.gpio.pulses(lineRelay, true, since); len(ps) != 1 {
			t.Errorf("relay pulses on A since the held payment: %v, want one", ps)
		}

		v, s = d.bootNext(t, "slot-b")
		if s != "B" {
			t.Fatalf("after the update: booted slot %s, want B (env %s)", s, d.envString(t))
		}
		v.waitConsole(0, "vboard: slot B, version 2.0-good", bootWait)
		v.ready(bootWait)
		v.waitConsole(0, gateGood, 90*time.Second)
		if booted, boot := v.raucStatus(); booted != "B" || boot["B"] != "good" {
			t.Errorf("rauc status after the update: booted %q, boot status %v; want B, good", booted, boot)
		}
		out, _ := v.run("cat /data/held.json", 20*time.Second)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var got payment.Txn
		if json.Unmarshal([]byte(lines[len(lines)-1]), &got) != nil || got.ID != held || got.State != payment.Approved || got.Vend != payment.VendReleased {
			t.Errorf("kioskd pay of the held payment %s printed: %s; want it approved, released", held, out)
		}
		after := v.journal()
		checkKept(t, before, after)
		if len(after) != len(before)+1 || after[0].ID != held || after[0].State != payment.Approved || after[0].Vend != payment.VendReleased {
			t.Errorf("journal on B: %d payments, newest %+v; want the %d from before and %s approved, released", len(after), after[0], len(before), held)
		}
		v.run("sync", 30*time.Second)
		v.kill()
		if e := d.env(t); e["BOOT_ORDER"] != "B A" || e["BOOT_B_LEFT"] != strconv.Itoa(bootTries) {
			t.Errorf("env after the commit: %s, want BOOT_ORDER \"B A\", BOOT_B_LEFT=%d", d.envString(t), bootTries)
		}
	})
}
