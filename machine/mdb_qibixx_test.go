package machine

// The MDB adapter with a Qibixx board as its reader: the payment service
// and MobyPay link as in mdb_test.go, the board simulated at the far end
// of a loopback TCP link that the reader serves.

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
	"github.com/kioskd/kioskd/protocol/qibixx"
	"github.com/kioskd/kioskd/protocol/qibixx/qibixxsim"
)

type qibixxRig struct {
	t     *testing.T
	board *qibixxsim.Board
	j     *payment.Journal
	did   chan string
}

func startQibixx(t *testing.T) *qibixxRig {
	t.Helper()
	j, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := &qibixxRig{t: t, j: j, did: make(chan string, 256)}
	reader, err := qibixx.New(qibixx.Config{AlwaysIdle: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, runs := salePath(t, j, payment.Config{CancelGrace: 200 * time.Millisecond}, possim.Approve, reader, r.did)
	events, unsub := svc.Subscribe()
	defer unsub()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	near, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serve := func(ctx context.Context) error { return reader.Serve(ctx, near) }
	for _, run := range append(runs, serve) {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	t.Cleanup(func() { cancel(); far.Close(); wg.Wait(); j.Close() })
	// A vend asked for before the terminal is linked is denied (not
	// ready): the rig sells only once it is.
	linked := time.After(10 * time.Second)
	for linkedUp := false; !linkedUp; {
		select {
		case e := <-events:
			linkedUp = e.POS != nil && e.POS.State == "connected"
		case <-linked:
			t.Fatal("the POS simulator did not connect")
		}
	}
	r.board = qibixxsim.New(far)
	if err := r.board.Up(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *qibixxRig) adapter(what string) { r.t.Helper(); waitDid(r.t, r.did, what) }

// sold asks for a vend and waits for the board to get its approval.
func (r *qibixxRig) sold(price string, item int) payment.Txn {
	r.t.Helper()
	c, err := r.board.Choose(price, item, 10*time.Second)
	if err != nil || c != "C,VEND,"+price {
		r.t.Fatalf("the board got %q %v, want C,VEND,%s", c, err, price)
	}
	list, err := r.j.List(1)
	if err != nil || len(list) != 1 {
		r.t.Fatalf("journal: %v %v", list, err)
	}
	return list[0]
}

func (r *qibixxRig) journal(id string) payment.Txn {
	r.t.Helper()
	t, err := r.j.Get(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return t
}

func TestQibixxSale(t *testing.T) {
	r := startQibixx(t)
	tx := r.sold("2.50", 7)
	if tx.Amount != 250 {
		t.Fatalf("payment %+v", tx)
	}
	r.board.Dispense()
	r.adapter("vend released")
	if got := r.journal(tx.ID); got.Vend != payment.VendReleased || got.Review != "" {
		t.Fatalf("journal %s", got.Summary())
	}
}

func TestQibixxVendFailure(t *testing.T) {
	r := startQibixx(t)
	tx := r.sold("2.50", 7)
	r.board.Fail()
	r.adapter("vend failed")
	if got := r.journal(tx.ID); got.Vend != payment.VendFailed || !strings.Contains(got.Review, "refund owed") {
		t.Fatalf("journal %s", got.Summary())
	}
}

// The VMC resets the reader between the approval and its report: the
// vend is unknown, for review, and never approved again.
func TestQibixxResetAfterApproval(t *testing.T) {
	r := startQibixx(t)
	tx := r.sold("2.50", 7)
	r.board.Reset()
	r.adapter("vend vend_unknown")
	if got := r.journal(tx.ID); got.Vend != payment.VendUnknown || !strings.Contains(got.Review, "VMC reset after Vend Approved") {
		t.Fatalf("journal %s", got.Summary())
	}
}
