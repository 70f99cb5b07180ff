package machine

// The MDB adapter against a real payment service, a real MobyPay link
// with the POS simulator on loopback, and an mdb.Device driven word by
// word by the VMC simulator, in-process, with no transport: the test
// goroutine is the bus.

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mdb/vmcsim"
	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

type mdbRig struct {
	t         *testing.T
	dev       *mdb.Device
	vmc       *vmcsim.VMC
	svc       *payment.Service
	j         *payment.Journal
	events    <-chan payment.Event
	did       chan string
	recovered []payment.Txn
	stop      func()
}

// startMDB runs kioskd's MDB sale path on the journal at path (recovered
// first, as kioskd run does) with a POS simulator that answers as
// behaviour, and a VMC that has initialised the reader.
func startMDB(t *testing.T, path string, behaviour possim.Behaviour, edit func(*payment.Config)) *mdbRig {
	t.Helper()
	j, err := payment.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &mdbRig{t: t, j: j, did: make(chan string, 256)}
	if r.recovered, err = j.Recover(time.Now()); err != nil {
		t.Fatal(err)
	}
	pcfg := payment.Config{CancelGrace: 200 * time.Millisecond, SuccessAfterCancel: payment.AfterCancelVend}
	if edit != nil {
		edit(&pcfg)
	}
	if r.dev, err = mdb.New(mdb.Config{}); err != nil {
		t.Fatal(err)
	}
	var runs []func(context.Context) error
	r.svc, runs = salePath(t, j, pcfg, behaviour, r.dev, r.did)
	var unsub func()
	r.events, unsub = r.svc.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait(); unsub(); j.Close() }) }
	t.Cleanup(r.stop)
	r.wait(func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
	r.vmc = vmcsim.New(r.dev, mdb.AddrCashless1)
	if _, err := r.vmc.Init(mdb.OptionAlwaysIdle); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *mdbRig) wait(ok func(payment.Event) bool) payment.Event {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, open := <-r.events:
			if !open {
				r.t.Fatal("dropped as a subscriber that fell behind")
			}
			if ok(e) {
				return e
			}
		case <-timeout:
			r.t.Fatal("timed out waiting for a payment event")
		}
	}
}

// waitTxn waits for a payment event that satisfies ok.
func (r *mdbRig) waitTxn(ok func(payment.Txn) bool) payment.Txn {
	r.t.Helper()
	return *r.wait(func(e payment.Event) bool { return e.Txn != nil && ok(*e.Txn) }).Txn
}

// adapter waits until the adapter has done what.
func (r *mdbRig) adapter(what string) { r.t.Helper(); waitDid(r.t, r.did, what) }

// waitDid waits until an adapter's did hook has reported what.
func waitDid(t *testing.T, did <-chan string, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-did:
			if got == what {
				return
			}
		case <-timeout:
			t.Fatalf("the adapter did not do %q", what)
		}
	}
}

