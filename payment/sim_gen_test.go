package payment

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the schedule half of the simulator (sim_test.go runs it):
// what a step is, how a seed turns into a random schedule, how a failing
// schedule is shrunk and printed.

// simStep is one event of a schedule. Payments are named by position, not
// by id, so a schedule keeps its meaning when the shrinker deletes steps:
// Txn 0 is the latest payment created, k the k-th before it, -1 an id the
// kiosk never issued (as is any k beyond the payments created so far).
//
// Ops:
//
//	create  the controller asks for a payment (Prov: "" for mobypay or "kpos", Mode, Amt, Plan: preferred IPP plan)
//	cancel  the controller cancels payment Txn
//	plan    the controller picks IPP plan Plan for payment Txn
//	pos     the POS sends a signed Msg about payment Txn (Odd, Late; N plans for "plans"),
//	        or the KPOS host a notification (simKPOSMsgs)
//	replay  the N-th most recent POS frame arrives again, byte for byte
//	resend  the POS sends the N-th most recent message again, freshly signed
//	up      the POS connects (a new session)
//	down    the POS link drops
//	flap    the link drops and comes back N times, every D (down for D/2)
//	sleep   time passes (D)
//	crash   power cut between two events, then a restart (recovery)
//	fault   arm Fault for the next send or vend (see simFaults)
//	vended  the vending machine reports Msg ("released", "failed" or
//	        "unknown") for payment Txn through VendDone (async mode)
type simStep struct {
	Op    string
	Txn   int
	Prov  string
	Mode  string
	Amt   Sen
	Plan  string
	Msg   string
	Odd   string
	Late  bool
	N     int
	D     time.Duration
	Fault string
}

// What the POS can say.
var simMsgs = []string{
	"ack_processing", "ack_received", "ack_plan_received", "ack_other",
	"success", "approved", "success_mismatch", "success_noamount", "success_fraction",
	"failed", "plans", "error", "other",
}

// How a signed message can be odd. Each applies to the messages that carry
// the field it bends (simOddFits).
var simOdds = []string{
	"no_nonce", "extra_field",
	"amount_string", "amount_nan", "amount_inf", "amount_neg",
	"plans_object", "postxn_object", "status_upper",
}

// Faults armed for the next kiosk frame sent or the next relay pulse.
var simFaults = []string{
	"crash_before_send", // power cut before the frame leaves
	"crash_after_send",  // the POS got the frame, then the power cut
	"send_lost",         // the session died under the write: not delivered, link down
	"send_error",        // the write failed after the POS got it, link down
	"crash_before_pulse",
	"crash_after_pulse",
	"vend_error",        // the relay did not move and says so
	"vend_error_pulsed", // the relay moved but reported a failure
	"inquiry_error",     // the next KPOS inquiry gets no answer
}

// simTrainFaults are armed too on a seed in pulses mode: the power goes
// inside the train's middle pulse, before its count is journaled
// ("crash_mid_train") or just after ("crash_train_reported").
var simTrainFaults = []string{"crash_mid_train", "crash_train_reported"}

// simAsyncFaults are armed too on a seed in async mode, for the next
// StartVend: the machine refuses the vend ("start_refused"), or the power
// goes before it is told ("crash_before_start") or once it is dispensing,
// before StartVend returns ("crash_in_start").
var simAsyncFaults = []string{"start_refused", "crash_before_start", "crash_in_start"}

// simVendOutcomes are what a vending machine can report (a "vended" step's
// Msg), by the VendOutcome.Vend they stand for.
var simVendOutcomes = map[string]Vend{"released": VendReleased, "failed": VendFailed, "unknown": VendUnknown}

// simMaxPulses bounds a train in pulses mode: short trains reach every
// pulse boundary often.
const simMaxPulses = 5

var simModes = []string{"card", "bnpl", "duitnow_qr", "ipp"}

var simPlanIDs = []string{"pay-in-full", "ipp-3m", "ipp-6m"}

