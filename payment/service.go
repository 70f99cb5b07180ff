package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Vender releases the product (the relay pulse, or a coin-pulse train).
// It is called at most once per payment, after "releasing" is journaled.
//
// For a train (t.PulsesTotal > 0) it must call progress(k) after pulse k
// has ended and wait for it to return before pulse k+1 starts: progress
// journals the count, so a crash leaves at most one pulse in doubt. An
// error from progress means the count is not on record and the train
// must stop there; Vend returns an error then. progress runs on the
// caller's goroutine and must not be called after Vend returns.
type Vender interface {
	Vend(ctx context.Context, t Txn, progress func(done int) error) error
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
	VendTimeout    time.Duration       // bound on one relay operation (a whole train)
	// AsyncVendTimeout is an AsyncVender's absolute deadline, from the
	// vend's start to its outcome (default DefaultAsyncVendTimeout):
	// past it the vend is journaled vend_unknown, never retried.
	AsyncVendTimeout time.Duration
	// PulseValue, when positive, is what one coin pulse is worth: a vend
	// is a train of Amount/PulseValue pulses, and an amount that is not a
	// whole number of pulses, or more than MaxPulses of them, is refused
	// at creation. Zero: one pulse per vend.
	PulseValue         Sen
	MaxPulses          int
	IPPAutoSelect      IPPAutoSelect
	SuccessAfterCancel SuccessAfterCancel
	Log                *slog.Logger
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
	// Vender, when set, vends this payment instead of the service's
	// Vender: a machine that reports the outcome later (MDB). It is not
	// journaled; a payment interrupted by a restart is never vended.
	Vender AsyncVender
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
	cur *Txn
	// stored is the journal's copy of the payment the loop last wrote, as
	// of that commit (cur may be ahead of it: later): what UpdateSteps is
	// handed to skip decoding the record it already knows.
	stored   Txn
	planPref string
	timer    *time.Timer
	timerFor timerKind
	dl       deadlines
	cancelBy timerKind // why cancel was requested: cancel (operator) or a timeout
	// cancelErr is why the cancel was not confirmed sent (nil if it was):
	// without it nothing stops the terminal from still taking the money.
	cancelErr error
	// async holds the AsyncVender of each payment that has one, from its
	// creation until its vend ends (or the payment ends without one).
	async map[string]AsyncVender
	// journalErr is the last journal failure of the report being handled.
	journalErr error
	// later holds the steps of cur that the next commit writes first
	// (soon); commitNow makes soon commit at once, for Record.
	later     []Step
	commitNow bool
	// laterEv holds the evidence of the steps in later (laterEv[i] is
	// later[i]'s), next is soon's scratch copy of cur and ev the evidence
	// of the report being handled: the loop's own, so that a step does
	// not allocate them.
	laterEv [maxLater]Evidence
	next    Txn
	ev      Evidence
	// A flood of one kind of message costs a few log lines, not one each.
	unknownLog, repeatLog, lateLog rateLog

	mu   sync.Mutex // guards below, read by API goroutines
	pos  map[string]POSState
	subs map[chan Event]struct{}
	// live is a copy of cur for readers (when hasLive): a value, so that
	// keeping it up to date costs no allocation per step.
	live    Txn
	hasLive bool
	// paused is why new payments are refused (Pause), "" to take them.
	paused string
}

// NewService wires a service. Call Run to start it.
func NewService(cfg Config, j *Journal, vender Vender, printer Printer, providers ...Provider) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
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
	if cfg.AsyncVendTimeout <= 0 {
		cfg.AsyncVendTimeout = DefaultAsyncVendTimeout
	}
	s := &Service{
		cfg: cfg, log: cfg.Log.With("component", "payment"), j: j,
		providers: map[string]Provider{}, vender: vender, printer: printer,
		cmds: make(chan func()), stopped: make(chan struct{}), reports: make(chan Report, 64), links: make(chan POSState, 16),
		pos: map[string]POSState{}, subs: map[chan Event]struct{}{}, async: map[string]AsyncVender{},
	}
	for _, p := range providers {
		s.providers[p.Name()] = p
		s.pos[p.Name()] = POSState{Provider: p.Name(), State: "disconnected", Since: time.Now()}
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
			s.flushLater()
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
	// A coin-pulse train is the relay's: a machine that vends itself
	// (MDB) is told the amount, whole pulses or not.
	if req.Vender == nil {
		if err := s.pulsesFor(req.Amount); err != nil {
			return Txn{}, false, err
		}
	}
	if err := ValidKey(req.Key); err != nil {
		return Txn{}, false, err
	}
	// One value for the closure's results: captured one by one, each
	// would be an allocation of its own.
	var res struct {
		out      Txn
		existing bool
		err      error
	}
	if derr := s.do(ctx, func() { res.out, res.existing, res.err = s.create(prov, req) }); derr != nil {
		return Txn{}, false, derr
	}
	return res.out, res.existing, res.err
}

const maxAmount Sen = 99_999_999_999

// pulsesFor checks that amount can be given as a coin-pulse train: a
// coin-op machine can only be credited whole pulses, so anything else
// would short or overcharge the customer.
func (s *Service) pulsesFor(amount Sen) error {
	v := s.cfg.PulseValue
	if v <= 0 {
		return nil
	}
	if amount%v != 0 {
		return fmt.Errorf("%w: amount %s is not a whole number of pulses of RM %s", ErrBadRequest, amount, v)
	}
	if n := amount / v; s.cfg.MaxPulses > 0 && n > Sen(s.cfg.MaxPulses) {
		return fmt.Errorf("%w: amount %s is %d pulses of RM %s, more than the %d a payment may give (RM %s)",
			ErrBadRequest, amount, n, v, s.cfg.MaxPulses, Sen(s.cfg.MaxPulses)*v)
	}
	return nil
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

// SelectPlan chooses one of the IPP plans offered.
func (s *Service) SelectPlan(ctx context.Context, id, planID string) (Txn, error) {
	var out Txn
	var err error
	if derr := s.do(ctx, func() { out, err = s.selectPlan(id, planID) }); derr != nil {
		return Txn{}, derr
	}
	return out, err
}

// Ping returns once the service loop has run an empty command: the
// watchdog's proof that the loop is alive, not stuck behind a hung call.
func (s *Service) Ping(ctx context.Context) error { return s.do(ctx, func() {}) }
