package main

import (
	"net"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

// burstConn hands the VMC's bytes over as an emulated 16550 or a USB
// serial adapter does: a FIFO's worth at a time, with a pause between.
type burstConn struct {
	net.Conn
	size  int
	pause time.Duration
}

func (c burstConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if n > 0 {
			<-time.After(c.pause) // the link's own pace, not a wait for anything
		}
		k := min(c.size, len(p))
		m, err := c.Conn.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// [mdb] gap reaches the bus loop: over a link that delivers 16 bytes
// every 30 ms, Expansion Request ID (64 stream bytes) is answered with a
// gap of 250 ms. The default 2.5 ms cuts it at the first pause, and the
// VMC hears silence.
func TestMDBGapForBurstyLink(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	startKioskConfig(t, "[mdb]\nenabled = true\ntransport = \"stream\"\ndevice = \""+ln.Device()+"\"\ngap = \"250ms\"\n", nil)
	var c net.Conn
	select {
	case c = <-ln.Conns:
	case <-time.After(20 * time.Second):
		t.Fatal("kioskd did not dial the VMC")
	}
	defer c.Close()
	v := vmcsim.New(&mdbtest.StreamVMC{C: burstConn{Conn: c, size: 16, pause: 30 * time.Millisecond}}, mdb.AddrCashless1)
	id, err := v.Init(mdb.OptionAlwaysIdle)
	if err != nil {
		t.Fatalf("reader init over a bursty link: %v", err)
	}
	t.Logf("peripheral id over 16-byte bursts 30 ms apart: %+v", id)
}
