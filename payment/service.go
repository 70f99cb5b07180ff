package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Errors the control API maps to answers.
var (
	ErrBusy         = errors.New("payment: a payment is in progress")
	ErrNotReady     = errors.New("payment: provider not ready")
	ErrNotDelivered = errors.New("payment: request not delivered")
	ErrBadRequest   = errors.New("payment: bad request")
	ErrNotActive    = errors.New("payment: transaction is not in progress")
)

// Provider is a payment terminal link as the service drives it. Its
// methods are called from the service loop only.
type Provider interface {
	Name() string
	// Ready reports why a request cannot be sent now (nil if it can).
	Ready() error
	// Request, SelectPlan and Cancel send to the terminal. An error that
	// wraps ErrNotDelivered means nothing can have reached it.
	Request(t *Txn) error
	SelectPlan(t *Txn, planID string) error
	Cancel(t *Txn) error
}

// Inquirer is a provider that can ask its host for a payment's outcome.
// The service asks before it gives a payment up (no ack, no result, end
// of the cancel grace); a final answer is applied like any report.
type Inquirer interface {
	Inquire(t *Txn) (Report, error)
}

// Vender releases the product (the relay pulse). It is called at most once
// per payment, after "releasing" is journaled.
type Vender interface {
	Vend(ctx context.Context, t Txn) error
}

// Printer queues a receipt. It must not block.
type Printer interface {
	Receipt(t Txn)
}

// Timeouts for one payment mode.
type Timeouts struct {
	Ack    time.Duration // request sent → ack
	Result time.Duration // ack (or plan selection) → result
	Plan   time.Duration // plans offered → selection (IPP)
}

// Config is the service's behaviour where the protocol leaves a choice.
type Config struct {
	Timeouts       map[string]Timeouts // by mode
	CancelGrace    time.Duration       // after cancel, wait this long for a final result
	ReconnectGrace time.Duration       // after the POS drops mid-payment, wait for it to come back
	VendTimeout    time.Duration       // bound on one relay operation
	// IPPAutoSelect picks a plan without the controller: "none", "single"
	// (when exactly one plan is offered) or "first".
	IPPAutoSelect string
	// SuccessAfterCancel: "vend" (the customer paid; release) or "review".
	SuccessAfterCancel string
	Log                *slog.Logger
	Now                func() time.Time
}

// CreateRequest asks for a payment.
type CreateRequest struct {
	Provider string
	Mode     string
	Amount   Sen
	PlanID   string // IPP: preferred plan, used if offered
	// Key is the controller's idempotency key (1..64 printable ASCII, or
	// empty for none): a request with a key that was used before returns
	// that payment instead of a new one, across restarts.
	Key string
}

// Event is published on every change the controller may care about.
type Event struct {
	Kind string    `json:"kind"` // "payment" or "pos"
	At   time.Time `json:"at"`
	Txn  *Txn      `json:"txn,omitempty"`
	POS  *POSState `json:"pos,omitempty"`
}

// POSState is the terminal link.
type POSState struct {
	Provider string    `json:"provider"`
	State    string    `json:"state"` // disconnected, connected, in_payment, error
	Peer     string    `json:"peer,omitempty"`
	Since    time.Time `json:"since"`
}

// Service runs payments: one at a time, each transition journaled before
// the effect it permits.
type Service struct {
	cfg       Config
	log       *slog.Logger
	j         *Journal
	providers map[string]Provider
	vender    Vender
	printer   Printer

	cmds    chan func()
	stopped chan struct{} // closed when Run returns: senders stop waiting
	reports chan Report
	links   chan POSState

	// Owned by the loop.
	cur      *Txn
	planPref string
	timer    *time.Timer
	timerFor timerKind
	dl       deadlines
	cancelBy timerKind // why cancel was requested: cancel (operator) or a timeout
	// cancelErr is why the cancel was not confirmed sent (nil if it was):
	// without it nothing stops the terminal from still taking the money.
	cancelErr error
	// journalErr is the last journal failure of the report being handled.
	journalErr error
	// A flood of one kind of message costs a few log lines, not one each.
	unknownLog, repeatLog, lateLog rateLog

	mu   sync.Mutex // guards below, read by API goroutines
	pos  map[string]POSState
	subs map[chan Event]struct{}
	live *Txn // copy of cur for readers
}

