package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
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

// ReportKind says what a provider learned.
type ReportKind int

// Report kinds.
const (
	ReportOther    ReportKind = iota // nothing to act on; kept as evidence
	ReportAck                        // the terminal acknowledged (Status says which)
	ReportPlans                      // IPP plans offered
	ReportApproved                   // final success
	ReportDeclined                   // final failure
	ReportError                      // the terminal could not process the request
)

// Report is one authentic message about a transaction, normalised.
type Report struct {
	TxnID     string
	Kind      ReportKind
	Status    string // ack status
	Amount    *Sen   // amount stated by the result, if any
	AmountBad bool   // an amount was stated that is not a whole number of sen
	// AmountText is the amount as the message stated it (canonical JSON
	// text), whatever its type, kept next to the parsed sen.
	AmountText string
	// Odd, when set, says why an authentic message is not usable as sent
	// (a field of the wrong type, a status in another case): it is
	// journaled and, if it looks like a success, flagged, never acted on.
	Odd       string
	Plans     []Plan
	PlanID    string
	POSTxnID  string
	AuthCode  string
	CardLast4 string
	PosID     string
	Message   string // decline reason or error text
	// Late, when set, says why the message must not be acted on (stale
	// timestamp); it is journaled and flagged, never applied.
	Late string
	// Repeatable marks messages a peer may send again unchanged (KPOS
	// retries a notification it thinks was lost). They are compared with
	// what is journaled and a repeat is dropped. MobyPay needs no such
	// check: its nonces are refused by the replay guard before this.
	Repeatable bool
	Evidence   Evidence
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
	reports chan Report
	links   chan POSState

	// Owned by the loop.
	cur      *Txn
	planPref string
	timer    *time.Timer
	timerFor timerKind
	dl       deadlines
	cancelBy timerKind // why cancel was requested: cancel (operator) or a timeout
	// journalErr is the last journal failure of the report being handled.
	journalErr error
	unknownLog rateLog

	mu   sync.Mutex // guards below, read by API goroutines
	pos  map[string]POSState
	subs map[chan Event]struct{}
	live *Txn // copy of cur for readers
}

type timerKind int

const (
	timerNone timerKind = iota
	timerAck
	timerResult
	timerPlan
	timerGrace
	timerReconnect
	timerHard
	byOperator
)

// deadlines are the payment in progress's absolute limits. Nothing a peer
// does moves them later: a reconnect neither restarts the phase that was
// running nor grants a fresh reconnect grace, so a flapping link or a POS
// repeating an ack cannot keep a payment (and the kiosk) busy. The timer
// is armed for the earliest of them.
type deadlines struct {
	phase   timerKind // ack, result, plan or grace
	phaseAt time.Time
	// While the link is down mid-payment, downAt is when it went and
	// reconnectAt when the reconnect budget runs out. budget is what is
	// left of the payment's one ReconnectGrace.
	downAt, reconnectAt time.Time
	budget              time.Duration
	hard                time.Time // the whole payment, a safety net
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
		cmds: make(chan func()), reports: make(chan Report, 64), links: make(chan POSState, 16),
		pos: map[string]POSState{}, subs: map[chan Event]struct{}{},
	}
	for _, p := range providers {
		s.providers[p.Name()] = p
		s.pos[p.Name()] = POSState{Provider: p.Name(), State: "disconnected", Since: cfg.Now()}
	}
	s.unknownLog.period = 10 * time.Second
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	return s
}

// Journal returns the service's journal, for read-only API handlers.
func (s *Service) Journal() *Journal { return s.j }

// Report hands the service an authentic message. It blocks only while the
// loop is busy, which bounds memory under a flood of valid messages.
func (s *Service) Report(r Report) { s.reports <- r }

// Link reports a provider's link state.
func (s *Service) Link(st POSState) { s.links <- st }

