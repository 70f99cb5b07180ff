package mobypay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The POS terminal simulator. It plays MobyPay's POS app against a kiosk:
// it connects as the TCP client, reconnects with the app's back-off,
// verifies every kiosk message and answers as the chosen behaviour says.
// It writes like the app's Python test client: json.dumps with default
// separators (", " and ": "), payload keys in the app's order, not sorted,
// so the kiosk has to re-canonicalise to verify.

// simBehaviours maps each behaviour to its one-line description.
var simBehaviours = map[string]string{
	"approve":     "ack processing, then success (IPP flow when payment_mode is ipp)",
	"decline":     "ack processing, then failed USER_ABORT",
	"ipp":         "ack, ipp_plans (2 plans), wait for ipp_plan_selection, ack plan_received, success with plan_id",
	"slow":        "ack processing, wait -delay, then success",
	"drop":        "ack processing, then close the connection; after reconnecting send an error for the txn",
	"error":       "answer the request with an error message",
	"silent":      "never answer anything",
	"ackonly":     "ack processing, never a result",
	"badsig":      "ack, then a success whose signature is over the wire bytes, not the canonical payload",
	"replay":      "ack, then the same success frame twice, byte for byte",
	"stale":       "ack, then a correctly signed success stamped 2 minutes ago",
	"wrongamount": "ack, then success for the amount plus RM 1.00",
	"wrongtxn":    "ack, then success for another txn_id",
	"split":       "like approve, every frame written in 7-byte pieces",
	"merged":      "like approve, ack and result in one write",
	"approved":    `like approve, with status "approved" instead of "success"`,
	"cancel-late": "ack processing, no result until cancel_transaction, then ack received and success anyway",
}

