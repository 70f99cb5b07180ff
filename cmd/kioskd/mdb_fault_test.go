package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// A reader whose bus goes away (the tty's far end hung up: an adapter
// unplugged) is reported, not fatal: the mdb fault is raised, and the
// kiosk goes on selling through its other ways.
func TestMDBBusLostIsAFault(t *testing.T) {
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	k := startKioskConfig(t, fmt.Sprintf("[mdb]\nenabled = true\ntransport = \"stream\"\ndevice = %q\n", slave), nil)
	k.sim(t, possim.Approve)
	c := control.NewClient(filepath.Join(k.dir, "ctl.sock"))
	master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg, ok := st.Hardware.Faults["mdb"]; ok {
			if !strings.Contains(msg, slave) {
				t.Errorf("mdb fault %q does not name the device %s", msg, slave)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no mdb fault after the bus hung up: faults %v", st.Hardware.Faults)
		case <-tick.C: // asking the daemon again, not synchronising
		}
	}
	if code, out, errs := kioskd(t, "", "pay", "-amount", "1.00", "-config", k.cfgPath); code != exitOK || !strings.Contains(out, "vend=released") {
		t.Fatalf("a payment with the MDB bus down: exit %d\n%s%s", code, out, errs)
	}
}
