package machine

// The adapter between an MDB cashless device (protocol/mdb) and the
// payment service: a Vend Request becomes a payment on the configured
// provider; the payment's approval becomes Vend Approved, its decline,
// cancel or timeout Vend Denied; the VMC's Vend Success, Failure or an
// unconfirmed vend becomes the payment's vend outcome (VendDone).
//
// Nothing here blocks the bus: the device's Handle runs on the
// transport's goroutine and only shares the device's short mutex with
// Approve and Deny. Nothing here blocks the payment loop either: the loop
// calls StartVend, which answers the device and returns; everything that
// waits on the service (Create, Cancel, VendDone) runs on the adapter's
// own goroutine.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// MDBConfig is the adapter's part of kioskd's config: which provider and
// mode an MDB sale is paid with.
type MDBConfig struct {
	Provider string // "mobypay" or "kpos"
	Mode     string // "card", "duitnow_qr", ...
}

// CashlessReader is what the adapter needs of a cashless reader: the
// word-level *mdb.Device, or a board that runs the MDB state machine
// itself (protocol/qibixx). Its events and verdicts are mdb's, with the
// same contract: Approve and Deny never block on the bus, and an
// approval the VMC may have taken is ended only by the VMC's report or
// EventVendUnconfirmed, so a vend is never approved twice.
type CashlessReader interface {
	Notify() <-chan struct{}
	Events(dst []mdb.Event) []mdb.Event
	LostEvents() uint64
	Approve(id uint32, amount int64) error
	Deny(id uint32) error
}

var _ CashlessReader = (*mdb.Device)(nil)

// MDB follows one MDB cashless device and the payment service. It is the
// service's payment.AsyncVender for the payments it creates.
type MDB struct {
	dev CashlessReader
	svc *payment.Service
	j   *payment.Journal
	cfg MDBConfig
	log *slog.Logger
	// run makes this process's idempotency keys its own: the device
	// numbers vends from 1 at every start, and vend 1 of today must not
	// find vend 1 of yesterday's payment.
	run string

	mu    sync.Mutex // guards the maps: StartVend runs on the payment loop
	vends map[uint32]*mdbSale
	keys  map[string]*mdbSale
	txns  map[string]*mdbSale

	// did, when set (tests), is told each thing the adapter did, after
	// it did it: the tests' only way to wait without sleeping.
	did func(string)
}

// mdbSale is one Vend Request and the payment for it.
type mdbSale struct {
	vend  uint32
	price int64
	item  uint16
	key   string
	txn   string // set once Create returned, or by StartVend
	// approved: Approve succeeded, Vend Approved is queued for the VMC,
	// and only the VMC's report (or its reset) ends the vend.
	approved bool
}

// NewMDB wires the adapter. Pass it to nothing else: it makes itself the
// vender of the payments it creates. Call Run to start it.
func NewMDB(dev CashlessReader, svc *payment.Service, j *payment.Journal, cfg MDBConfig, log *slog.Logger) *MDB {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var nonce [4]byte
	rand.Read(nonce[:]) // never fails (crypto/rand's contract since Go 1.24)
	return &MDB{dev: dev, svc: svc, j: j, cfg: cfg, log: log.With("component", "mdb"),
		run:   time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(nonce[:]),
		vends: map[uint32]*mdbSale{}, keys: map[string]*mdbSale{}, txns: map[string]*mdbSale{}}
}

func (m *MDB) done(what string) {
	if m.did != nil {
		m.did(what)
	}
}

// Run follows the device's events and the service's until ctx ends.
func (m *MDB) Run(ctx context.Context) error {
	events, unsub := m.svc.Subscribe()
	defer func() { unsub() }()
	var buf []mdb.Event
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.dev.Notify():
			buf = m.dev.Events(buf[:0])
			for _, e := range buf {
				m.onBus(ctx, e)
			}
			if n := m.dev.LostEvents(); n > 0 {
				m.log.Warn("device events lost (none of them a vend's)", "lost", n)
			}
		case e, ok := <-events:
			if !ok {
				// Dropped for falling behind: what was missed is in the
				// journal.
				m.log.Warn("payment events dropped; catching up from the journal")
				events, unsub = m.svc.Subscribe()
				m.catchUp()
				continue
			}
			if e.Txn != nil {
				m.onPayment(*e.Txn)
			}
		}
	}
}

// key is the idempotency key of vend id: one payment per Vend Request,
// however often its event is handled.
func (m *MDB) key(id uint32) string { return "mdb-" + m.run + "-" + strconv.FormatUint(uint64(id), 10) }