// SimBehaviours returns the simulator's behaviour names, sorted.
func SimBehaviours() []string {
	names := make([]string, 0, len(simBehaviours))
	for n := range simBehaviours {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SimBehaviourHelp describes a behaviour in one line ("" if unknown).
func SimBehaviourHelp(name string) string { return simBehaviours[name] }

// SimConfig configures a POS simulator. Zero values take the defaults noted.
type SimConfig struct {
	Addr      string        // kiosk address, host:port
	Secret    []byte        // HMAC shared secret
	Behaviour string        // one of SimBehaviours ("approve")
	PosID     string        // pos_id sent ("POS001")
	Delay     time.Duration // slow: time from ack to result (5 s)

	// Reconnect back-off, as the app: MinBackoff, doubling to MaxBackoff
	// (1 s, 30 s). It starts again at MinBackoff after a connection that
	// stayed up at least MaxBackoff, so a kiosk that keeps refusing the
	// connection is not hammered.
	MinBackoff, MaxBackoff time.Duration

	Log *slog.Logger
	Now func() time.Time // clock for timestamps and the replay window (time.Now)
	// OnEvent, if set, is called from Run's goroutine for every event, in
	// order. It should not block for long: the simulator waits for it.
	OnEvent func(SimEvent)
}

// SimEventKind says what happened.
type SimEventKind int

// Simulator events.
const (
	SimConnected    SimEventKind = iota + 1 // Addr: the kiosk
	SimDisconnected                         // Err: why
	SimReceived                             // Msg: a verified, fresh kiosk message
	SimRefused                              // Err: a kiosk frame refused (signature, stale, replay, malformed)
	SimSent                                 // Msg: Type, TxnID, Status of a message written
	SimDialFailed                           // Err: why the kiosk could not be reached
)

func (k SimEventKind) String() string {
	switch k {
	case SimConnected:
		return "connected"
	case SimDisconnected:
		return "disconnected"
	case SimReceived:
		return "received"
	case SimRefused:
		return "refused"
	case SimSent:
		return "sent"
	case SimDialFailed:
		return "dial failed"
	}
	return "SimEventKind(" + strconv.Itoa(int(k)) + ")"
}

// SimEvent is one thing the simulator did or saw.
type SimEvent struct {
	At   time.Time // when the simulator emitted it, so gaps survive a slow reader
	Kind SimEventKind
	Addr string
	Msg  Message
	Err  error
}

// Sim is a simulated POS terminal. Run it once.
type Sim struct {
	cfg     SimConfig
	log     *slog.Logger
	codec   *Codec
	guard   *ReplayGuard
	running atomic.Bool

	// Transactions acked but not finished, by txn_id. They survive a
	// reconnect: the next session reports each one with an error message.
	txns map[string]*simTxn
	seq  int // last transaction_id issued

	// The current session; only Run's goroutine touches these.
	conn net.Conn
	sctx context.Context
	swg  sync.WaitGroup
	due  chan string // slow: txn_ids whose result is due
}

type simTxn struct {
	id           string
	amount       float64
	mode         string
	awaitingPlan bool
}

// simFrame is one written message and what it was, for events and logs.
type simFrame struct {
	b                []byte
	typ, txn, status string
}

// errDropped ends a session on purpose (behaviour drop).
var errDropped = errors.New("connection dropped mid-payment (behaviour drop)")

const simPiece = 7 // split: bytes per write

// NewSim checks cfg and returns a simulator.
func NewSim(cfg SimConfig) (*Sim, error) {
	if cfg.Addr == "" {
		return nil, errors.New("mobypay: sim: no kiosk address")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("mobypay: sim: no secret")
	}
	if cfg.Behaviour == "" {
		cfg.Behaviour = "approve"
	}
	if _, ok := simBehaviours[cfg.Behaviour]; !ok {
		return nil, fmt.Errorf("mobypay: sim: unknown behaviour %q (want one of %s)", cfg.Behaviour, strings.Join(SimBehaviours(), ", "))
	}
	if cfg.PosID == "" {
		cfg.PosID = "POS001"
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var seq [2]byte
	rand.Read(seq[:])
	return &Sim{
		cfg:   cfg,
		log:   cfg.Log.With("component", "possim", "behaviour", cfg.Behaviour),
		codec: NewCodec(cfg.Secret),
		guard: NewReplayGuard(0, 0),
		txns:  make(map[string]*simTxn),
		seq:   int(seq[0])<<8 | int(seq[1]),
	}, nil
}

// Run connects to the kiosk and serves it, reconnecting with back-off
// whenever the connection fails or drops, until ctx ends; then it returns
// nil.
func (s *Sim) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("mobypay: sim: Run called twice")
	}
	defer s.running.Store(false)
	d := net.Dialer{Timeout: 10 * time.Second}
	backoff := s.cfg.MinBackoff
	for {
		conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			s.log.Info("stopped")
			return nil
		}
		if err != nil {
			s.event(SimEvent{Kind: SimDialFailed, Err: err})
			s.log.Warn("cannot connect", "addr", s.cfg.Addr, "err", err, "retry_in", backoff)
		} else {
			since := time.Now()
			s.event(SimEvent{Kind: SimConnected, Addr: conn.RemoteAddr().String()})
			s.log.Info("connected", "kiosk", conn.RemoteAddr().String(), "local", conn.LocalAddr().String())
			err = s.session(ctx, conn)
			if ctx.Err() != nil {
				s.event(SimEvent{Kind: SimDisconnected, Err: context.Cause(ctx)})
				s.log.Info("stopped")
				return nil
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by kiosk")
			}
			s.event(SimEvent{Kind: SimDisconnected, Err: err})
			if time.Since(since) >= s.cfg.MaxBackoff {
				backoff = s.cfg.MinBackoff
			}
			s.log.Warn("disconnected", "reason", err, "reconnect_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.Info("stopped")
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

func (s *Sim) event(e SimEvent) {
	e.At = time.Now()
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

// session serves one connection until it fails, the kiosk closes it, the
// behaviour drops it or ctx ends.
func (s *Sim) session(ctx context.Context, conn net.Conn) error {
	sctx, cancel := context.WithCancel(ctx)
	s.conn, s.sctx, s.due = conn, sctx, make(chan string)
	frames := make(chan []byte)
	readErr := make(chan error, 1)
	s.swg.Add(1)
	go func() {
		defer s.swg.Done()
		fr := NewFrameReader(conn, MaxFrame)
		for {
			f, err := fr.Next()
			if errors.Is(err, ErrFrameTooLarge) {
				f, err = nil, nil // reported as a refusal; Next skips the rest
			} else if err != nil {
				readErr <- err
				return
			} else {
				f = bytes.Clone(f)
			}
			select {
			case frames <- f:
			case <-sctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		conn.Close()
		s.swg.Wait()
		s.conn, s.sctx, s.due = nil, nil, nil
	}()

	// What the app does after a reconnect: every transaction that was in
	// flight when the link dropped is reported with an error message.
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		if err := s.send(s.errorFrame(id, "Connection to kiosk lost during transaction")); err != nil {
			return err // still in flight: reported after the next reconnect
		}
		delete(s.txns, id)
	}
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case err := <-readErr:
			return err
		case f := <-frames:
			if err := s.handleFrame(f); err != nil {
				return err
			}
		case id := <-s.due:
			if t := s.txns[id]; t != nil && !t.awaitingPlan {
				if err := s.finish(t, ""); err != nil {
					return err
				}
			}
		}
	}
}

func (s *Sim) refuse(err error, frame []byte) {
	s.event(SimEvent{Kind: SimRefused, Err: err})
	s.log.Warn("kiosk message refused", "reason", reason(err), "bytes", len(frame))
}

// handleFrame verifies one kiosk frame and answers it.
func (s *Sim) handleFrame(frame []byte) error {
	if frame == nil {
		s.refuse(ErrFrameTooLarge, nil)
		return nil
	}
	s.log.Debug("frame in", "frame", string(frame))
	var m Message
	if err := s.codec.Open(frame); err != nil {
		s.refuse(err, frame)
		return nil
	}
	if err := s.codec.Decode(&m); err != nil {
		s.refuse(err, frame)
		return nil
	}
	if err := s.guard.Check(s.cfg.Now(), m.Timestamp, m.Nonce); err != nil {
		s.refuse(err, frame)
		return nil
	}
	s.event(SimEvent{Kind: SimReceived, Msg: m})
	attrs := []any{"type", m.Type, "txn_id", m.TxnID}
	if m.HasAmount {
		attrs = append(attrs, "amount", m.Amount, "payment_mode", m.PaymentMode)
	}
	if m.PlanID != "" {
		attrs = append(attrs, "plan_id", m.PlanID)
	}
	s.log.Info("received", attrs...)
	if s.cfg.Behaviour == "silent" {
		return nil
	}
	switch m.Type {
	case TypeTransactionRequest:
		return s.onRequest(&m)
	case TypeIPPPlanSelection:
		return s.onPlanSelection(&m)
	case TypeCancelTransaction:
		return s.onCancel(&m)
	}
	s.log.Info("unknown message type ignored", "type", m.Type)
	return nil
}

func (s *Sim) onRequest(m *Message) error {
	b := s.cfg.Behaviour
	if b == "error" {
		return s.send(s.errorFrame(m.TxnID, "Unable to process transaction"))
	}
	if m.TxnID == "" || !m.HasAmount || !ValidMode(m.PaymentMode) {
		return s.send(s.errorFrame(m.TxnID, "Invalid transaction request"))
	}
	if s.txns[m.TxnID] != nil {
		return s.send(s.errorFrame(m.TxnID, "Transaction already in progress"))
	}
	t := &simTxn{id: m.TxnID, amount: m.Amount, mode: m.PaymentMode}
	s.txns[t.id] = t
	ack := s.ackFrame(t.id, StatusProcessing)
	if b == "ipp" || (b == "approve" && t.mode == ModeIPP) {
		t.awaitingPlan = true
		return s.send(ack, s.plansFrame(t))
	}
	switch b {
	case "merged":
		delete(s.txns, t.id)
		return s.sendMerged(ack, s.resultFrame(t, ""))
	case "ackonly", "cancel-late":
		return s.send(ack)
	case "slow":
		if err := s.send(ack); err != nil {
			return err
		}
		s.after(s.cfg.Delay, t.id)
		return nil
	case "drop":
		if err := s.send(ack); err != nil {
			return err
		}
		s.log.Info("dropping the connection mid-payment", "txn_id", t.id)
		return errDropped
	}
	if err := s.send(ack); err != nil {
		return err
	}
	return s.finish(t, "")
}

// after queues txn id's result for d from now, unless the session ends.
func (s *Sim) after(d time.Duration, id string) {
	ctx, due := s.sctx, s.due
	s.swg.Add(1)
	go func() {
		defer s.swg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			select {
			case due <- id:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
}

func (s *Sim) onPlanSelection(m *Message) error {
	t := s.txns[m.TxnID]
	if t == nil || !t.awaitingPlan {
		return s.send(s.errorFrame(m.TxnID, "No installment plan pending for this transaction"))
	}
	if m.PlanID != "pay-in-full" && m.PlanID != "ipp-6m" {
		return s.send(s.errorFrame(m.TxnID, "Unknown installment plan"))
	}
	t.awaitingPlan = false
	if err := s.send(s.ackFrame(t.id, StatusPlanReceived)); err != nil {
		return err
	}
	return s.finish(t, m.PlanID)
}

// onCancel: every behaviour (but silent) acks a cancel with "received",
// known transaction or not. What follows is a guess at the app, which the
// seed leaves open ("nothing promises a final result"): the app aborts a
// payment still in flight and reports it as failed USER_ABORT, the same
// failure its samples show for an aborted card payment. A transaction
// already finished, or never seen, gets the ack alone. ackonly never sends
// a result, and cancel-late plays the race the kiosk must survive: the
// customer had already paid, so a success follows the ack.
func (s *Sim) onCancel(m *Message) error {
	frames := []simFrame{s.ackFrame(m.TxnID, StatusReceived)}
	if t := s.txns[m.TxnID]; t != nil {
		switch s.cfg.Behaviour {
		case "ackonly":
		case "cancel-late":
			delete(s.txns, t.id)
			frames = append(frames, s.resultFrame(t, ""))
		default:
			delete(s.txns, t.id)
			frames = append(frames, s.failedFrame(t, "USER_ABORT"))
		}
	}
	return s.send(frames...)
}

// finish sends t's final result as the behaviour shapes it.
func (s *Sim) finish(t *simTxn, planID string) error {
	delete(s.txns, t.id)
	res := s.resultFrame(t, planID)
	if s.cfg.Behaviour == "replay" {
		return s.send(res, res)
	}
	return s.send(res)
}

// send writes each frame with its own write (in pieces for split).
func (s *Sim) send(frames ...simFrame) error {
	for _, f := range frames {
		if err := s.write(f.b); err != nil {
			return err
		}
		s.sent(f)
	}
	return nil
}

// sendMerged writes all frames with one write.
func (s *Sim) sendMerged(frames ...simFrame) error {
	var b []byte
	for _, f := range frames {
		b = append(b, f.b...)
	}
	if err := s.write(b); err != nil {
		return err
	}
	for _, f := range frames {
		s.sent(f)
	}
	return nil
}

func (s *Sim) sent(f simFrame) {
	s.event(SimEvent{Kind: SimSent, Msg: Message{Type: f.typ, TxnID: f.txn, Status: f.status}})
	s.log.Info("sent", "type", f.typ, "status", f.status, "txn_id", f.txn)
}

func (s *Sim) write(b []byte) error {
	s.log.Debug("frames out", "bytes", string(b))
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	piece := len(b)
	if s.cfg.Behaviour == "split" {
		piece = simPiece
	}
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := s.conn.Write(b[:n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// Message builders. Keys come in the app's order (see the samples in the
// integration document), with Python's default separators.

// pyObject writes a JSON object as Python's json.dumps does by default.
type pyObject struct{ b []byte }

func (o *pyObject) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ", "...)
	}
	o.b = AppendPyString(o.b, k)
	o.b = append(o.b, ": "...)
}

func (o *pyObject) str(k, v string) *pyObject {
	o.key(k)
	o.b = AppendPyString(o.b, v)
	return o
}

func (o *pyObject) raw(k string, v []byte) *pyObject {
	o.key(k)
	o.b = append(o.b, v...)
	return o
}

func (o *pyObject) close() []byte {
	if len(o.b) == 0 {
		return []byte("{}")
	}
	return append(o.b, '}')
}

func (s *Sim) head(typ, txn, status string) *pyObject {
	o := &pyObject{}
	o.str("type", typ).str("txn_id", txn)
	if status != "" {
		o.str("status", status)
	}
	return o.str("pos_id", s.cfg.PosID)
}

// seal ends the payload with timestamp and nonce and wraps it in a signed
// envelope. wireSig signs the wire bytes instead of the canonical payload,
// the classic integration mistake the kiosk must refuse.
func (s *Sim) seal(o *pyObject, ts time.Time, wireSig bool) []byte {
	var nonce [16]byte
	rand.Read(nonce[:])
	o.str("timestamp", strconv.FormatInt(ts.UnixMilli(), 10))
	o.str("nonce", base64.StdEncoding.EncodeToString(nonce[:]))
	payload := o.close()
	b := append([]byte(`{"payload": `), payload...)
	b = append(b, `, "signature": "`...)
	if wireSig {
		mac := hmac.New(sha256.New, s.cfg.Secret)
		mac.Write(payload)
		b = hex.AppendEncode(b, mac.Sum(nil))
	} else {
		var err error
		if b, err = s.codec.appendSignature(b, payload); err != nil {
			panic("mobypay: sim built an unsignable payload: " + err.Error())
		}
	}
	return append(b, "\"}\n"...)
}

// appendSignature appends the hex HMAC of payload's canonical form.
func (c *Codec) appendSignature(dst, payload []byte) ([]byte, error) {
	root, err := c.p.Parse(payload)
	if err != nil {
		return dst, err
	}
	if c.canon, err = c.p.AppendCanonical(c.canon[:0], root); err != nil {
		return dst, err
	}
	return hex.AppendEncode(dst, c.macOf(c.canon)), nil
}

func (s *Sim) ackFrame(txn, status string) simFrame {
	o := s.head(TypeAck, txn, status)
	return simFrame{s.seal(o, s.cfg.Now(), false), TypeAck, txn, status}
}

func (s *Sim) errorFrame(txn, text string) simFrame {
	o := &pyObject{}
	o.str("type", TypeError).str("txn_id", txn).str("message", text).str("pos_id", s.cfg.PosID)
	return simFrame{s.seal(o, s.cfg.Now(), false), TypeError, txn, ""}
}

func (s *Sim) failedFrame(t *simTxn, why string) simFrame {
	o := s.head(TypeTransactionResult, t.id, StatusFailed)
	o.str("error_message", why).raw("amount", AppendPyFloat(nil, t.amount))
	return simFrame{s.seal(o, s.cfg.Now(), false), TypeTransactionResult, t.id, StatusFailed}
}

// resultFrame is t's final result as the behaviour shapes it.
func (s *Sim) resultFrame(t *simTxn, planID string) simFrame {
	b := s.cfg.Behaviour
	if b == "decline" {
		return s.failedFrame(t, "USER_ABORT")
	}
	status, txn, amount, ts := StatusSuccess, t.id, t.amount, s.cfg.Now()
	switch b {
	case "approved":
		status = StatusApproved
	case "wrongamount":
		if sen, ok := FloatToSen(amount); ok {
			amount = float64(sen+100) / 100
		} else {
			amount++
		}
	case "wrongtxn":
		txn = otherTxnID(txn)
	case "stale":
		ts = ts.Add(-2 * time.Minute)
	}
	s.seq = (s.seq + 1) % 1_000_000
	o := s.head(TypeTransactionResult, txn, status)
	o.str("transaction_id", fmt.Sprintf("%06d", s.seq))
	o.raw("amount", AppendPyFloat(nil, amount))
	if t.mode == ModeCard || t.mode == ModeIPP {
		o.str("authorization_code", fmt.Sprintf("A%05d", (s.seq*7919)%100000))
		o.str("card_last4", "4242")
	}
	if planID != "" {
		o.str("plan_id", planID)
	}
	return simFrame{s.seal(o, ts, b == "badsig"), TypeTransactionResult, txn, status}
}

// plansFrame offers pay-in-full and a 6-month plan, as the app's sample.
func (s *Sim) plansFrame(t *simTxn) simFrame {
	p := []byte(`[{"planId": "pay-in-full", "frequency": "", "totalInstallments": 0, "installmentDetails": []}, `)
	p = append(p, `{"planId": "ipp-6m", "frequency": "monthly", "totalInstallments": 6, "installmentDetails": [`...)
	if sen, ok := FloatToSen(t.amount); ok && sen > 0 {
		each := sen / 6
		for i := range int64(6) {
			amt := each
			if i == 5 {
				amt = sen - 5*each
			}
			if i > 0 {
				p = append(p, ", "...)
			}
			p = fmt.Appendf(p, `{"installment": %d, "amount": `, i+1)
			p = appendAmount(p, amt)
			p = append(p, '}')
		}
	}
	p = append(p, "]}]"...)
	o := s.head(TypeTransactionResult, t.id, StatusIPPPlans)
	o.raw("plans", p).raw("amount", AppendPyFloat(nil, t.amount))
	return simFrame{s.seal(o, s.cfg.Now(), false), TypeTransactionResult, t.id, StatusIPPPlans}
}

// otherTxnID returns a plausible different txn_id: the next millisecond.
func otherTxnID(id string) string {
	if n, err := strconv.ParseInt(strings.TrimPrefix(id, "TXN"), 10, 64); err == nil && strings.HasPrefix(id, "TXN") {
		return "TXN" + strconv.FormatInt(n+1, 10)
	}
	return id + "0"
}