// NewService wires a service. Call Run to start it.
func NewService(cfg Config, j *Journal, vender Vender, printer Printer, providers ...Provider) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CancelGrace <= 0 {
		cfg.CancelGrace = 30 * time.Second
	}
	if cfg.ReconnectGrace <= 0 {
		cfg.ReconnectGrace = 30 * time.Second
	}
	if cfg.VendTimeout <= 0 {
		cfg.VendTimeout = 10 * time.Second
	}
	s := &Service{
		cfg: cfg, log: cfg.Log.With("component", "payment"), j: j,
		providers: map[string]Provider{}, vender: vender, printer: printer,
		cmds: make(chan func()), stopped: make(chan struct{}), reports: make(chan Report, 64), links: make(chan POSState, 16),
		pos: map[string]POSState{}, subs: map[chan Event]struct{}{},
	}
	for _, p := range providers {
		s.providers[p.Name()] = p
		s.pos[p.Name()] = POSState{Provider: p.Name(), State: "disconnected", Since: cfg.Now()}
	}
	s.unknownLog.period, s.repeatLog.period, s.lateLog.period = 10*time.Second, 10*time.Second, 10*time.Second
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	return s
}

// Journal returns the service's journal, for read-only API handlers.
func (s *Service) Journal() *Journal { return s.j }

// Link reports a provider's link state.
func (s *Service) Link(st POSState) {
	select {
	case s.links <- st:
	case <-s.stopped:
	}
}

// Run is the service loop. It returns when ctx ends; a payment in flight
// is left to recovery at the next start.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.stopped)
	for {
		select {
		case <-ctx.Done():
			s.timer.Stop()
			return nil
		case f := <-s.cmds:
			f()
		case r := <-s.reports:
			s.onReport(r)
		case l := <-s.links:
			s.onLink(l)
		case <-s.timer.C:
			k := s.timerFor
			s.timerFor = timerNone
			s.onTimer(k)
			if s.cur != nil && s.timerFor == timerNone {
				// What the timer should have done did not reach the
				// journal (a write failed): try again, so the payment
				// still ends instead of holding the kiosk busy.
				s.timerFor = k
				s.timer.Reset(time.Second)
			}
		}
	}
}