func (m *MDB) onBus(ctx context.Context, e mdb.Event) {
	switch e.Kind {
	case mdb.EventVendRequested:
		m.request(ctx, e)
	case mdb.EventVendCancelled:
		s := m.sale(e.Vend)
		if s == nil {
			m.log.Warn("vend cancelled by the VMC, unknown vend", "vend", e.Vend, "cause", e.Cause)
			return
		}
		if s.approved || e.Approved {
			// The approval was withdrawn before the VMC took it (a reset):
			// paid, nothing dispensed.
			m.vendDone(ctx, s, payment.VendOutcome{Vend: payment.VendFailed,
				Reason: fmt.Sprintf("approval withdrawn before the VMC took it (cause %d): refund owed", e.Cause)})
			return
		}
		m.log.Info("vend cancelled at the machine; cancelling the payment", "vend", e.Vend, "txn_id", s.txn, "cause", e.Cause)
		m.cancel(ctx, s, "vend cancelled")
	case mdb.EventVendTimedOut:
		s := m.sale(e.Vend)
		if s == nil {
			return
		}
		// The VMC has heard Vend Denied; a payment that still succeeds
		// finds no vend to approve and is journaled failed, refund owed.
		m.log.Warn("VMC's patience ran out; vend denied, cancelling the payment", "vend", e.Vend, "txn_id", s.txn)
		m.cancel(ctx, s, "vend timed out")
	case mdb.EventVendSucceeded:
		if s := m.sale(e.Vend); s != nil {
			m.vendDone(ctx, s, payment.VendOutcome{Vend: payment.VendReleased})
		} else {
			m.log.Error("vend success for an unknown vend", "vend", e.Vend, "item", e.Item)
		}
	case mdb.EventVendFailed:
		if s := m.sale(e.Vend); s != nil {
			m.vendDone(ctx, s, payment.VendOutcome{Vend: payment.VendFailed, Reason: "VMC reported vend failure: refund owed"})
		} else {
			m.log.Error("vend failure for an unknown vend", "vend", e.Vend, "item", e.Item)
		}
	case mdb.EventVendUnconfirmed:
		if s := m.sale(e.Vend); s != nil {
			m.vendDone(ctx, s, payment.VendOutcome{Vend: payment.VendUnknown,
				Reason: "VMC reset after Vend Approved, before Vend Success or Failure"})
		} else {
			m.log.Error("unconfirmed vend for an unknown vend", "vend", e.Vend)
		}
	case mdb.EventCashSale:
		m.cashSale(e)
	case mdb.EventVendRefused:
		m.log.Warn("vend refused by the reader, no payment", "vend", e.Vend, "price", e.Price, "item", e.Item, "cause", e.Cause)
	case mdb.EventOutOfSequence:
		m.log.Warn("VMC command out of sequence", "command", fmt.Sprintf("%04x", e.Detail))
	default:
		m.log.Info("bus", "event", e.Kind.String(), "detail", e.Detail)
	}
}

// request starts the payment for a Vend Request. The sale is known by its
// key before Create, because the approval (and so StartVend) can come
// before Create has returned here.
func (m *MDB) request(ctx context.Context, e mdb.Event) {
	m.mu.Lock()
	if m.vends[e.Vend] != nil {
		m.mu.Unlock()
		return // handled already
	}
	s := &mdbSale{vend: e.Vend, price: e.Price, item: e.Item, key: m.key(e.Vend)}
	m.vends[s.vend], m.keys[s.key] = s, s
	m.mu.Unlock()
	t, existing, err := m.svc.CreateOrGet(ctx, payment.CreateRequest{Provider: m.cfg.Provider, Mode: m.cfg.Mode,
		Amount: payment.Sen(e.Price), Key: s.key, Vender: m})
	if err != nil {
		m.log.Warn("vend denied: payment not started", "vend", e.Vend, "price", payment.Sen(e.Price).String(), "item", e.Item, "err", err)
		m.deny(s)
		m.forget(s)
		return
	}
	m.mu.Lock()
	s.txn = t.ID
	m.txns[t.ID] = s
	m.mu.Unlock()
	m.log.Info("vend requested; payment started", "vend", e.Vend, "price", payment.Sen(e.Price).String(), "item", e.Item, "txn_id", t.ID, "existing", existing)
	m.done("created")
	m.onPayment(t) // it may have ended already (not delivered)
}

