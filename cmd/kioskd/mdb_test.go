package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/mdb/mdbtest"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
)

func TestMdbTraceUsage(t *testing.T) {
	for _, args := range [][]string{
		{"mdb", "trace", "-approve"},
		{"mdb", "trace", "-transport", "uart"},
		{"mdb", "trace", "-last", "-1"},
		{"mdb", "trace", "extra"},
		{"mdb", "trace", "-device", "tcp://127.0.0.1:1", "-last", "5"},
		{"mdb", "trace", "-device", "tcp://127.0.0.1:1", "-control", "/nonexistent.sock"},
		{"mdb", "trace", "-device", "tcp://127.0.0.1:1", "extra"},
		{"mdb", "trace", "-device", "tcp://127.0.0.1:1", "-address", "20"},
		{"mdb", "trace", "-device", "tcp://127.0.0.1:1", "-transport", "usb"},
	} {
		if code, _, errs := kioskd(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, errs)
		}
	}
}

// TestMdbTraceAgainstVMC runs the command against vmcsim over loopback
// TCP: a whole approved sale, then the command is stopped.
func TestMdbTraceAgainstVMC(t *testing.T) {
	ln, err := mdbtest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runMdbTrace(ctx, &cli.Env{Stdout: &stdout, Stderr: &stderr},
			[]string{"-device", ln.Device(), "-approve"})
	}()
	var sv *mdbtest.StreamVMC
	select {
	case c := <-ln.Conns:
		defer c.Close()
		sv = &mdbtest.StreamVMC{C: c}
	case <-time.After(10 * time.Second):
		t.Fatal("mdb trace did not connect")
	}
	v := vmcsim.New(sv, mdb.AddrCashless1)
	if _, err := v.Init(mdb.OptionAlwaysIdle); err != nil {
		t.Fatal(err)
	}
	if r, err := v.VendRequest(150, 12); err != nil || r.Kind != mdb.ReplyACK {
		t.Fatalf("vend request: %v %v", r.Kind, err)
	}
	// The approval comes from the command's event goroutine: poll until
	// it is on the bus (each poll is one exchange, no sleeping).
	approved := false
	for i := 0; i < 10000 && !approved; i++ {
		ms, err := v.Poll()
		if err != nil {
			t.Fatal(err)
		}
		approved = len(ms) == 1 && ms[0].Code == 0x05
	}
	if !approved {
		t.Fatal("no Vend Approved")
	}
	v.VendSuccess(12)
	v.SessionComplete()
	if ms, err := v.Poll(); err != nil || len(ms) != 1 || ms[0].Code != 0x07 {
		t.Fatalf("no End Session: %v %v", ms, err)
	}
	stop()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mdb trace did not stop")
	}
	out := stdout.String()
	for _, want := range []string{
		" RESET -> ACK (",
		" VEND REQUEST price=150 item=12 -> ACK (",
		" POLL -> VEND APPROVED 150 (",
		" VEND SUCCESS item=12 -> ACK (",
		" SESSION COMPLETE -> ACK (",
		" POLL -> END SESSION (",
		" event enabled\n",
		" event vend-requested vend=1 price=150 item=12\n",
		" event vend-succeeded vend=1 price=150 item=12\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "replies, latency p50") {
		t.Errorf("no latency summary:\n%s", stderr.String())
	}
}