// Run is the service loop. It returns when ctx ends; a payment in flight
// is left to recovery at the next start.
func (s *Service) Run(ctx context.Context) error {
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

// arm sets the deadline of the payment's current phase, d from now.
func (s *Service) arm(k timerKind, d time.Duration) {
	s.dl.phase, s.dl.phaseAt = k, s.now().Add(d)
	s.schedule()
}

// begin sets the deadlines of a new payment.
func (s *Service) begin(t *Txn) {
	s.dl = deadlines{budget: s.cfg.ReconnectGrace, hard: t.CreatedAt.Add(s.MaxDuration(t.Mode))}
}

// MaxDuration is the longest a payment in mode can stay open: every phase
// used to its limit, one after the other (IPP waits for a result twice:
// for the plans and after the selection), then the cancel grace. The
// reconnect grace is spent inside those phases, never added to them.
func (s *Service) MaxDuration(mode string) time.Duration {
	tm := s.timeouts(mode)
	d := tm.Ack + tm.Result + s.cfg.CancelGrace
	if mode == "ipp" {
		d += tm.Plan + tm.Result
	}
	return d
}

// schedule arms the timer for the earliest deadline of the payment.
func (s *Service) schedule() {
	s.timer.Stop()
	s.timerFor = timerNone
	if s.cur == nil {
		return
	}
	k, at := timerHard, s.dl.hard
	if s.dl.phase != timerNone && s.dl.phaseAt.Before(at) {
		k, at = s.dl.phase, s.dl.phaseAt
	}
	if !s.dl.reconnectAt.IsZero() && s.dl.reconnectAt.Before(at) {
		k, at = timerReconnect, s.dl.reconnectAt
	}
	s.timerFor = k
	s.timer.Reset(max(at.Sub(s.now()), 0))
}

func (s *Service) disarm() {
	s.timer.Stop()
	s.timerFor = timerNone
	s.dl = deadlines{}
}

func (s *Service) timeouts(mode string) Timeouts {
	t := s.cfg.Timeouts[mode]
	if t.Ack <= 0 {
		t.Ack = 15 * time.Second
	}
	if t.Result <= 0 {
		t.Result = 2 * time.Minute
	}
	if t.Plan <= 0 {
		t.Plan = time.Minute
	}
	return t
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
	if !validMode(req.Mode) {
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

func validMode(m string) bool {
	switch m {
	case "card", "bnpl", "duitnow_qr", "ipp":
		return true
	}
	return false
}

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
	s.cur, s.planPref, s.cancelBy = &t, req.PlanID, timerNone
	s.begin(&t)
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
	out, ok := s.move(nil, func(t *Txn) { t.State = Sent })
	if ok {
		s.arm(timerAck, s.timeouts(t.Mode).Ack)
	}
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

func (s *Service) onLink(st POSState) {
	st.Since = s.now()
	s.mu.Lock()
	s.pos[st.Provider] = st
	s.mu.Unlock()
	s.publish(Event{Kind: "pos", POS: &st})
	if s.cur == nil || s.cur.Provider != st.Provider || s.cur.State.Final() {
		return
	}
	if st.State == "connected" {
		if !s.dl.reconnectAt.IsZero() {
			s.dl.budget -= st.Since.Sub(s.dl.downAt)
			s.dl.downAt, s.dl.reconnectAt = time.Time{}, time.Time{}
			s.schedule()
		}
		return
	}
	if !s.dl.reconnectAt.IsZero() {
		return // still down: the budget is already running
	}
	// The terminal dropped mid-payment. Its result may still come after it
	// reconnects, within what is left of the payment's one reconnect
	// budget; if not, the outcome is unknown.
	s.log.Warn("POS link lost mid-payment", "txn_id", s.cur.ID, "state", s.cur.State, "reconnect_budget", s.dl.budget)
	s.dl.downAt, s.dl.reconnectAt = st.Since, st.Since.Add(max(s.dl.budget, 0))
	if !s.cur.Dropped {
		if _, ok := s.move(nil, func(t *Txn) { t.Dropped = true }); !ok {
			return
		}
	}
	s.schedule()
}

func (s *Service) onTimer(k timerKind) {
	if s.cur == nil {
		return
	}
	if s.inquire() {
		return
	}
	t := s.cur
	switch k {
	case timerAck:
		// No ack: the terminal may never have seen the request. Ask it to
		// cancel in case it did; a result that still comes is flagged.
		s.log.Warn("no ack from POS", "txn_id", t.ID)
		s.providers[t.Provider].Cancel(t)
		s.move(nil, func(t *Txn) { t.State = TimedOut; t.Error = "no ack from the terminal" })
	case timerResult, timerPlan:
		what := "no result from the terminal"
		if k == timerPlan {
			what = "no plan selected in time"
		}
		s.log.Warn(what+"; cancelling", "txn_id", t.ID)
		s.cancel(t.ID, k, what)
	case timerGrace:
		switch {
		case t.Dropped:
			s.move(nil, func(t *Txn) {
				t.State = Unknown
				t.flag("POS link lost mid-payment and no result after cancel")
			})
		case s.cancelBy == byOperator:
			s.move(nil, func(t *Txn) { t.State = Cancelled })
		default:
			s.move(nil, func(t *Txn) { t.State = TimedOut })
		}
	case timerReconnect:
		s.move(nil, func(t *Txn) {
			t.State = Unknown
			t.flag("POS link lost mid-payment; outcome unknown")
		})
	case timerHard:
		s.log.Error("payment open past its absolute deadline", "txn_id", t.ID, "state", t.State)
		s.move(nil, func(t *Txn) {
			t.State = Unknown
			t.flag("no outcome within the payment's absolute deadline")
		})
	}
}

// Recorded says what became of a report handed to Record.
type Recorded struct {
	Known     bool // about a journaled transaction
	Duplicate bool // the same message was journaled before; nothing changed
	Txn       Txn  // the transaction after the report (if known)
}

// Record hands the service an authentic message and returns once it is
// durably journaled (or the journal failed), for peers that must not be
// told "received" before that: KPOS notifications.
func (s *Service) Record(ctx context.Context, r Report) (Recorded, error) {
	var out Recorded
	var err error
	if derr := s.do(ctx, func() { out, err = s.onReport(r) }); derr != nil {
		return Recorded{}, derr
	}
	return out, err
}

func (s *Service) onReport(r Report) (Recorded, error) {
	ev := r.Evidence
	ev.TxnID = r.TxnID
	var t Txn
	var err error
	if s.cur != nil && s.cur.ID == r.TxnID {
		t = *s.cur // the loop's copy is the journal's, without a read
	} else {
		t, err = s.j.Get(r.TxnID)
	}
	if errors.Is(err, ErrNotFound) {
		ev.Disposal = "refused: unknown transaction"
		if ok, held := s.unknownLog.allow(s.now()); ok {
			s.log.Warn("message for an unknown transaction; kept as evidence", "txn_id", r.TxnID, "type", ev.Type, "status", ev.Status, "more_since_last_line", held)
		}
		if err := s.j.AddEvidence(&ev, s.now()); err != nil {
			s.log.Error("journal evidence failed", "err", err)
			return Recorded{}, err
		}
		return Recorded{}, nil
	}
	if err != nil {
		s.log.Error("journal read failed", "txn_id", r.TxnID, "err", err)
		return Recorded{}, err
	}
	// A peer that retries (KPOS re-posts a notification it thinks was
	// lost) gets the same answer and changes nothing.
	if r.Repeatable {
		dup, err := s.j.HasEvidence(t.ID, ev.Payload)
		if err != nil {
			return Recorded{}, err
		}
		if dup {
			s.log.Info("repeated message; already journaled", "txn_id", t.ID, "type", ev.Type, "status", ev.Status)
			return Recorded{Known: true, Duplicate: true, Txn: t}, nil
		}
	}
	s.journalErr = nil
	if s.cur != nil && s.cur.ID == r.TxnID && r.Late == "" {
		s.apply(r, &ev)
		return Recorded{Known: true, Txn: *s.curOr(t)}, s.journalErr
	}
	// Known, but late or about a payment no longer in progress: record it,
	// never act on it, and flag what could mean the customer paid.
	var flag string
	switch {
	case r.Late != "":
		ev.Disposal = "not acted on: " + r.Late
		if r.Kind == ReportApproved || r.Kind == ReportDeclined || r.Kind == ReportError {
			flag = "signed " + ev.Type + " " + ev.Status + " not acted on (" + r.Late + ")"
			if r.Kind == ReportApproved {
				flag += "; customer may have paid"
			}
		}
	case r.Kind == ReportApproved && t.State == Approved:
		ev.Disposal = "duplicate result"
	case r.Kind == ReportApproved:
		ev.Disposal = "not acted on: payment already " + string(t.State)
		flag = "success reported after the payment was " + string(t.State) + "; customer may have paid"
	default:
		ev.Disposal = "not acted on: payment " + string(t.State)
	}
	s.log.Warn("message about a payment not in progress; kept as evidence", "txn_id", t.ID, "state", t.State,
		"type", ev.Type, "status", ev.Status, "disposal", ev.Disposal)
	apply := func(x *Txn) {
		if flag != "" {
			x.flag(flag)
		}
	}
	if s.cur != nil && s.cur.ID == t.ID {
		nt, _ := s.move(&ev, apply)
		return Recorded{Known: true, Txn: nt}, s.journalErr
	}
	nt, err := s.j.Update(t.ID, s.now(), &ev, func(x *Txn) error { apply(x); return nil })
	if err != nil {
		s.log.Error("journal update failed", "txn_id", t.ID, "err", err)
		return Recorded{Known: true, Txn: t}, err
	}
	s.publish(Event{Kind: "payment", Txn: &nt})
	return Recorded{Known: true, Txn: nt}, nil
}

// curOr returns the payment in progress, or t once it has finished.
func (s *Service) curOr(t Txn) *Txn {
	if s.cur != nil {
		return s.cur
	}
	if nt, err := s.j.Get(t.ID); err == nil {
		return &nt
	}
	return &t
}

// apply acts on a fresh message about the payment in progress.
func (s *Service) apply(r Report, ev *Evidence) {
	t := s.cur
	tm := s.timeouts(t.Mode)
	ev.Disposal = "applied"
	ignore := func() { ev.Disposal = "not acted on in state " + string(t.State); s.move(ev, func(*Txn) {}) }
	switch r.Kind {
	case ReportAck:
		switch {
		case r.Status == "processing" && t.State == Sent:
			if _, ok := s.move(ev, func(t *Txn) { t.State = Acked; t.PosID = r.PosID }); ok {
				s.arm(timerResult, tm.Result)
			}
		case r.Status == "plan_received" && t.State == PlanSelected:
			// The result deadline runs from the selection: an ack that
			// the POS may repeat must not push it back.
			s.move(ev, func(*Txn) {})
		default:
			ev.Disposal = "noted"
			s.move(ev, func(*Txn) {})
		}
	case ReportPlans:
		if t.State != Sent && t.State != Acked || len(r.Plans) == 0 {
			ignore()
			return
		}
		out, ok := s.move(ev, func(t *Txn) { t.State = PlansOffered; t.Plans = r.Plans })
		if !ok {
			return
		}
		if pick := s.autoPlan(out.Plans); pick != "" {
			s.log.Info("IPP plan chosen automatically", "txn_id", out.ID, "plan_id", pick, "policy", s.cfg.IPPAutoSelect)
			s.selectPlan(out.ID, pick)
			return
		}
		s.arm(timerPlan, tm.Plan)
	case ReportApproved:
		s.approve(r, ev)
	case ReportDeclined:
		s.move(ev, func(t *Txn) {
			switch {
			case t.State != CancelRequested:
				t.State = Declined
			case s.cancelBy == byOperator:
				t.State = Cancelled
			default: // we cancelled because time ran out
				t.State = TimedOut
			}
			switch {
			case t.Error == "":
				t.Error = r.Message
			case r.Message != "":
				t.Error += "; terminal: " + r.Message
			}
			t.PosID = r.PosID
		})
	case ReportError:
		if t.State == Sent {
			s.move(ev, func(t *Txn) { t.State = Declined; t.Error = "terminal error: " + r.Message })
			return
		}
		s.move(ev, func(t *Txn) {
			t.State = Unknown
			t.Error = "terminal error: " + r.Message
			t.flag("terminal reported an error mid-payment; the card may have been charged")
		})
	default:
		ev.Disposal = "noted"
		s.move(ev, func(*Txn) {})
	}
}

// inquire asks an Inquirer provider for the payment's outcome and applies
// a final answer. It reports whether the payment is settled.
func (s *Service) inquire() bool {
	inq, ok := s.providers[s.cur.Provider].(Inquirer)
	if !ok {
		return false
	}
	id := s.cur.ID
	r, err := inq.Inquire(s.cur)
	if err != nil {
		s.log.Warn("inquiry failed", "txn_id", id, "err", err)
		return false
	}
	if r.Kind != ReportApproved && r.Kind != ReportDeclined {
		s.log.Info("inquiry: outcome not final yet", "txn_id", id, "status", r.Status)
		return false
	}
	r.TxnID = id
	ev := r.Evidence
	ev.TxnID = id
	s.apply(r, &ev)
	return s.cur == nil || s.cur.ID != id
}

func (s *Service) autoPlan(plans []Plan) string {
	has := func(id string) bool { return slices.ContainsFunc(plans, func(p Plan) bool { return p.ID == id }) }
	switch {
	case s.planPref != "" && has(s.planPref):
		return s.planPref
	case s.cfg.IPPAutoSelect == "single" && len(plans) == 1:
		return plans[0].ID
	case s.cfg.IPPAutoSelect == "first":
		return plans[0].ID
	}
	return ""
}

// approve records a success and, when it is clean, releases the product:
// approved and releasing are journaled in one commit before the relay
// moves, released or failed in the next.
func (s *Service) approve(r Report, ev *Evidence) {
	t := s.cur
	var review string
	switch {
	case r.Odd != "":
		review = "signed success not usable as sent (" + r.Odd + "); customer may have paid"
	case t.Review != "":
		// Flagged earlier (a late or odd message): the journal will not
		// let it vend, and the success must still be recorded.
		review = "success for a payment already flagged for review"
	case r.AmountBad:
		review = "result amount is not a whole number of sen"
	case r.Amount != nil && *r.Amount != t.Amount:
		review = fmt.Sprintf("amount mismatch: requested %s, result says %s", t.Amount, *r.Amount)
	case t.State == CancelRequested && s.cancelBy == byOperator && s.cfg.SuccessAfterCancel == "review":
		review = "success arrived after cancel; not vended by policy"
	case t.State == PlansOffered:
		// A success while we never chose a plan is odd but authentic.
	}
	out, ok := s.move(ev, func(x *Txn) {
		x.State = Approved
		x.POSTransactionID, x.AuthCode, x.CardLast4, x.PosID = r.POSTxnID, r.AuthCode, r.CardLast4, r.PosID
		if r.PlanID != "" {
			x.PlanID = r.PlanID
		}
		x.PaidAmount, x.PaidAmountText = r.Amount, r.AmountText
		if review != "" {
			x.flag(review)
			ev.Disposal = "recorded, not vended: " + review
			return
		}
		x.Vend = VendReleasing
	})
	if !ok || out.Vend != VendReleasing {
		if ok {
			s.log.Warn("approved payment not vended", "txn_id", out.ID, "review", out.Review)
		}
		return
	}
	s.release(out)
}

func (s *Service) release(t Txn) {
	err := errors.New("no vend device")
	if s.vender != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.VendTimeout)
		err = s.vender.Vend(ctx, t)
		cancel()
	}
	out, ok := s.move(nil, func(x *Txn) {
		if err != nil {
			x.Vend = VendFailed
			x.flag("vend failed: " + err.Error() + "; refund may be owed")
			return
		}
		x.Vend = VendReleased
	})
	if err != nil {
		s.log.Error("vend failed", "txn_id", t.ID, "err", err)
	} else {
		s.log.Info("product released", "txn_id", t.ID)
	}
	if !ok {
		// The relay moved but "released" is not on disk: recovery will
		// show vend_unknown, which is the honest record.
		s.cur = nil
		s.disarm()
		s.publish(Event{Kind: "payment", Txn: &out})
	}
	if s.printer != nil {
		s.printer.Receipt(out)
	}
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
