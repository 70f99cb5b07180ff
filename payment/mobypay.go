package payment

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Sender writes one frame to the terminal (mobypay.Server.Send).
type Sender interface {
	Send(frame []byte) error
}

// MobyPay is the POS terminal provider: it turns service requests into
// signed kiosk messages and the POS's verified messages into Reports. It
// is the mobypay.Server's Handler.
type MobyPay struct {
	kioskID   string
	codec     *mobypay.Codec // used from the service loop only
	buf       []byte
	rnd       uuid.UUID // nonce's buffer, likewise
	send      Sender
	svc       *Service
	connected atomic.Bool
	// Window is the server's timestamp window; nonces are journaled for
	// two of them (mobypay.ReplayGuard keeps them as long).
	Window time.Duration
	log    *slog.Logger
}

// NewMobyPay returns the provider; Bind connects it before use.
func NewMobyPay(kioskID string, secret []byte, log *slog.Logger) *MobyPay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MobyPay{kioskID: kioskID, codec: mobypay.NewCodec(secret), Window: mobypay.DefaultWindow, log: log}
}

// Bind sets where frames go and where reports go.
func (p *MobyPay) Bind(send Sender, svc *Service) { p.send, p.svc = send, svc }

// Name implements Provider.
func (p *MobyPay) Name() string { return "mobypay" }

// Ready implements Provider: a request needs a connected terminal.
func (p *MobyPay) Ready() error {
	if !p.connected.Load() {
		return errors.New("POS terminal not connected")
	}
	return nil
}

func (p *MobyPay) header(t *Txn) mobypay.Header {
	return mobypay.Header{TxnID: t.ID, KioskID: p.kioskID, Nonce: p.nonce(), Timestamp: time.Now().UnixMilli()}
}

// nonce is a random (version 4) UUID, as uuid.NewString makes it, drawn
// into the provider's own buffer: only the string is allocated.
func (p *MobyPay) nonce() string {
	rand.Read(p.rnd[:])             // never fails (crypto/rand)
	p.rnd[6] = p.rnd[6]&0x0f | 0x40 // version 4
	p.rnd[8] = p.rnd[8]&0x3f | 0x80 // RFC 4122 variant
	return p.rnd.String()
}

func (p *MobyPay) write(frame []byte) error {
	err := p.send.Send(frame)
	if errors.Is(err, mobypay.ErrNotConnected) {
		return fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	return err
}

// Request implements Provider.
func (p *MobyPay) Request(t *Txn) error {
	var err error
	p.buf, err = p.codec.AppendTransactionRequest(p.buf[:0], p.header(t), int64(t.Amount), t.Mode)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	return p.write(p.buf)
}

// SelectPlan implements Provider.
func (p *MobyPay) SelectPlan(t *Txn, planID string) error {
	p.buf = p.codec.AppendPlanSelection(p.buf[:0], p.header(t), planID)
	return p.write(p.buf)
}

// Cancel implements Provider.
func (p *MobyPay) Cancel(t *Txn) error {
	p.buf = p.codec.AppendCancel(p.buf[:0], p.header(t))
	return p.write(p.buf)
}

// Message implements mobypay.Handler.
func (p *MobyPay) Message(m *mobypay.Message) { p.svc.Report(p.remember(report(m, ""))) }

// Late implements mobypay.Handler.
func (p *MobyPay) Late(m *mobypay.Message, reason error) {
	p.svc.Report(p.remember(report(m, reason.Error())))
}

// remember has the journal keep the message's nonce, with its evidence,
// for as long as the replay guard would: a byte-identical replay after a
// restart is then refused as a replay, not taken as new.
func (p *MobyPay) remember(r Report) Report {
	if r.Evidence.Nonce != "" {
		r.Evidence.Forget = time.Now().Add(2 * p.Window)
	}
	return r
}

// ConnState implements mobypay.Handler.
func (p *MobyPay) ConnState(s mobypay.ConnState, peer string) {
	p.connected.Store(s == mobypay.Connected)
	p.svc.Link(POSState{Provider: p.Name(), State: s.String(), Peer: peer})
}

func report(m *mobypay.Message, late string) Report {
	r := Report{
		Provider: "mobypay",
		TxnID:    m.TxnID, Status: m.Status, PosID: m.PosID, PlanID: m.PlanID,
		POSTxnID: m.TransactionID, AuthCode: m.AuthorizationCode, CardLast4: m.CardLast4,
		Late: late,
		// A stale or nonce-less message passes no replay guard: an
		// identical copy is dropped against the journal instead, or a
		// replayer could grow the journal one fsync at a time.
		Repeatable: late != "",
		Evidence:   Evidence{Source: "pos", Type: m.Type, Status: m.Status, Payload: m.Payload, Nonce: m.Nonce},
	}
	r.AmountText = m.AmountText
	if sen, ok := m.AmountSen(); ok {
		a := Sen(sen)
		r.Amount = &a
	} else if m.AmountText != "" {
		r.AmountBad = true
	}
	if !m.Clean() {
		// Authentic but not usable as sent: journaled, never acted on. One
		// that looks like a success goes to approve, which flags it; one
		// that looks like another outcome is flagged as not acted on.
		r.Odd = strings.Join(m.Odd, "; ")
		switch {
		case m.LooksLikeSuccess():
			r.Kind = ReportApproved
		case strings.EqualFold(m.Type, mobypay.TypeTransactionResult) && strings.EqualFold(m.Status, mobypay.StatusFailed):
			r.Kind = ReportDeclined
		case strings.EqualFold(m.Type, mobypay.TypeError):
			r.Kind = ReportError
		}
		return r
	}
	switch m.Type {
	case mobypay.TypeAck:
		r.Kind = ReportAck
	case mobypay.TypeTransactionResult:
		switch m.Status {
		case mobypay.StatusSuccess, mobypay.StatusApproved:
			r.Kind = ReportApproved
		case mobypay.StatusFailed:
			r.Kind, r.Message = ReportDeclined, m.ErrorMessage
		case mobypay.StatusIPPPlans:
			r.Kind = ReportPlans
			for _, pl := range m.Plans {
				r.Plans = append(r.Plans, Plan{ID: pl.ID, Frequency: pl.Frequency, TotalInstallments: pl.TotalInstallments, Raw: []byte(pl.Raw)})
			}
		}
	case mobypay.TypeError:
		r.Kind, r.Message = ReportError, m.Text
		if r.Message == "" {
			r.Message = m.ErrorMessage
		}
	}
	return r
}

// SeenNonces is Nonces in the form mobypay's replay guard loads
// (ServerConfig.Seen), so that a message replayed across a restart is
// refused as a replay.
func (j *Journal) SeenNonces(now time.Time) ([]mobypay.SeenNonce, error) {
	m, err := j.Nonces(now)
	if err != nil {
		return nil, err
	}
	out := make([]mobypay.SeenNonce, 0, len(m))
	for n, forget := range m {
		out = append(out, mobypay.SeenNonce{Nonce: n, Forget: forget})
	}
	return out, nil
}
