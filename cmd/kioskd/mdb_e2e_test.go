package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// mdbVMC is the test's vending machine controller on the stream
// transport's TCP end: each connection kioskd dials is a bus.
type mdbVMC struct {
	t  *testing.T
	ln *mdbtest.Listener
	c  net.Conn
	v  *vmcsim.VMC
}

// connect takes kioskd's next connection and brings the reader up as a
// VMC does at power-on (reset, setup, expansion id, enable).
func (m *mdbVMC) connect() {
	m.t.Helper()
	select {
	case c := <-m.ln.Conns:
		if m.c != nil {
			m.c.Close()
		}
		m.c = c
	case <-time.After(20 * time.Second):
		m.t.Fatal("kioskd did not dial the VMC")
	}
	m.v = vmcsim.New(&mdbtest.StreamVMC{C: m.c}, mdb.AddrCashless1)
	if _, err := m.v.Init(mdb.OptionAlwaysIdle); err != nil {
		m.t.Fatalf("reader init: %v", err)
	}
}

// pollFor polls as a VMC does, every 20 ms (the bus's own pace, not the
// test's synchronisation), until a poll reply carries code or d passes;
// it returns the messages of that reply.
func (m *mdbVMC) pollFor(code byte, d time.Duration) []vmcsim.Message {
	m.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ms, err := m.v.Poll()
		if err != nil {
			m.t.Fatalf("poll: %v", err)
		}
		for _, msg := range ms {
			if msg.Code == code {
				return ms
			}
		}
		<-time.After(20 * time.Millisecond)
	}
	m.t.Fatalf("no poll response %02X within %s", code, d)
	return nil
}

// vend asks for a vend and waits for Vend Approved.
func (m *mdbVMC) vend(price, item uint16) {
	m.t.Helper()
	if r, err := m.v.VendRequest(price, item); err != nil || r.Kind != mdb.ReplyACK {
		m.t.Fatalf("vend request: %v %v", r.Kind, err)
	}
	m.pollFor(0x05, 20*time.Second) // Vend Approved
}

// mdbDaemon starts a kioskd process with its [mdb] reader on transport
// and device, quick card timeouts and a short relay pulse.
func mdbDaemon(t *testing.T, transport, device string) (d *daemon, cfgPath string) {
	t.Helper()
	cfgPath = writeTestConfig(t, t.TempDir(), fmt.Sprintf(`[payment.timeouts.card]
ack = "5s"
result = "10s"

[relay]
pulse = "10ms"

[mdb]
enabled = true
transport = %q
device = %q
`, transport, device))
	return startDaemon(t, cfgPath), cfgPath
}