// salePath is kioskd's MDB sale path over reader: the payment service
// on j with a MobyPay link, a POS simulator that answers as behaviour
// over loopback TCP, and the adapter, which reports to did what it did.
// It returns the service and what must run for it.
func salePath(t *testing.T, j *payment.Journal, cfg payment.Config, behaviour possim.Behaviour, reader CashlessReader, did chan string) (*payment.Service, []func(context.Context) error) {
	t.Helper()
	secret := []byte("mdb-test-secret")
	prov := payment.NewMobyPay("KIOSK-T", secret, nil)
	svc := payment.NewService(cfg, j, nil, nil, prov)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: secret}, prov)
	if err != nil {
		t.Fatal(err)
	}
	prov.Bind(srv, svc)
	m := NewMDB(reader, svc, j, MDBConfig{Provider: "mobypay", Mode: "card"}, discard)
	m.did = func(what string) { did <- what }
	sim, err := possim.New(possim.Config{Addr: srv.Addr().String(), Secret: secret, Behaviour: behaviour,
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return svc, []func(context.Context) error{svc.Run, srv.Serve, sim.Run, m.Run}
}

// request sends a Vend Request, ACKed by the reader at once.
func (r *mdbRig) request(price, item uint16) {
	r.t.Helper()
	if rep, err := r.vmc.VendRequest(price, item); err != nil || rep.Kind != mdb.ReplyACK {
		r.t.Fatalf("vend request answered %v, %v", rep.Kind, err)
	}
}

// poll returns the codes of the messages of one poll.
func (r *mdbRig) poll() []vmcsim.Message {
	r.t.Helper()
	ms, err := r.vmc.Poll()
	if err != nil {
		r.t.Fatal(err)
	}
	return ms
}

func has(ms []vmcsim.Message, code byte) *vmcsim.Message {
	for i := range ms {
		if ms[i].Code == code {
			return &ms[i]
		}
	}
	return nil
}

const (
	rspVendApproved = 0x05
	rspVendDenied   = 0x06
	rspEndSession   = 0x07
)

// approved runs a sale up to the VMC holding Vend Approved.
func (r *mdbRig) approved(price, item uint16) payment.Txn {
	r.t.Helper()
	r.request(price, item)
	t := r.waitTxn(func(t payment.Txn) bool { return t.Vend == payment.VendReleasing })
	r.adapter("approved")
	ms := r.poll()
	va := has(ms, rspVendApproved)
	if va == nil || int(va.Data[1])<<8|int(va.Data[2]) != int(price) {
		r.t.Fatalf("poll after approval: %v, want Vend Approved %d", ms, price)
	}
	return t
}

func (r *mdbRig) journal(id string) payment.Txn {
	r.t.Helper()
	t, err := r.j.Get(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return t
}

func TestMDBSaleApproved(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Approve, nil)
	tx := r.approved(250, 7)
	if tx.Amount != 250 || tx.Provider != "mobypay" || tx.Mode != "card" || !strings.HasPrefix(tx.Key, "mdb-") {
		t.Fatalf("payment %+v", tx)
	}
	if r.svc.Current() == nil {
		t.Fatal("not busy while the VMC dispenses")
	}
	if rep, err := r.vmc.VendSuccess(7); err != nil || rep.Kind != mdb.ReplyACK {
		t.Fatalf("vend success answered %v, %v", rep.Kind, err)
	}
	r.adapter("vend released")
	if got := r.journal(tx.ID); got.Vend != payment.VendReleased || got.Review != "" {
		t.Fatalf("journal %+v", got)
	}
	if r.svc.Current() != nil {
		t.Fatal("still busy after the vend")
	}
	if _, err := r.vmc.SessionComplete(); err != nil {
		t.Fatal(err)
	}
	if ms := r.poll(); has(ms, rspEndSession) == nil {
		t.Fatalf("poll after session complete: %v", ms)
	}
	// The next sale is another payment.
	next := r.approved(100, 8)
	if next.ID == tx.ID || next.Key == tx.Key {
		t.Fatalf("second sale reused %s / %s", next.ID, next.Key)
	}
}

func TestMDBSaleDeclined(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Decline, nil)
	r.request(250, 7)
	tx := r.waitTxn(func(t payment.Txn) bool { return t.State.Final() })
	r.adapter("denied")
	if ms := r.poll(); has(ms, rspVendDenied) == nil || has(ms, rspVendApproved) != nil {
		t.Fatalf("poll after decline: %v", ms)
	}
	if got := r.journal(tx.ID); got.State != payment.Declined || got.Vend != payment.VendNone {
		t.Fatalf("journal %+v", got)
	}
}

// The customer presses cancel at the machine while the card payment
// runs: the VMC hears Vend Denied at once and the payment is cancelled.
func TestMDBVendCancelMidPayment(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.AckOnly, nil)
	r.request(250, 7)
	tx := r.waitTxn(func(t payment.Txn) bool { return t.State == payment.Acked })
	if rep, err := r.vmc.VendCancel(); err != nil || rep.Kind != mdb.ReplyACK {
		t.Fatalf("vend cancel answered %v, %v", rep.Kind, err)
	}
	if ms := r.poll(); has(ms, rspVendDenied) == nil {
		t.Fatalf("poll after vend cancel: %v", ms)
	}
	r.adapter("cancelled")
	got := r.waitTxn(func(t payment.Txn) bool { return t.ID == tx.ID && t.State.Final() })
	if got.State != payment.Cancelled || got.Vend != payment.VendNone {
		t.Fatalf("payment %+v", got)
	}
}