// do runs f on the loop and waits.
func (s *Service) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.cmds <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Create starts a payment and returns once the request is sent (or has
// definitely failed). With a Key that was used before it returns that
// payment (see CreateOrGet).
func (s *Service) Create(ctx context.Context, req CreateRequest) (Txn, error) {
	t, _, err := s.CreateOrGet(ctx, req)
	return t, err
}

// CreateOrGet is Create that also says whether the payment returned is an
// existing one: req.Key was used before for the same amount, mode and
// provider. The same key for a different payment is ErrKeyMismatch. The
// key is looked up on the service loop, so of two concurrent requests
// with one key exactly one creates the payment.
func (s *Service) CreateOrGet(ctx context.Context, req CreateRequest) (Txn, bool, error) {
	if req.Provider == "" {
		req.Provider = "mobypay"
	}
	prov, ok := s.providers[req.Provider]
	if !ok {
		return Txn{}, false, fmt.Errorf("%w: unknown provider %q", ErrBadRequest, req.Provider)
	}
	if !mobypay.ValidMode(req.Mode) {
		return Txn{}, false, fmt.Errorf("%w: mode %q: want card, bnpl, duitnow_qr or ipp", ErrBadRequest, req.Mode)
	}
	if req.Amount <= 0 || req.Amount > maxAmount {
		return Txn{}, false, fmt.Errorf("%w: amount %s out of range", ErrBadRequest, req.Amount)
	}
	if err := ValidKey(req.Key); err != nil {
		return Txn{}, false, err
	}
	var out Txn
	var existing bool
	var err error
	if derr := s.do(ctx, func() { out, existing, err = s.create(prov, req) }); derr != nil {
		return Txn{}, false, derr
	}
	return out, existing, err
}

const maxAmount Sen = 99_999_999_999

func (s *Service) create(prov Provider, req CreateRequest) (Txn, bool, error) {
	// A retry of a payment already made (in progress or not) is answered
	// before anything else, busy and not-ready included.
	if req.Key != "" {
		t, err := s.j.ByKey(req.Key)
		switch {
		case err == nil && (t.Amount != req.Amount || t.Mode != req.Mode || t.Provider != prov.Name()):
			return t, false, fmt.Errorf("%w: key %q is %s (%s %s via %s)", ErrKeyMismatch, req.Key, t.ID, t.Amount, t.Mode, t.Provider)
		case err == nil:
			if s.cur != nil && s.cur.ID == t.ID {
				t = *s.cur
			}
			s.log.Info("payment exists for this idempotency key", "txn_id", t.ID, "state", t.State)
			return t, true, nil
		case !errors.Is(err, ErrNotFound):
			s.log.Error("journal read failed; payment refused", "err", err)
			return Txn{}, false, err
		}
	}
	if s.cur != nil {
		return Txn{}, false, fmt.Errorf("%w: %s", ErrBusy, s.cur.ID)
	}
	if err := prov.Ready(); err != nil {
		return Txn{}, false, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	t := Txn{Provider: prov.Name(), Mode: req.Mode, Amount: req.Amount, Key: req.Key}
	if err := s.j.Create(&t, s.now()); err != nil {
		s.log.Error("journal write failed; payment refused", "err", err)
		return Txn{}, false, err
	}
	s.cur, s.planPref, s.cancelBy, s.cancelErr = &t, req.PlanID, timerNone, nil
	s.log.Info("payment created", "txn_id", t.ID, "mode", t.Mode, "amount", t.Amount.String(), "provider", t.Provider)
	err := prov.Request(&t)
	if errors.Is(err, ErrNotDelivered) {
		s.log.Warn("payment request not delivered", "txn_id", t.ID, "err", err)
		out, _ := s.move(nil, func(t *Txn) { t.State = Declined; t.Error = err.Error() })
		return out, false, nil
	}
	if err != nil {
		// It may have reached the terminal: wait for the ack as usual.
		s.log.Warn("payment request may not have been delivered", "txn_id", t.ID, "err", err)
	}
	s.begin(&t)
	out, _ := s.move(nil, func(t *Txn) { t.State = Sent })
	// Armed even when "sent" is not on disk: the payment is in progress
	// either way and must still end by its deadlines.
	s.arm(timerAck, s.timeouts(t.Mode).Ack)
	return out, false, nil
}

// move applies one journaled transition to the current payment and
// publishes it. A journal failure stops the payment where it is: no
// effect may follow a transition that is not on disk.
func (s *Service) move(ev *Evidence, fn func(t *Txn)) (Txn, bool) {
	cur := s.cur
	t, err := s.j.Update(cur.ID, s.now(), ev, func(t *Txn) error { fn(t); return nil })
	if err != nil {
		s.journalErr = err
		s.log.Error("journal update failed", "txn_id", cur.ID, "err", err)
		return *cur, false
	}
	*cur = t
	s.log.Info("payment", "txn_id", t.ID, "state", t.State, "vend", t.Vend, "review", t.Review)
	if t.State.Final() && t.Vend != VendReleasing {
		s.cur = nil
		s.disarm()
	}
	s.publish(Event{Kind: "payment", Txn: &t})
	return t, true
}

// Cancel asks the terminal to cancel the payment in progress.
func (s *Service) Cancel(ctx context.Context, id string) (Txn, error) {
	var out Txn
	var err error
	if derr := s.do(ctx, func() { out, err = s.cancel(id, byOperator, "") }); derr != nil {
		return Txn{}, derr
	}
	return out, err
}

// cancel sends cancel_transaction and waits CancelGrace for a final
// result; why is byOperator or the timer that expired, reason its text.
func (s *Service) cancel(id string, why timerKind, reason string) (Txn, error) {
	if s.cur == nil || s.cur.ID != id {
		t, err := s.j.Get(id)
		if err != nil {
			return Txn{}, err
		}
		return t, fmt.Errorf("%w: %s is %s", ErrNotActive, id, t.State)
	}
	if s.cur.State == CancelRequested || s.cur.State.Final() {
		return *s.cur, nil
	}
	prov := s.providers[s.cur.Provider]
	if err := prov.Cancel(s.cur); err != nil {
		s.log.Warn("cancel not delivered; waiting for a result anyway", "txn_id", id, "err", err)
		s.cancelErr = err
	}
	s.cancelBy = why
	out, ok := s.move(nil, func(t *Txn) {
		t.State = CancelRequested
		if reason != "" {
			t.Error = reason
		}
	})
	if ok {
		s.arm(timerGrace, s.cfg.CancelGrace)
	}
	return out, nil
}

// SelectPlan chooses one of the IPP plans offered.
func (s *Service) SelectPlan(ctx context.Context, id, planID string) (Txn, error) {
	var out Txn
	var err error
	if derr := s.do(ctx, func() { out, err = s.selectPlan(id, planID) }); derr != nil {
		return Txn{}, derr
	}
	return out, err
}

func (s *Service) selectPlan(id, planID string) (Txn, error) {
	if s.cur == nil || s.cur.ID != id || s.cur.State != PlansOffered {
		t, err := s.j.Get(id)
		if err != nil {
			return Txn{}, err
		}
		return t, fmt.Errorf("%w: %s is %s, not plans_offered", ErrNotActive, id, t.State)
	}
	if !slices.ContainsFunc(s.cur.Plans, func(p Plan) bool { return p.ID == planID }) {
		return *s.cur, fmt.Errorf("%w: plan %q was not offered", ErrBadRequest, planID)
	}
	out, ok := s.move(nil, func(t *Txn) { t.State = PlanSelected; t.PlanID = planID })
	if !ok {
		return out, errors.New("payment: journal write failed")
	}
	if err := s.providers[out.Provider].SelectPlan(s.cur, planID); err != nil {
		s.log.Warn("plan selection may not have been delivered", "txn_id", id, "err", err)
	}
	s.arm(timerResult, s.timeouts(out.Mode).Result)
	return out, nil
}

// Ping returns once the service loop has run an empty command: the
// watchdog's proof that the loop is alive, not stuck behind a hung call.
func (s *Service) Ping(ctx context.Context) error { return s.do(ctx, func() {}) }

// Current returns the payment in progress, if any.
func (s *Service) Current() *Txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		return nil
	}
	t := *s.live
	return &t
}

// POS returns the state of each provider's link.
func (s *Service) POS() []POSState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]POSState, 0, len(s.pos))
	for _, p := range s.pos {
		if cur := s.live; cur != nil && cur.Provider == p.Provider && p.State == "connected" {
			p.State = "in_payment"
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b POSState) int {
		if a.Provider < b.Provider {
			return -1
		}
		return 1
	})
	return out
}

// Subscribe returns a channel of events. A subscriber that falls behind
// by more than the buffer is dropped (its channel closed) rather than
// ever slowing a payment.
func (s *Service) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}
}

func (s *Service) publish(e Event) {
	e.At = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Txn != nil {
		if s.cur != nil && s.cur.ID == e.Txn.ID {
			c := *s.cur
			s.live = &c
		} else if s.live != nil && s.live.ID == e.Txn.ID {
			s.live = nil
		}
	}
	for ch := range s.subs {
		select {
		case ch <- e:
		default:
			delete(s.subs, ch)
			close(ch)
		}
	}
}