func simHasAmount(msg string) bool {
	switch msg {
	case "success", "approved", "success_mismatch", "success_fraction", "failed", "plans":
		return true
	}
	return false
}

func simIsResult(msg string) bool {
	return strings.HasPrefix(msg, "success") || msg == "approved" || msg == "failed" || msg == "plans"
}

func simOddFits(odd, msg string) bool {
	switch odd {
	case "", "no_nonce", "extra_field":
		return true
	case "amount_string", "amount_nan", "amount_inf", "amount_neg":
		return simHasAmount(msg)
	case "plans_object":
		return msg == "plans"
	case "postxn_object":
		return strings.HasPrefix(msg, "success") || msg == "approved"
	case "status_upper":
		return strings.HasPrefix(msg, "ack_") || simIsResult(msg)
	}
	return false
}

// simConfig is the service configuration of one seed: the same timeouts
// for every mode.
type simConfig struct {
	Ack, Result, Plan, Grace, Reconnect time.Duration
	Auto, AfterCancel                   string
	Pulse                               Sen // pulses mode's pulse value; 0: one pulse a vend
	// Async is async mode's vend deadline (Config.AsyncVendTimeout): every
	// payment is vended by a machine that reports later (MDB). 0: the relay.
	Async time.Duration
}

func (c simConfig) service() Config {
	tm := Timeouts{Ack: c.Ack, Result: c.Result, Plan: c.Plan}
	to := map[string]Timeouts{}
	for _, m := range simModes {
		to[m] = tm
	}
	cfg := Config{Timeouts: to, CancelGrace: c.Grace, ReconnectGrace: c.Reconnect,
		IPPAutoSelect: IPPAutoSelect(c.Auto), SuccessAfterCancel: SuccessAfterCancel(c.AfterCancel)}
	if c.Pulse > 0 {
		cfg.PulseValue, cfg.MaxPulses = c.Pulse, simMaxPulses
	}
	if c.Async > 0 {
		cfg.AsyncVendTimeout = c.Async
	}
	return cfg
}

// deadline is how long a payment of mode may stay open at most: the ack,
// result and plan timeouts, the cancel grace and one reconnect grace; IPP
// has a second result wait (for the plans, then for the result after the
// selection).
func (c simConfig) deadline(mode string) time.Duration {
	d := c.Ack + c.Result + c.Plan + c.Grace + c.Reconnect
	if mode == "ipp" {
		d += c.Result
	}
	return d
}

func (c simConfig) String() string {
	pulse := ""
	if c.Pulse > 0 {
		pulse = fmt.Sprintf(", Pulse: %d", c.Pulse)
	}
	if c.Async > 0 {
		pulse += ", Async: " + simDur(c.Async)
	}
	return fmt.Sprintf("simConfig{Ack: %s, Result: %s, Plan: %s, Grace: %s, Reconnect: %s, Auto: %q, AfterCancel: %q%s}",
		simDur(c.Ack), simDur(c.Result), simDur(c.Plan), simDur(c.Grace), simDur(c.Reconnect), c.Auto, c.AfterCancel, pulse)
}

func simRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func simConfigFor(seed uint64) simConfig {
	r := simRand(seed ^ 0xc0f1)
	pick := func(a, b time.Duration) time.Duration { return []time.Duration{a, b}[r.IntN(2)] }
	c := simConfig{
		Ack: pick(5*time.Second, 15*time.Second), Result: pick(30*time.Second, 2*time.Minute),
		Plan: pick(20*time.Second, time.Minute), Grace: pick(10*time.Second, 30*time.Second),
		Reconnect:   pick(10*time.Second, 30*time.Second),
		Auto:        []string{"none", "single", "first"}[r.IntN(3)],
		AfterCancel: []string{"vend", "review"}[r.IntN(2)],
		// Drawn last, so that every other choice of a seed is what it
		// was before pulses mode: one seed in four is a coin-op kiosk.
		Pulse: []Sen{0, 0, 0, 100}[r.IntN(4)],
	}
	// Drawn after everything else for the same reason: one seed in four
	// of the others sells through a vending machine (async mode). A
	// coin-op seed keeps its relay: a pulse train is not an MDB vend.
	if async := []time.Duration{0, 0, 0, 40 * time.Second, 0, 0, 0, 90 * time.Second}[r.IntN(8)]; c.Pulse == 0 {
		c.Async = async
	}
	return c
}

