// Package possim plays MobyPay's POS terminal app against a kiosk: it
// connects as the TCP client, reconnects with the app's back-off, verifies
// every kiosk message and answers as the chosen behaviour says. It writes
// like the app's Python test client: json.dumps with default separators
// (", " and ": "), payload keys in the app's order, not sorted, so the
// kiosk has to re-canonicalise to verify.
//
// It is a firmware tool, not only a test fake: `kioskd possim` runs it
// against a kiosk in the field, so it is linked into the kioskd binary.
package possim

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Config configures a POS simulator. Zero values take the defaults noted.
type Config struct {
	Addr      string        // kiosk address, host:port
	Secret    []byte        // HMAC shared secret
	Behaviour Behaviour     // one of Behaviours (Approve)
	PosID     string        // pos_id sent ("POS001")
	Delay     time.Duration // slow: time from ack to result (5 s)
	// Window is the freshness and replay window for the kiosk's messages
	// (mobypay.DefaultWindow). The guard remembers at most
	// mobypay.DefaultReplayCap nonces a window, so a benchmark that makes
	// thousands of payments a minute shortens it.
	Window time.Duration

	// Reconnect back-off, as the app: MinBackoff, doubling to MaxBackoff
	// (1 s, 30 s). It starts again at MinBackoff after a connection that
	// stayed up at least MaxBackoff, so a kiosk that keeps refusing the
	// connection is not hammered.
	MinBackoff, MaxBackoff time.Duration

	Log *slog.Logger
	Now func() time.Time // clock for timestamps and the replay window (time.Now)
	// OnEvent, if set, is called from Run's goroutine for every event, in
	// order. It should not block for long: the simulator waits for it.
	OnEvent func(Event)
}

// EventKind says what happened.
type EventKind int

// Simulator events.
const (
	Connected    EventKind = iota + 1 // Addr: the kiosk
	Disconnected                      // Err: why
	Received                          // Msg: a verified, fresh kiosk message
	Refused                           // Err: a kiosk frame refused (signature, stale, replay, malformed)
	Sent                              // Msg: Type, TxnID, Status of a message written
	DialFailed                        // Err: why the kiosk could not be reached
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Received:
		return "received"
	case Refused:
		return "refused"
	case Sent:
		return "sent"
	case DialFailed:
		return "dial failed"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing the simulator did or saw.
type Event struct {
	At   time.Time // when the simulator emitted it, so gaps survive a slow reader
	Kind EventKind
	Addr string
	Msg  mobypay.Message
	Err  error
}

// Sim is a simulated POS terminal. Run it once.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	codec   *mobypay.Codec
	guard   *mobypay.ReplayGuard
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

// New checks cfg and returns a simulator.
func New(cfg Config) (*Sim, error) {
	if cfg.Addr == "" {
		return nil, errors.New("possim: no kiosk address")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("possim: no secret")
	}
	if cfg.Behaviour == "" {
		cfg.Behaviour = Approve
	}
	if cfg.Behaviour.Help() == "" {
		names := make([]string, 0, len(behaviours))
		for _, b := range Behaviours() {
			names = append(names, string(b))
		}
		return nil, fmt.Errorf("possim: unknown behaviour %q (want one of %s)", cfg.Behaviour, strings.Join(names, ", "))
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
		codec: mobypay.NewCodec(cfg.Secret),
		guard: mobypay.NewReplayGuard(cfg.Window, 0),
		txns:  make(map[string]*simTxn),
		seq:   int(seq[0])<<8 | int(seq[1]),
	}, nil
}

// Run connects to the kiosk and serves it, reconnecting with back-off
// whenever the connection fails or drops, until ctx ends; then it returns
// nil.
func (s *Sim) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("possim: Run called twice")
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
			s.event(Event{Kind: DialFailed, Err: err})
			s.log.Warn("cannot connect", "addr", s.cfg.Addr, "err", err, "retry_in", backoff)
		} else {
			since := time.Now()
			s.event(Event{Kind: Connected, Addr: conn.RemoteAddr().String()})
			s.log.Info("connected", "kiosk", conn.RemoteAddr().String(), "local", conn.LocalAddr().String())
			err = s.session(ctx, conn)
			if ctx.Err() != nil {
				s.event(Event{Kind: Disconnected, Err: context.Cause(ctx)})
				s.log.Info("stopped")
				return nil
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by kiosk")
			}
			s.event(Event{Kind: Disconnected, Err: err})
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

func (s *Sim) event(e Event) {
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
		fr := mobypay.NewFrameReader(conn, mobypay.MaxFrame)
		for {
			f, err := fr.Next()
			if errors.Is(err, mobypay.ErrFrameTooLarge) {
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
	s.event(Event{Kind: Refused, Err: err})
	s.log.Warn("kiosk message refused", "reason", err.Error(), "bytes", len(frame))
}

// handleFrame verifies one kiosk frame and answers it.
func (s *Sim) handleFrame(frame []byte) error {
	if frame == nil {
		s.refuse(mobypay.ErrFrameTooLarge, nil)
		return nil
	}
	s.log.Debug("frame in", "frame", string(frame))
	var m mobypay.Message
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
	s.event(Event{Kind: Received, Msg: m})
	attrs := []any{"type", m.Type, "txn_id", m.TxnID}
	if m.HasAmount {
		attrs = append(attrs, "amount", m.Amount, "payment_mode", m.PaymentMode)
	}
	if m.PlanID != "" {
		attrs = append(attrs, "plan_id", m.PlanID)
	}
	s.log.Info("received", attrs...)
	if s.cfg.Behaviour == Silent {
		return nil
	}
	switch m.Type {
	case mobypay.TypeTransactionRequest:
		return s.onRequest(&m)
	case mobypay.TypeIPPPlanSelection:
		return s.onPlanSelection(&m)
	case mobypay.TypeCancelTransaction:
		return s.onCancel(&m)
	}
	s.log.Info("unknown message type ignored", "type", m.Type)
	return nil
}
