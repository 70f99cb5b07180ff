package payment

import (
	"path/filepath"
	"testing"
	"time"
)

// Regression tests from the simulator: each is a minimal schedule that
// breaks an invariant on the code this was written against, replayed with
// every check on. They are skipped until the lead's fix for issue 9 lands;
// unskip one with its fix, and delete its keys from simPending so that
// TestSim generates and checks it on every run.

// simReplay runs one literal schedule with every check on and a trace of
// each step in the test log.
func simReplay(t *testing.T, cfg simConfig, steps []simStep) {
	t.Helper()
	if v := simRun(t, filepath.Join(t.TempDir(), "j.db"), cfg, steps, simOptions{all: true, trace: true}); v != nil {
		t.Errorf("%s\nconfig: %s\nschedule:\n%s", v, cfg, simFormat(steps))
	}
}

// simRegressConfig is the configuration of the first seed, where most of
// these were found.
var simRegressConfig = simConfig{Ack: 5 * time.Second, Result: 2 * time.Minute, Plan: time.Minute,
	Grace: 30 * time.Second, Reconnect: 10 * time.Second, Auto: "first", AfterCancel: "vend"}

// Defect 1: a signed success for -0.41 is journaled as paid_amount "-0.41",
// which the journal cannot read back: List fails, and so would Recover.
// Found as seed 5 with -sim.enable=amount_neg.
func TestSimRegressNegativeAmount(t *testing.T) {
	simReplay(t, simRegressConfig, []simStep{
		{Op: "up"},
		{Op: "create", Mode: "card", Amt: 41},
		{Op: "pos", Msg: "success", Odd: "amount_neg"},
	})
}

// Defect 2: correctly signed messages that today's decoder or report
// mapping cannot use. Each is lost before the journal (Open or Decode
// fails: "every signed message journaled") or, for "SUCCESS", journaled as
// a message of no kind and never flagged ("every success vended or
// flagged"); the payment later times out with no review flag. Found as
// seed 1 (seed 8 for plans_object, seed 5 for status_upper) with
// -sim.enable=<variant>.
func TestSimRegressOddSignedMessages(t *testing.T) {
	for _, c := range []struct {
		odd, msg, mode string
	}{
		{"amount_string", "success", "card"},
		{"amount_nan", "success", "card"},
		{"amount_inf", "success", "card"},
		{"postxn_object", "success_noamount", "card"},
		{"status_upper", "success", "card"},
		{"plans_object", "plans", "ipp"},
	} {
		t.Run(c.odd, func(t *testing.T) {
			simReplay(t, simRegressConfig, []simStep{
				{Op: "up"},
				{Op: "create", Mode: c.mode, Amt: 15114},
				{Op: "pos", Msg: c.msg, Odd: c.odd, N: 1},
				// Past every timeout: the payment must end, and a success
				// must be on record as flagged.
				{Op: "sleep", D: 10 * time.Minute},
			})
		})
	}
}

// Not in the list: a payment flagged by a message it could not act
// on (a result without a nonce, or with a stale timestamp, journaled "not
// acted on" and flagged) can no longer be approved. The next, clean
// success makes approve journal approved+releasing with the earlier review
// flag still set; checkMove refuses that commit, so the success's evidence
// is rolled back with it: the success is not journaled, the payment is not
// approved, vended or flagged for it, and later times out. A POS whose
// clock is off by a minute, then right, loses a paid outcome this way.
// Found as seed 1 with -sim.enable=late_result.
func TestSimRegressSuccessAfterFlag(t *testing.T) {
	t.Run("no_nonce", func(t *testing.T) {
		simReplay(t, simRegressConfig, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "card", Amt: 15114},
			{Op: "pos", Msg: "success_noamount", Odd: "no_nonce"},
			{Op: "pos", Msg: "success"},
		})
	})
	t.Run("stale", func(t *testing.T) {
		simReplay(t, simRegressConfig, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "card", Amt: 1250},
			{Op: "pos", Msg: "ack_processing"},
			{Op: "pos", Msg: "success", Late: true},
			{Op: "pos", Msg: "success"},
		})
	})
}