// onPayment follows a payment of an MDB sale to its end: a payment that
// ends without a vend is Vend Denied; an approved one is answered by
// StartVend, on the loop.
func (m *MDB) onPayment(t payment.Txn) {
	m.mu.Lock()
	var s *mdbSale
	if p := m.txns[t.ID]; p != nil {
		c := *p
		s = &c
	}
	m.mu.Unlock()
	if s == nil || !t.State.Final() || t.Vend == payment.VendReleasing {
		return
	}
	if t.Vend != payment.VendNone {
		// Settled by the service. A vend the VMC holds an approval for
		// stays known until the VMC reports, so that its report is
		// journaled as evidence; one it never got (the start failed) is
		// done with.
		if !s.approved {
			m.forget(s)
		}
		return
	}
	m.log.Info("payment ended without a vend; vend denied", "vend", s.vend, "txn_id", t.ID, "state", t.State)
	m.deny(s)
	m.forget(s)
}

// catchUp settles, from the journal, the sales whose payment events were
// dropped.
func (m *MDB) catchUp() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.txns))
	for id := range m.txns {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if t, err := m.j.Get(id); err == nil {
			m.onPayment(t)
		}
	}
}

// StartVend implements payment.AsyncVender: Vend Approved for the sale
// of t. It runs on the payment loop and takes only short locks. An error
// means the VMC was told nothing (the vend was cancelled, reset or timed
// out meanwhile): the service journals the vend failed, refund owed.
func (m *MDB) StartVend(t payment.Txn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.keys[t.Key]
	if s == nil {
		return fmt.Errorf("mdb: no Vend Request waiting for %s", t.ID)
	}
	s.txn = t.ID
	m.txns[t.ID] = s
	if err := m.dev.Approve(s.vend, int64(t.Amount)); err != nil {
		return fmt.Errorf("vend %d: %w", s.vend, err)
	}
	s.approved = true
	m.log.Info("vend approved to the VMC", "vend", s.vend, "txn_id", t.ID, "amount", t.Amount.String())
	if m.did != nil {
		go m.done("approved") // never the loop's wait on a test
	}
	return nil
}

func (m *MDB) cancel(ctx context.Context, s *mdbSale, why string) {
	if s.txn == "" {
		return
	}
	t, err := m.svc.Cancel(ctx, s.txn)
	switch {
	case errors.Is(err, payment.ErrNotActive):
		m.log.Info("payment already over", "txn_id", s.txn, "state", t.State, "why", why)
	case err != nil:
		m.log.Error("cancel failed", "txn_id", s.txn, "err", err, "why", why)
	}
	m.done("cancelled")
}

func (m *MDB) deny(s *mdbSale) {
	err := m.dev.Deny(s.vend)
	if err != nil && !errors.Is(err, mdb.ErrNoVend) {
		m.log.Error("vend deny failed", "vend", s.vend, "err", err)
	}
	m.done("denied")
}

func (m *MDB) vendDone(ctx context.Context, s *mdbSale, o payment.VendOutcome) {
	m.forget(s)
	o.Source = "mdb"
	if s.txn == "" {
		m.log.Error("vend outcome with no payment", "vend", s.vend, "outcome", o.Vend)
		return
	}
	t, err := m.svc.VendDone(ctx, s.txn, o)
	switch {
	case errors.Is(err, payment.ErrNotActive):
		m.log.Warn("vend outcome after the payment's vend was settled; kept as evidence", "vend", s.vend, "txn_id", s.txn, "outcome", o.Vend, "vend_state", t.Vend)
	case err != nil:
		m.log.Error("vend outcome not journaled", "vend", s.vend, "txn_id", s.txn, "outcome", o.Vend, "err", err)
	}
	m.done("vend " + string(o.Vend))
}

func (m *MDB) cashSale(e mdb.Event) {
	rec := struct {
		PriceSen int64   `json:"price_sen"` // -1: not convertible; wire holds the scaled value
		Item     uint16  `json:"item"`
		Wire     *uint16 `json:"wire,omitempty"`
	}{PriceSen: e.Price, Item: e.Item}
	if e.Price < 0 {
		rec.Wire = &e.Detail
	}
	payload, _ := json.Marshal(rec)
	ev := &payment.Evidence{Source: "mdb", Type: "cash_sale", Disposal: "recorded (audit)", Payload: string(payload)}
	if err := m.j.AddEvidence(ev, time.Now()); err != nil {
		m.log.Error("cash sale not journaled", "price", e.Price, "item", e.Item, "err", err)
	} else {
		m.log.Info("cash sale", "price", payment.Sen(e.Price).String(), "item", e.Item, "seq", ev.Seq)
	}
	m.done("cash sale")
}

// sale returns a copy of vend id's sale (nil if unknown): StartVend
// changes the original on the payment loop.
func (m *MDB) sale(id uint32) *mdbSale {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.vends[id]
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func (m *MDB) forget(s *mdbSale) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vends, s.vend)
	delete(m.keys, s.key)
	if s.txn != "" {
		delete(m.txns, s.txn)
	}
}