// simGen turns a seed into a schedule. It does not model the service: it
// tells stories (a payment from request to result, with noise between the
// steps) and mixes in random single steps, so that deep states are reached
// often and everything else still happens.
type simGen struct {
	r   *rand.Rand
	cfg simConfig
	on  func(odd string) bool // odd variants this run may use
	out []simStep
}

func simGenerate(seed uint64, n int, cfg simConfig, on func(string) bool) []simStep {
	g := &simGen{r: simRand(seed), cfg: cfg, on: on}
	g.out = append(g.out, simStep{Op: "up"})
	for len(g.out) < n {
		switch x := g.r.Float64(); {
		case x < 0.45:
			g.story()
		case x < 0.6:
			g.kposStory()
		default:
			g.random()
		}
	}
	return g.out[:n]
}

func (g *simGen) chance(p float64) bool { return g.r.Float64() < p }

func (g *simGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// emit adds a step, sometimes after a random one.
func (g *simGen) emit(s simStep) {
	if g.chance(0.15) {
		g.random()
	}
	g.out = append(g.out, s)
}

func (g *simGen) amount() Sen {
	// In pulses mode mostly whole trains; the rest is refused at creation.
	if g.cfg.Pulse > 0 && g.chance(0.85) {
		return g.cfg.Pulse * Sen(1+g.r.IntN(simMaxPulses))
	}
	switch g.r.IntN(4) {
	case 0:
		return Sen(1 + g.r.IntN(99))
	case 1:
		return Sen(100 * (1 + g.r.IntN(50)))
	}
	return Sen(1 + g.r.IntN(100_000))
}

func (g *simGen) dur(max time.Duration) time.Duration {
	return time.Duration(g.r.Int64N(int64(max)/int64(time.Millisecond)+1)) * time.Millisecond
}

// pause lets time pass between the steps of a story: mostly a moment,
// sometimes long enough for a timeout.
func (g *simGen) pause() {
	switch x := g.r.Float64(); {
	case x < 0.55:
		g.emit(simStep{Op: "sleep", D: g.dur(2 * time.Second)})
	case x < 0.8:
	case x < 0.93:
		g.emit(simStep{Op: "sleep", D: g.dur(g.cfg.Ack + time.Second)})
	default:
		g.emit(simStep{Op: "sleep", D: g.dur(g.cfg.Result + g.cfg.Grace)})
	}
}

// longSleep may cross any timeout.
func (g *simGen) longSleep() simStep {
	switch g.r.IntN(4) {
	case 0:
		return simStep{Op: "sleep", D: g.dur(time.Second)}
	case 1:
		return simStep{Op: "sleep", D: g.dur(g.cfg.Ack * 2)}
	case 2:
		return simStep{Op: "sleep", D: g.dur(g.cfg.Result + g.cfg.Grace)}
	}
	return simStep{Op: "sleep", D: g.dur(3*g.cfg.Result + g.cfg.Plan + g.cfg.Grace + g.cfg.Reconnect)}
}

func (g *simGen) odd(msg string) string {
	if !g.chance(0.2) {
		return ""
	}
	var fit []string
	for _, o := range simOdds {
		if simOddFits(o, msg) && g.on(o) {
			fit = append(fit, o)
		}
	}
	if len(fit) == 0 {
		return ""
	}
	return g.pick(fit)
}

func (g *simGen) pos(txn int, msg string) simStep {
	if simIsKPOS(msg) {
		return simStep{Op: "pos", Txn: txn, Msg: msg}
	}
	s := simStep{Op: "pos", Txn: txn, Msg: msg, Odd: g.odd(msg), Late: g.chance(0.06)}
	if msg == "plans" {
		s.N = 1 + g.r.IntN(len(simPlanIDs))
	}
	return s
}

func (g *simGen) result() string {
	switch x := g.r.IntN(100); {
	case x < 40:
		return "success"
	case x < 50:
		return "approved"
	case x < 57:
		return "success_mismatch"
	case x < 62:
		return "success_noamount"
	case x < 66:
		return "success_fraction"
	case x < 82:
		return "failed"
	case x < 90:
		return "error"
	}
	return "other"
}

func (g *simGen) planID() string {
	if g.chance(0.1) {
		return "no-such-plan"
	}
	return g.pick(simPlanIDs)
}

// flap: a link that comes back every few seconds and drops again.
func (g *simGen) flap() simStep {
	return simStep{Op: "flap", N: 2 + g.r.IntN(40), D: 500*time.Millisecond + g.dur(5*time.Second)}
}

// story: one payment from request to result, as a POS would run it, with
// the usual things going wrong now and then.
func (g *simGen) story() {
	mode := g.pick(simModes)
	cr := simStep{Op: "create", Mode: mode, Amt: g.amount()}
	if mode == "ipp" && g.chance(0.3) {
		cr.Plan = g.planID()
	}
	g.emit(cr)
	g.pause()
	if g.chance(0.85) {
		g.emit(g.pos(0, "ack_processing"))
		g.pause()
	}
	if mode == "ipp" && g.chance(0.8) {
		g.emit(g.pos(0, "plans"))
		g.pause()
		if g.chance(0.7) {
			g.emit(simStep{Op: "plan", Plan: g.planID()})
			g.pause()
		}
		if g.chance(0.8) {
			g.emit(g.pos(0, "ack_plan_received"))
			g.pause()
		}
		// A POS that repeats its ack while the customer takes their time.
		for g.chance(0.1) {
			g.emit(simStep{Op: "sleep", D: g.cfg.Result - time.Second})
			g.emit(g.pos(0, "ack_plan_received"))
		}
	}
	if g.chance(0.1) {
		g.emit(g.flap())
	}
	if g.chance(0.12) {
		g.emit(simStep{Op: "cancel"})
		g.pause()
		if g.chance(0.6) {
			g.emit(g.pos(0, "ack_received"))
			g.pause()
		}
	}
	g.startFault()
	if g.chance(0.9) {
		g.emit(g.pos(0, g.result()))
	}
	if g.chance(0.2) {
		g.emit(simStep{Op: []string{"replay", "resend"}[g.r.IntN(2)], N: g.r.IntN(3)})
	}
	g.machine()
	g.pause()
}

// startFault, in async mode, sometimes arms a fault for the StartVend the
// coming result may cause. Like every draw for async mode, it draws
// nothing on other seeds.
func (g *simGen) startFault() {
	if g.cfg.Async > 0 && g.chance(0.1) {
		g.emit(simStep{Op: "fault", Fault: g.pick(simAsyncFaults)})
	}
}

// machine, in async mode, is the vending machine's part of a story after
// the result: mostly its outcome for the latest payment after a moment,
// sometimes only after the power went mid-vend or when the vend deadline
// is reached or past (a late report, or one a nanosecond before it),
// sometimes never, sometimes twice.
func (g *simGen) machine() {
	if g.cfg.Async == 0 {
		return
	}
	switch x := g.r.Float64(); {
	case x < 0.1:
		g.emit(simStep{Op: "crash"})
		if g.chance(0.8) {
			g.out = append(g.out, simStep{Op: "up"})
		}
	case x < 0.18:
		g.emit(simStep{Op: "sleep", D: g.cfg.Async + g.dur(10*time.Second)})
	case x < 0.26:
		// The deadline exactly, or a millisecond short of it (when no
		// other step came between the result and this one).
		g.emit(simStep{Op: "sleep", D: g.cfg.Async - time.Duration(g.r.IntN(2))*time.Millisecond})
	default:
		g.emit(simStep{Op: "sleep", D: g.dur(g.cfg.Async / 2)})
	}
	if g.chance(0.85) {
		g.emit(simStep{Op: "vended", Msg: g.outcome()})
		if g.chance(0.1) {
			g.emit(simStep{Op: "vended", Msg: g.outcome()})
		}
	}
}

func (g *simGen) outcome() string {
	switch x := g.r.IntN(100); {
	case x < 70:
		return "released"
	case x < 85:
		return "failed"
	}
	return "unknown"
}

// kposStory: one KPOS payment: the host takes the submit (its answer is
// the ack), then notifies, or the notification is lost and only an
// inquiry at a timeout learns the outcome.
func (g *simGen) kposStory() {
	g.emit(simStep{Op: "create", Prov: "kpos", Mode: g.pick([]string{"card", "duitnow_qr", "bnpl"}), Amt: g.amount()})
	g.pause()
	if g.chance(0.1) {
		g.emit(simStep{Op: "cancel"})
		g.pause()
	}
	g.startFault()
	if g.chance(0.9) {
		g.emit(g.pos(0, g.kposResult()))
		if g.chance(0.25) {
			g.emit(simStep{Op: "replay"})
		}
	}
	g.machine()
	if g.chance(0.3) {
		g.emit(g.longSleep())
	}
	g.pause()
}

func (g *simGen) kposResult() string {
	switch x := g.r.IntN(100); {
	case x < 40:
		return "kpos_ok"
	case x < 55:
		return "kpos_declined"
	case x < 65:
		return "kpos_pending"
	case x < 75:
		return "kpos_serial_ok"
	case x < 80:
		return "kpos_serial_mismatch"
	case x < 92:
		return "kpos_lost_ok"
	}
	return "kpos_lost_declined"
}

// random: one step of any kind.
func (g *simGen) random() {
	txn := 0
	switch x := g.r.IntN(10); {
	case x == 0:
		txn = -1
	case x < 3:
		txn = 1 + g.r.IntN(3)
	}
	switch x := g.r.IntN(100); {
	case x < 25:
		g.out = append(g.out, g.pos(txn, g.pick(simMsgs)))
	case x < 30:
		g.out = append(g.out, g.pos(txn, g.pick(simKPOSMsgs)))
	case x < 48:
		g.out = append(g.out, g.longSleep())
	case x < 54:
		s := simStep{Op: "create", Mode: g.pick(simModes), Amt: g.amount()}
		if g.chance(0.3) {
			s.Prov = "kpos"
		}
		g.out = append(g.out, s)
	case x < 59:
		g.out = append(g.out, simStep{Op: "cancel", Txn: txn})
	case x < 63:
		g.out = append(g.out, simStep{Op: "plan", Txn: txn, Plan: g.planID()})
	case x < 68:
		g.out = append(g.out, simStep{Op: "replay", N: g.r.IntN(4)})
	case x < 72:
		g.out = append(g.out, simStep{Op: "resend", N: g.r.IntN(4)})
	case x < 78:
		g.out = append(g.out, simStep{Op: "down"})
		if g.chance(0.7) {
			g.out = append(g.out, simStep{Op: "sleep", D: g.dur(g.cfg.Reconnect * 3 / 2)}, simStep{Op: "up"})
		}
	case x < 82:
		g.out = append(g.out, g.flap())
	case x < 84:
		g.out = append(g.out, simStep{Op: "up"})
	case x < 90:
		g.out = append(g.out, simStep{Op: "crash"})
		if g.chance(0.8) {
			g.out = append(g.out, simStep{Op: "up"})
		}
	default:
		if g.cfg.Async > 0 && g.chance(0.3) {
			// A machine's report out of the blue: about a payment it is
			// not dispensing, or one settled already.
			g.out = append(g.out, simStep{Op: "vended", Txn: txn, Msg: g.outcome()})
			return
		}
		faults := simFaults
		if g.cfg.Pulse > 0 {
			faults = append(slices.Clip(faults), simTrainFaults...)
		}
		if g.cfg.Async > 0 {
			faults = append(slices.Clip(faults), simAsyncFaults...)
		}
		g.out = append(g.out, simStep{Op: "fault", Fault: g.pick(faults)})
	}
}

// String writes the step as a Go composite literal, for pasting into a
// regression test.
func (s simStep) String() string {
	var b strings.Builder
	b.WriteString("{Op: " + strconv.Quote(s.Op))
	if s.Txn != 0 {
		fmt.Fprintf(&b, ", Txn: %d", s.Txn)
	}
	if s.Prov != "" {
		fmt.Fprintf(&b, ", Prov: %q", s.Prov)
	}
	if s.Mode != "" {
		fmt.Fprintf(&b, ", Mode: %q", s.Mode)
	}
	if s.Amt != 0 {
		fmt.Fprintf(&b, ", Amt: %d", s.Amt)
	}
	if s.Plan != "" {
		fmt.Fprintf(&b, ", Plan: %q", s.Plan)
	}
	if s.Msg != "" {
		fmt.Fprintf(&b, ", Msg: %q", s.Msg)
	}
	if s.Odd != "" {
		fmt.Fprintf(&b, ", Odd: %q", s.Odd)
	}
	if s.Late {
		b.WriteString(", Late: true")
	}
	if s.N != 0 {
		fmt.Fprintf(&b, ", N: %d", s.N)
	}
	if s.D != 0 {
		fmt.Fprintf(&b, ", D: %s", simDur(s.D))
	}
	if s.Fault != "" {
		fmt.Fprintf(&b, ", Fault: %q", s.Fault)
	}
	return b.String() + "}"
}

// simDur writes d as a Go expression.
func simDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d * time.Minute", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	}
	return fmt.Sprintf("%d * time.Millisecond", d/time.Millisecond)
}