// statusMatchesAPIDoc checks d's GET /v1/status against the control API
// document's Status schema, and returns it.
func statusMatchesAPIDoc(t *testing.T, d *daemon) []byte {
	t.Helper()
	raw, err := d.c.StatusJSON(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	for _, e := range doc.check("status", doc.schemas["Status"].(map[string]any), v) {
		t.Error(e)
	}
	return raw
}

// lastTxn is the newest payment in the daemon's journal.
func lastTxn(t *testing.T, d *daemon) payment.Txn {
	t.Helper()
	list, err := d.c.Journal(context.Background(), 1)
	if err != nil || len(list) != 1 {
		t.Fatalf("journal: %v %v", err, list)
	}
	return d.get(list[0].ID)
}

// TestMDBThroughDaemon: a kioskd process with [mdb] on, its reader on a
// stream transport dialled to the test's VMC, sells through MDB: a Vend
// Request becomes a POS payment, Vend Approved goes to the VMC, Vend
// Success journals the vend released; Vend Failure journals it failed,
// refund owed; and a kioskd killed between Vend Approved and Vend
// Success comes back with the vend unknown, never approved again.
func TestMDBThroughDaemon(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, cfgPath := mdbDaemon(t, "stream", ln.Device())
	stop := approvingPOS(t, d)
	defer func() { stop() }()
	vmc := &mdbVMC{t: t, ln: ln}
	vmc.connect()
	defer func() {
		if vmc.c != nil {
			vmc.c.Close()
		}
	}()

	vmc.vend(150, 12)
	if r, err := vmc.v.VendSuccess(12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend success: %v %v", r.Kind, err)
	}
	if r, err := vmc.v.SessionComplete(); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("session complete: %v %v", r.Kind, err)
	}
	vmc.pollFor(0x07, 5*time.Second) // End Session
	if tx := waitNewest(t, d, func(tx payment.Txn) bool { return tx.Vend == payment.VendReleased }); tx.Amount != 150 || tx.State != payment.Approved || tx.Review != "" {
		t.Fatalf("the MDB sale: %s", tx.Summary())
	}

	t.Logf("sale: %s", lastTxn(t, d).Summary())
	checkMDBStatus(t, d, cfgPath, ln.Device())
	vmc.vend(200, 3)
	if r, err := vmc.v.VendFailure(); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend failure: %v %v", r.Kind, err)
	}
	vmc.v.SessionComplete()
	tx := waitNewest(t, d, func(tx payment.Txn) bool { return tx.Amount == 200 && tx.Vend == payment.VendFailed })
	if !strings.Contains(tx.Review, "refund owed") {
		t.Fatalf("a vend failure: %s; want flagged refund owed", tx.Summary())
	}

	// Killed with the approval at the VMC and no word of the dispense.
	vmc.vend(300, 4)
	approved := lastTxn(t, d)
	d.kill()
	stop()
	d = startDaemon(t, cfgPath)
	stop = approvingPOS(t, d)
	vmc.connect()
	if got := d.get(approved.ID); got.Vend != payment.VendUnknown || got.Review == "" {
		t.Fatalf("the vend a kill interrupted: %s; want vend_unknown, flagged", got.Summary())
	}
	// The VMC reports the old vend: the new reader knows no such vend and
	// never approves it; the journal's record of it does not move.
	vmc.v.VendSuccess(4)
	for range 10 {
		ms, err := vmc.v.Poll()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Code == 0x05 {
				t.Fatalf("Vend Approved after the restart: %v", ms)
			}
		}
	}
	t.Logf("interrupted: %s", d.get(approved.ID).Summary())
	if got := d.get(approved.ID); got.Vend != payment.VendUnknown {
		t.Fatalf("after the VMC's late report: %s", got.Summary())
	}
}

// waitNewest follows the newest payment until ok, within 10 s.
func waitNewest(t *testing.T, d *daemon, ok func(payment.Txn) bool) payment.Txn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tx := lastTxn(t, d)
		if ok(tx) {
			return tx
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payment did not get there: %s", tx.Summary())
		}
		<-time.After(20 * time.Millisecond) // asking the daemon again, not synchronising
	}
}

// checkMDBStatus: after a sale, kioskd status shows the reader's line
// (its bus, the device enabled again, replies counted, none late) and
// GET /v1/status carries the mdb object as docs/control-api.json has it.
func checkMDBStatus(t *testing.T, d *daemon, cfgPath, device string) {
	t.Helper()
	code, out, errs := kioskd(t, "", "status", "-config", cfgPath)
	if code != exitOK {
		t.Fatalf("kioskd status: exit %d %s", code, errs)
	}
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "mdb reader on "+device+": ") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" || !strings.Contains(line, ": enabled, ") || !strings.HasSuffix(line, ", 0 late") {
		t.Fatalf("kioskd status: no mdb line for %s, enabled, none late:\n%s", device, out)
	}
	t.Logf("status: %s", line)

	raw := statusMatchesAPIDoc(t, d)
	var st struct {
		MDB struct {
			Replies, Connects uint64
		}
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.MDB.Replies == 0 || st.MDB.Connects != 1 {
		t.Errorf("status mdb: %s (%v); want replies and one connect", raw, err)
	}
}