// Defect 5: deadlines are not absolute. Each drop re-arms the reconnect
// grace, so a link that flaps keeps the payment open for as long as it
// flaps; each plan_received ack re-arms the result timer, so a POS that
// repeats it keeps an IPP payment open for as long as it repeats it.
// Either blocks every other sale (409). The deadline checked is the sum of
// every stage's timeout, the cancel grace and one reconnect grace (two
// result waits for IPP): simConfig.deadline.
func TestSimRegressDeadline(t *testing.T) {
	// Found as seed 4 with -sim.enable=check:deadline (its first step, a
	// message that makes the POS connect, written here as "up").
	t.Run("flapping", func(t *testing.T) {
		simReplay(t, simConfig{Ack: 15 * time.Second, Result: 30 * time.Second, Plan: 20 * time.Second, Grace: 30 * time.Second,
			Reconnect: 10 * time.Second, Auto: "single", AfterCancel: "vend"}, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "ipp", Amt: 23501, Plan: "ipp-6m"},
			{Op: "flap", N: 32, D: 5035 * time.Millisecond},
		})
	})
	// The link that drops every 2 s, for five minutes, with the
	// default timeouts: the deadline is 4m15s.
	t.Run("flapping_defaults", func(t *testing.T) {
		simReplay(t, simConfig{Ack: 15 * time.Second, Result: 2 * time.Minute, Plan: time.Minute, Grace: 30 * time.Second,
			Reconnect: 30 * time.Second, Auto: "none", AfterCancel: "vend"}, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "card", Amt: 100},
			{Op: "pos", Msg: "ack_processing"},
			{Op: "flap", N: 150, D: 2 * time.Second},
		})
	})
	// Seen as seed 1544 in the default run before the deadline check
	// learned where defect 5 strikes: a card payment takes the plans the
	// POS offers just before its result timeout, and the selection arms a
	// second result wait on top of its deadline.
	t.Run("plans_for_card", func(t *testing.T) {
		simReplay(t, simConfig{Ack: 15 * time.Second, Result: 2 * time.Minute, Plan: 20 * time.Second, Grace: 30 * time.Second,
			Reconnect: 30 * time.Second, Auto: "first", AfterCancel: "review"}, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "card", Amt: 34657},
			{Op: "pos", Msg: "ack_processing"},
			{Op: "sleep", D: 119 * time.Second},
			{Op: "pos", Msg: "plans", N: 1},
			{Op: "sleep", D: 119 * time.Second},
		})
	})
	t.Run("plan_received", func(t *testing.T) {
		steps := []simStep{
			{Op: "up"},
			{Op: "create", Mode: "ipp", Amt: 10000},
			{Op: "pos", Msg: "ack_processing"},
			{Op: "pos", Msg: "plans", N: 2},
			{Op: "plan", Plan: "ipp-3m"},
		}
		for range 6 {
			steps = append(steps, simStep{Op: "pos", Msg: "ack_plan_received"}, simStep{Op: "sleep", D: 110 * time.Second})
		}
		simReplay(t, simConfig{Ack: 15 * time.Second, Result: 2 * time.Minute, Plan: time.Minute, Grace: 30 * time.Second,
			Reconnect: 30 * time.Second, Auto: "none", AfterCancel: "vend"}, steps)
	})
}

// Defect 8: the replay guard starts empty at every restart, so a
// byte-identical replay of a success that arrives within the window after
// a restart is acted on again (here: journaled a second time). The fix
// persists nonces; fill in simSeedGuard (sim_test.go) to load them into
// the guard the way kioskd does, then unskip.
func TestSimRegressReplayAcrossRestart(t *testing.T) {
	simReplay(t, simRegressConfig, []simStep{
		{Op: "up"},
		{Op: "create", Mode: "card", Amt: 500},
		{Op: "pos", Msg: "ack_processing"},
		{Op: "pos", Msg: "success"},
		{Op: "sleep", D: 20 * time.Second},
		{Op: "crash"},
		{Op: "up"},
		{Op: "replay"},
	})
}

// Not in the list, and a question more than a defect: a report is
// applied to whatever payment its txn_id names, whichever provider sent
// it. A MobyPay success with the id of a KPOS payment (ids are epoch
// milliseconds, easy to guess) vends it, and a KPOS notification with the
// mrn of a MobyPay payment does the same; the provider that was asked
// never answered. Reports from another provider should be kept as
// evidence and flagged, not acted on. Found as seed 2 with
// -sim.enable=cross_provider.
func TestSimRegressCrossProvider(t *testing.T) {
	t.Run("mobypay_for_kpos", func(t *testing.T) {
		simReplay(t, simRegressConfig, []simStep{
			{Op: "create", Prov: "kpos", Mode: "bnpl", Amt: 50044},
			{Op: "pos", Msg: "success"},
		})
	})
	t.Run("kpos_for_mobypay", func(t *testing.T) {
		simReplay(t, simRegressConfig, []simStep{
			{Op: "up"},
			{Op: "create", Mode: "card", Amt: 1250},
			{Op: "pos", Msg: "kpos_ok"},
		})
	})
}

// Not in the list: the inquiry is the service's last look before
// it gives a KPOS payment up, and when it fails the payment ends
// cancelled or timed_out with no review flag, even though the host
// refused the abort (Cancel's error is only logged) and may well have
// approved it: here the customer paid, the notification was lost, and
// both inquiries timed out. Whatever ends without the host's word should
// be flagged. Found as seed 1368 with -sim.enable=inquiry_gives_up.
func TestSimRegressInquiryGivesUp(t *testing.T) {
	cfg := simConfig{Ack: 5 * time.Second, Result: 2 * time.Minute, Plan: 20 * time.Second, Grace: 10 * time.Second,
		Reconnect: 30 * time.Second, Auto: "first", AfterCancel: "review"}
	t.Run("cancelled", func(t *testing.T) {
		simReplay(t, cfg, []simStep{
			{Op: "fault", Fault: "inquiry_error"},
			{Op: "create", Prov: "kpos", Mode: "duitnow_qr", Amt: 14763},
			{Op: "pos", Msg: "kpos_lost_ok"},
			{Op: "cancel"},
			{Op: "sleep", D: 17354 * time.Millisecond},
		})
	})
	t.Run("timed_out", func(t *testing.T) {
		simReplay(t, cfg, []simStep{
			{Op: "create", Prov: "kpos", Mode: "card", Amt: 500},
			{Op: "pos", Msg: "kpos_lost_ok"},
			{Op: "fault", Fault: "inquiry_error"},
			{Op: "sleep", D: 2*time.Minute + time.Second},
			{Op: "fault", Fault: "inquiry_error"},
			{Op: "sleep", D: 11 * time.Second},
		})
	})
}
