package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/qibixx/qibixxsim"
)

// TestQibixxThroughDaemon: a kioskd process with [mdb] transport
// "qibixx" on a pty, whose far end is the simulated board and its VMC,
// sells one product: the board's vend request becomes a POS payment, the
// approval goes to the board as C,VEND for the price, and the VMC's
// success journals the vend released. kioskd status shows the reader.
func TestQibixxThroughDaemon(t *testing.T) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	board := qibixxsim.New(master)
	defer board.Close()
	d, cfgPath := mdbDaemon(t, "qibixx", slave)
	stop := approvingPOS(t, d)
	defer stop()
	if err := board.Up(20 * time.Second); err != nil {
		t.Fatalf("kioskd did not bring the board up: %v\n%s", err, d.logText())
	}
	if got := board.SetConf(); got["mdb-addr"] != "0x10" || got["mdb-currency-code"] != "0x1458" || got["mdb-always-idle"] != "1" {
		t.Errorf("board configured %v", got)
	}
	c, err := board.Choose("1.50", 12, 20*time.Second)
	if err != nil || c != "C,VEND,1.50" {
		t.Fatalf("the board got %q %v, want C,VEND,1.50\n%s", c, err, d.logText())
	}
	if err := board.Dispense(); err != nil {
		t.Fatal(err)
	}
	tx := waitNewest(t, d, func(tx payment.Txn) bool { return tx.Vend == payment.VendReleased })
	if tx.Amount != 150 || tx.State != payment.Approved || tx.Review != "" {
		t.Fatalf("the Qibixx sale: %s", tx.Summary())
	}
	t.Logf("sale: %s", tx.Summary())

	code, out, errs := kioskd(t, "", "status", "-config", cfgPath)
	if code != exitOK {
		t.Fatalf("kioskd status: exit %d %s", code, errs)
	}
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "mdb reader on "+slave+": ") {
			line = strings.TrimSpace(l)
		}
	}
	if !strings.Contains(line, ": Qibixx board, enabled, ") {
		t.Fatalf("kioskd status: no mdb line for %s, enabled:\n%s", slave, out)
	}
	t.Logf("status: %s", line)
	// The board answers the bus itself: there is no bus trace, and the
	// technician is told why.
	if code, _, errs := kioskd(t, "", "mdb", "trace", "-config", cfgPath, "-follow=false"); code == exitOK || !strings.Contains(errs, "Qibixx board") {
		t.Fatalf("kioskd mdb trace on a qibixx reader: exit %d, %q; want a refusal naming the board", code, errs)
	}
	statusMatchesAPIDoc(t, d)
}

// A board link over TCP that drops (the simulator gone) raises the mdb
// fault; kioskd dials again, configures the board again, and the fault
// clears.
func TestQibixxLinkDropIsAFault(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	k := startKioskConfig(t, fmt.Sprintf("[mdb]\nenabled = true\ntransport = \"qibixx\"\ndevice = %q\n", ln.Device()), nil)
	c := control.NewClient(filepath.Join(k.dir, "ctl.sock"))
	accept := func() *qibixxsim.Board {
		t.Helper()
		var conn net.Conn
		select {
		case conn = <-ln.Conns:
		case <-time.After(20 * time.Second):
			t.Fatal("kioskd did not dial the board")
		}
		b := qibixxsim.New(conn)
		if err := b.Up(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// statusUntil asks the daemon again every 20 ms (not synchronising)
	// until ok, within 20 s.
	statusUntil := func(what string, ok func(control.Status) bool) control.Status {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := c.Status(ctx)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok(st) {
				return st
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not within 20 s: mdb %+v, faults %v", what, st.MDB, st.Hardware.Faults)
			case <-tick.C:
			}
		}
	}
	b := accept()
	statusUntil("enabled", func(st control.Status) bool { return st.MDB != nil && st.MDB.State == "enabled" })
	b.Close()
	st := statusUntil("the fault", func(st control.Status) bool { _, ok := st.Hardware.Faults["mdb"]; return ok })
	if msg := st.Hardware.Faults["mdb"]; !strings.Contains(msg, ln.Device()) {
		t.Errorf("mdb fault %q does not name %s", msg, ln.Device())
	}
	b = accept()
	defer b.Close()
	st = statusUntil("enabled again", func(st control.Status) bool {
		_, faulted := st.Hardware.Faults["mdb"]
		return !faulted && st.MDB != nil && st.MDB.State == "enabled"
	})
	if st.MDB.Transport != "qibixx" || st.MDB.Connects != 2 || st.MDB.Drops != 1 {
		t.Errorf("status mdb %+v: want transport qibixx, 2 connects, 1 drop", st.MDB)
	}
}