// A success that still comes after the customer cancelled finds no vend
// to approve: never vended, flagged refund owed.
func TestMDBSuccessAfterVendCancel(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.CancelLate, nil)
	r.request(250, 7)
	tx := r.waitTxn(func(t payment.Txn) bool { return t.State == payment.Acked })
	if _, err := r.vmc.VendCancel(); err != nil {
		t.Fatal(err)
	}
	got := r.waitTxn(func(t payment.Txn) bool { return t.ID == tx.ID && t.Vend == payment.VendFailed })
	if got.State != payment.Approved || !strings.Contains(got.Review, "refund owed") {
		t.Fatalf("payment %+v", got)
	}
	if ms := r.poll(); has(ms, rspVendApproved) != nil {
		t.Fatalf("the VMC got an approval after its cancel: %v", ms)
	}
}

func TestMDBVendFailure(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Approve, nil)
	tx := r.approved(250, 7)
	if rep, err := r.vmc.VendFailure(); err != nil || rep.Kind != mdb.ReplyACK {
		t.Fatalf("vend failure answered %v, %v", rep.Kind, err)
	}
	r.adapter("vend failed")
	if got := r.journal(tx.ID); got.Vend != payment.VendFailed || got.Review != "VMC reported vend failure: refund owed" {
		t.Fatalf("journal %+v", got)
	}
}

func TestMDBResetAfterApproval(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Approve, nil)
	tx := r.approved(250, 7)
	if _, err := r.vmc.Reset(); err != nil {
		t.Fatal(err)
	}
	r.adapter("vend vend_unknown")
	if got := r.journal(tx.ID); got.Vend != payment.VendUnknown || !strings.Contains(got.Review, "VMC reset after Vend Approved") {
		t.Fatalf("journal %+v", got)
	}
}

// The VMC's vend outlives the service's deadline: vend_unknown, and the
// VMC's success afterwards is evidence only.
func TestMDBVendDeadline(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Approve, func(c *payment.Config) {
		c.AsyncVendTimeout = 50 * time.Millisecond
	})
	tx := r.approved(250, 7)
	r.waitTxn(func(t payment.Txn) bool { return t.ID == tx.ID && t.Vend == payment.VendUnknown })
	if _, err := r.vmc.VendSuccess(7); err != nil {
		t.Fatal(err)
	}
	r.adapter("vend released")
	got := r.journal(tx.ID)
	ev, _ := r.j.EvidenceFor(tx.ID)
	if got.Vend != payment.VendUnknown || ev[len(ev)-1].Source != "mdb" || !strings.HasPrefix(ev[len(ev)-1].Disposal, "not acted on") {
		t.Fatalf("journal %+v, last evidence %+v", got, ev[len(ev)-1])
	}
}

// The power goes between Vend Approved and Vend Success: at the restart
// the vend is vend_unknown, the VMC resets the reader, and nothing is
// approved again.
func TestMDBPowerCutMidVend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	r := startMDB(t, path, possim.Approve, nil)
	tx := r.approved(250, 7)
	r.stop()

	r2 := startMDB(t, path, possim.Approve, nil) // Init: the VMC resets the new reader
	if len(r2.recovered) != 1 || r2.recovered[0].ID != tx.ID || r2.recovered[0].Vend != payment.VendUnknown {
		t.Fatalf("recovered %+v", r2.recovered)
	}
	if ms := r2.poll(); has(ms, rspVendApproved) != nil {
		t.Fatalf("an approval after the restart: %v", ms)
	}
	// The first vend of this run is a new payment, not the old one's key.
	next := r2.approved(250, 7)
	if next.ID == tx.ID {
		t.Fatal("the old payment was approved again")
	}
	if got := r2.journal(tx.ID); got.Vend != payment.VendUnknown {
		t.Fatalf("old payment %+v", got)
	}
}

func TestMDBCashSaleIsEvidence(t *testing.T) {
	r := startMDB(t, filepath.Join(t.TempDir(), "journal.db"), possim.Approve, nil)
	if rep, err := r.vmc.CashSale(150, 3); err != nil || rep.Kind != mdb.ReplyACK {
		t.Fatalf("cash sale answered %v, %v", rep.Kind, err)
	}
	r.adapter("cash sale")
	ev, err := r.j.UnknownEvidence(1)
	if err != nil || len(ev) != 1 || ev[0].Source != "mdb" || ev[0].Type != "cash_sale" || ev[0].Payload != `{"price_sen":150,"item":3}` {
		t.Fatalf("evidence %+v, %v", ev, err)
	}
}