func simFormat(steps []simStep) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("\t" + s.String() + ",\n")
	}
	return b.String()
}

// simShrink returns a shorter schedule that still fails: it deletes chunks
// (halves, quarters, … single steps) while the failure persists, then
// tries to simplify the steps that are left (no oddity, not late, shorter
// sleeps). fails runs a candidate.
func simShrink(steps []simStep, fails func([]simStep) bool) []simStep {
	steps = slices.Clone(steps)
	for changed := true; changed; {
		changed = false
		for size := max(len(steps)/2, 1); size >= 1; size /= 2 {
			for i := 0; i+size <= len(steps); {
				cand := slices.Concat(steps[:i], steps[i+size:])
				if fails(cand) {
					steps, changed = cand, true
					continue
				}
				i += size
			}
		}
	}
	for i := range steps {
		for simplified := true; simplified; {
			simplified = false
			for _, simpler := range simSimpler(steps[i]) {
				cand := slices.Clone(steps)
				cand[i] = simpler
				if fails(cand) {
					steps, simplified = cand, true
					break
				}
			}
		}
	}
	return steps
}

// simSimpler lists simpler variants of s, the most drastic first.
func simSimpler(s simStep) []simStep {
	var out []simStep
	if s.Odd != "" {
		c := s
		c.Odd = ""
		out = append(out, c)
	}
	if s.Late {
		c := s
		c.Late = false
		out = append(out, c)
	}
	if s.Op == "sleep" {
		for _, d := range []time.Duration{time.Second, s.D / 4, s.D / 2} {
			if d = d.Round(time.Millisecond); d > 0 && d < s.D {
				c := s
				c.D = d
				out = append(out, c)
			}
		}
	}
	if s.Txn != 0 {
		c := s
		c.Txn = 0
		out = append(out, c)
	}
	return out
}
