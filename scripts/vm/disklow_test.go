package vm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// diskStatus is the part of `kioskd status -json` TestVMDiskLow reads.
type diskStatus struct {
	Hardware struct {
		Faults map[string]string `json:"faults"`
		Disk   *struct {
			FreeBytes      uint64 `json:"free_bytes"`
			WarnBelowBytes uint64 `json:"warn_below_bytes"`
		} `json:"disk"`
	} `json:"hardware"`
}

func (v *VM) diskStatus() diskStatus {
	v.t.Helper()
	out, rc := v.run("kioskd status -json", 20*time.Second)
	var st diskStatus
	if rc != 0 || json.Unmarshal([]byte(out), &st) != nil {
		v.t.Fatalf("kioskd status -json: exit %d: %s", rc, out)
	}
	return st
}

// waitDiskFault waits until the disk fault is raised (or cleared) in
// kioskd's status. The machine looks at the partition once a minute.
func (v *VM) waitDiskFault(raised bool, d time.Duration) diskStatus {
	v.t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := v.diskStatus()
		if _, ok := st.Hardware.Faults["disk"]; ok == raised {
			return st
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("disk fault raised=%v not reached within %s: %+v", raised, d, st.Hardware)
		}
		select {
		case <-v.done:
			v.t.Fatal("QEMU exited")
		case <-time.After(2 * time.Second): // polling the guest, not synchronising the test
		}
	}
}

// TestVMDiskLow: the data partition filled on the real kernel (ext4,
// statfs) to below [journal] min_free_mb raises the disk fault: in the
// status, on the red LED (its slow blink, the green off); a payment is
// still taken and vended; and once room is made the fault clears.
func TestVMDiskLow(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "disklow"})
		v.ready(90 * time.Second)
		pos := newPOSSim()
		startPOS(t, v, pos)
		v.waitLinked(30 * time.Second)
		st := v.waitDiskFault(false, 10*time.Second)
		if st.Hardware.Disk == nil || st.Hardware.Disk.WarnBelowBytes != 8<<20 {
			t.Fatalf("status disk %+v, want the partition looked at with the rig's 8 MiB level", st.Hardware.Disk)
		}
		// Leave 4 MiB for kioskd: half the level.
		free := st.Hardware.Disk.FreeBytes
		fill := (free - 4<<20) >> 10
		if out, rc := v.run(fmt.Sprintf("dd if=/dev/zero of=/data/fill bs=1024 count=%d 2>&1 && sync", fill), 120*time.Second); rc != 0 {
			t.Fatalf("fill the data partition: exit %d: %s", rc, out)
		}
		since := time.Now()
		st = v.waitDiskFault(true, 100*time.Second)
		msg := st.Hardware.Faults["disk"]
		t.Logf("%s: %d MiB free, filled %d MiB: %s", b.name, free>>20, fill>>10, msg)
		if !strings.Contains(msg, "data partition nearly full") {
			t.Errorf("disk fault %q", msg)
		}
		if reds := v.gpio.waitPulses(lineRed, false, since, 2, 5*time.Second); len(reds) < 2 {
			t.Errorf("red LED: %d blinks with the disk fault, want the slow blink", len(reds))
		}
		if v.gpio.level(lineGreen, false) {
			t.Error("green LED on under the disk fault")
		}
		// Selling goes on.
		paid := time.Now()
		txn := v.pay("2.00")
		if txn.State != payment.Approved || txn.Vend != payment.VendReleased {
			t.Fatalf("payment on a nearly full partition: %s %s %q, want approved, released", txn.State, txn.Vend, txn.Review)
		}
		if ps := v.gpio.waitPulses(lineRelay, true, paid, 1, 5*time.Second); len(ps) != 1 {
			t.Fatalf("relay pulses for the payment: %v, want one", ps)
		}
		if out, rc := v.run("rm /data/fill && sync", 60*time.Second); rc != 0 {
			t.Fatalf("rm /data/fill: exit %d: %s", rc, out)
		}
		v.waitDiskFault(false, 100*time.Second)
		if !v.gpio.level(lineGreen, false) {
			t.Error("green LED not back on once the disk fault cleared")
		}
	})
}
