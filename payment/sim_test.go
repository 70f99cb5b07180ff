package payment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// A deterministic simulation of the payment core (issue 9), after
// TigerBeetle's VOPR and FoundationDB's simulation testing.
//
// Each seed becomes a random schedule (sim_gen_test.go) that runs inside a
// testing/synctest bubble: the service's timers run on the bubble's fake
// clock, time passes only in "sleep" steps, and after every injected event
// synctest.Wait lets the service loop finish with it before the next one,
// so only one of the loop's select cases is ever ready and a schedule
// always runs the same way. What is real: the Service, the MobyPay
// provider and its report mapping, the mobypay codec on both sides (the
// POS signs every payload it sends, the kiosk verifies and decodes it and
// the replay guard judges it, as mobypay.Server.handle does) and the
// journal, a real bbolt file, written with NoSync so that thousands of
// seeds run in seconds: the simulation cuts the power itself, between
// bbolt transactions, and a commit that returned is on disk, as fsync
// makes it on the kiosk. What is simulated: the TCP session (a Sender that
// hands kiosk frames to the POS), the relay and the printer.
//
// A crash stops the service, closes the journal and opens it again, runs
// Recover and starts a new Service and provider, as a restart of kioskd
// does. A crash can also strike inside an event (a "fault" step): the
// journal is closed under the service at its next send or relay pulse, so
// that event's later commits fail as they would after a power cut.
//
// After every step the invariants are checked against the journal (check):
// at most one pulse per payment; no pulse without a journaled clean
// success from the payment's own provider (and none against the
// after-cancel review policy); every signed message about a known payment
// journaled as evidence (KPOS and late repeats excepted); every success vended or
// flagged, including one the KPOS host approved whose notification was
// lost; what the kiosk cannot be sure of (unknown, vend failed or
// unknown, approved but not vended, link lost without a result) flagged;
// the journal readable; states only forward; one payment at a time and
// Current() agreeing; each kiosk frame sent only after the journal says
// so; no payment open past its absolute deadline; the outbox numbered
// without a gap, each payment's last record its journaled state. On a
// seed in async mode every payment is vended by a simulated vending
// machine instead of the relay, with checks of its own (sim_async_test.go).
// A failing seed
// is shrunk to a minimal schedule and printed as Go literals; run one seed
// again with
//
//	go test ./payment -run 'TestSim$' -sim.seed=N -v
//
// and more seeds with `make sim SEEDS=N`. What today's code is known to
// get wrong is held back (simPending) and turned on with -sim.all or
// -sim.enable=key,...; sim_regress_test.go has a skipped regression test
// for each.

var (
	simSeedsFlag = flag.Int("sim.seeds", 0, "seeds TestSim runs (0: the default, fewer with -short)")
	simSeedFlag  = flag.Int64("sim.seed", -1, "run only this seed, tracing every step")
	simFirstFlag = flag.Uint64("sim.first", 1, "first seed TestSim runs")
	simStepsFlag = flag.Int("sim.steps", 60, "steps per seed")
	simAllFlag   = flag.Bool("sim.all", false, "also generate and check what simPending holds back")
	simEnable    = flag.String("sim.enable", "", "comma-separated simPending keys to generate and check")
	simEach      = flag.Int("sim.each", 0, "keep going after a failing seed: report the first of each kind of failure, up to this many kinds")
)

// simDefaultSeeds is what `go test` runs by default: about 20 s with
// -race on two cores, 8 s without (see the seeds/s line TestSim logs).
// -short runs a tenth.
func simDefaultSeeds() int {
	if simRace {
		return 1000
	}
	return 3000
}

// simPending holds back what today's code is known to get wrong (issue 9),
// so that TestSim guards everything else in every `make test`. -sim.all
// turns all of it on. Once a fix lands, delete its entry here and unskip
// its test in sim_regress_test.go.
var simPending = map[string]string{}

// simSeedGuard fills a fresh replay guard at a (re)start from what the
// journal kept, as kioskd does with ServerConfig.Seen.
func simSeedGuard(j *Journal, now time.Time, g *mobypay.ReplayGuard) {
	m, err := j.Nonces(now)
	if err != nil {
		panic(err)
	}
	for n, forget := range m {
		g.Remember(n, forget)
	}
}

const (
	simSecret  = "sim-secret"
	simKiosk   = "KIOSK-SIM"
	simPOSPeer = "127.0.0.1:40001"
	simUnknown = "TXN1" // no payment ever gets this id: ids are epoch milliseconds
)

// simErrNoNonce is the reason the server gives Late for a signed message
// without a nonce.
var simErrNoNonce = mobypay.ErrNoNonce

type simOptions struct {
	all    bool      // everything simPending holds back
	enable []string  // these simPending keys
	trace  bool      // log every step
	stats  *simStats // if set, what the run covered is added to it
	digest *[]byte   // if set, receives a digest of the run: what happened and the journal
}

// simStats is what a set of runs exercised, to show that the schedules
// reach what the invariants are about.
type simStats struct {
	mu                               sync.Mutex
	runs, steps, payments, flagged   int
	restarts, cuts, pulses, receipts int
	trains                           int // vends in pulses mode
	starts, reports                  int // async mode: vends started, machine reports
	reportFates                      map[string]int
	outcomes, frames                 map[string]int
}

func (s *simStats) add(w *simWorld, steps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outcomes == nil {
		s.outcomes, s.frames, s.reportFates = map[string]int{}, map[string]int{}, map[string]int{}
	}
	s.runs++
	s.steps += steps
	s.restarts += w.restarts
	s.cuts += w.cuts
	for _, n := range w.pulses {
		s.pulses += n
	}
	for _, n := range w.receipts {
		s.receipts += n
	}
	s.trains += len(w.trains)
	s.starts += len(w.machines)
	for k, n := range w.reports {
		s.reports += n
		s.reportFates[k] += n
	}
	for k, n := range w.fates {
		s.frames[k] += n
	}
	list, _ := w.records()
	for _, t := range list {
		s.payments++
		s.outcomes[string(t.State)+"/"+string(t.Vend)]++
		if t.Review != "" {
			s.flagged++
		}
	}
}

func (s *simStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d runs, %d steps, %d payments (%d flagged): %s; POS frames: %s; %d restarts, %d of them power cuts inside an event; %d pulses (%d coin-pulse trains), %d receipts; %d async vends started, %d machine reports: %s",
		s.runs, s.steps, s.payments, s.flagged, simCounts(s.outcomes), simCounts(s.frames), s.restarts, s.cuts, s.pulses, s.trains, s.receipts,
		s.starts, s.reports, simCounts(s.reportFates))
}

func simCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []string
	for _, k := range keys {
		b = append(b, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(b, ", ")
}

func simFlags(t *testing.T) simOptions {
	o := simOptions{all: *simAllFlag}
	if *simEnable != "" {
		o.enable = strings.Split(*simEnable, ",")
		for _, k := range o.enable {
			if _, ok := simPending[k]; !ok {
				t.Fatalf("-sim.enable: %q is not a simPending key", k)
			}
		}
	}
	return o
}

func (o simOptions) on(what string) bool {
	_, pending := simPending[what]
	return o.all || !pending || slices.Contains(o.enable, what)
}

// flags returns the command-line flags that select o.
func (o simOptions) flags() string {
	s := ""
	if *simStepsFlag != 60 {
		s += fmt.Sprintf(" -sim.steps=%d", *simStepsFlag)
	}
	if o.all {
		s += " -sim.all"
	}
	if len(o.enable) > 0 {
		s += " -sim.enable=" + strings.Join(o.enable, ",")
	}
	return s
}

// simViolation is a broken invariant.
type simViolation struct {
	Kind string // which invariant
	Msg  string
	Step int
}

func (v *simViolation) String() string {
	return fmt.Sprintf("%s: %s (after step %d)", v.Kind, v.Msg, v.Step)
}

// simTxn is what the simulation knows about one payment, across crashes.
type simTxn struct {
	id       string
	provider string
	mode     string
	amount   Sen
	// evidence holds the payloads the journal must hold for it: every
	// signed message about it that the kiosk did not refuse as a replay.
	evidence []string
	clean    map[string]string // payloads of clean successes it was told, by provider
	success  bool              // a message that looks like a success was accepted
	opCancel bool              // the operator's cancel moved it to cancel_requested
	resulted bool              // a final result (success, failure, error) was acted on
	hostPaid bool              // the KPOS host approved it while it was in progress, notification lost
	planAcks int               // plan_received acks acted on
	selected string            // the plan the kiosk sent
	last     Txn               // last journal record seen
	seen     bool
	checked  int // len(evidence) when the journal's evidence was last compared
}

// simFrame is one message the POS sent.
type simFrame struct {
	step    simStep
	txn     string
	bytes   []byte
	payload string
	success bool // looks like a success: transaction_result, status success/approved in any case
	clean   bool // a clean, typed, exact success for the right amount, acted on if fresh

	kpos         bool // a KPOS notification (sim_kpos_test.go), not a MobyPay frame
	notification kpos.Notification
	serial       kpos.SerialNotification // set for one that came over the serial cable
}

type simWorld struct {
	cfg  simConfig
	opt  simOptions
	path string
	step int
	note string // what the current step did, for the trace

	// The kiosk process; replaced at a restart.
	j     *Journal
	svc   *Service
	prov  *MobyPay
	stop  context.CancelFunc
	done  chan struct{}
	in    *mobypay.Codec // the server's codec for POS frames
	guard *mobypay.ReplayGuard

	// The world around it; survives a restart.
	posCodec  *mobypay.Codec // the POS's codec for kiosk frames
	linkUp    bool
	dead      bool // power is cut: nothing the old process does counts
	sendFault string
	vendFault string
	inqFault  string
	host      map[string]string // the KPOS host's view: pending, approved, declined
	kseq      int
	txns      []*simTxn
	byID      map[string]*simTxn
	requests  map[string]int // transaction_request frames the POS got
	frames    []*simFrame
	acted     map[string]bool // nonces of frames the kiosk acted on
	pulses    map[string]int  // relay pulses per payment
	trains    map[string]int  // the train the relay was given, by payment (pulses mode)
	starts    map[string]int  // StartVend calls per payment, across restarts (async mode)
	machines  map[string]*simMachine
	reports   map[string]int // what became of the machine's reports
	receipts  map[string]int
	decoded   map[string]simDecoded // records() cache, by txn id
	outboxAt  uint64                // outbox records read so far
	outbox    map[string]Txn        // each payment as its last outbox record has it
	changed   map[string]bool       // payments records() decoded afresh since checkOutbox
	nonces    int
	fates     map[string]int // what became of the POS frames
	restarts  int
	cuts      int
	digest    hash.Hash
	viol      *simViolation
}

func (w *simWorld) fail(kind, format string, args ...any) {
	if w.viol == nil {
		w.viol = &simViolation{Kind: kind, Msg: fmt.Sprintf(format, args...), Step: w.step}
	}
}

// simRun runs one schedule in a fresh bubble and returns the first broken
// invariant, or nil.
func simRun(t *testing.T, path string, cfg simConfig, steps []simStep, opt simOptions) (v *simViolation) {
	synctest.Test(t, func(t *testing.T) {
		w := &simWorld{cfg: cfg, opt: opt, path: path,
			posCodec: mobypay.NewCodec([]byte(simSecret)),
			byID:     map[string]*simTxn{}, requests: map[string]int{}, acted: map[string]bool{},
			pulses: map[string]int{}, trains: map[string]int{}, receipts: map[string]int{}, decoded: map[string]simDecoded{},
			starts: map[string]int{}, machines: map[string]*simMachine{}, reports: map[string]int{},
			fates: map[string]int{}, digest: sha256.New(), host: map[string]string{}}
		w.start(false)
		for i, st := range steps {
			if w.viol != nil {
				break
			}
			w.step, w.note = i, ""
			// The loop may next run on a timer, which the race detector
			// does not count as synchronisation: a round trip through the
			// loop orders what this goroutine wrote before whatever the
			// loop does next.
			w.svc.Ping(context.Background())
			w.do(st)
			synctest.Wait()
			if w.dead {
				w.restart()
			}
			if w.viol == nil {
				w.check(false)
			}
			fmt.Fprintf(w.digest, "%d %s %s\n", i, st, w.note)
			if opt.trace {
				t.Logf("%3d %-70s %s | %s", i, st, w.note, w.summary())
			}
		}
		if w.viol == nil && w.j != nil {
			w.check(true)
		}
		if opt.stats != nil && w.j != nil {
			opt.stats.add(w, len(steps))
		}
		if opt.digest != nil && w.j != nil {
			w.j.db.View(func(tx *bolt.Tx) error {
				return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
					return b.ForEach(func(k, v []byte) error {
						fmt.Fprintf(w.digest, "%s %q %q\n", name, k, v)
						return nil
					})
				})
			})
			*opt.digest = w.digest.Sum(nil)
		}
		w.shutdown()
		v = w.viol
	})
	os.Remove(path)
	return v
}

// start opens the journal and starts a kioskd: provider, service, loop.
func (w *simWorld) start(recover bool) {
	j, err := OpenJournal(w.path)
	if err != nil {
		w.fail("journal opens", "%v", err)
		return
	}
	j.db.NoSync = true
	w.j = j
	if recover {
		if _, err := j.Recover(time.Now()); err != nil {
			// kioskd exits 1 and init respawns it forever.
			w.fail("recovery", "the journal is refused at a restart: %v", err)
		}
	}
	w.prov = NewMobyPay(simKiosk, []byte(simSecret), nil)
	w.svc = NewService(w.cfg.service(), j, simVender{w}, simPrinter{w}, w.prov, simKPOS{w})
	w.prov.Bind(simSender{w}, w.svc)
	w.in = mobypay.NewCodec([]byte(simSecret))
	w.guard = mobypay.NewReplayGuard(0, 0)
	simSeedGuard(j, time.Now(), w.guard)
	w.linkUp, w.dead, w.sendFault, w.vendFault, w.inqFault = false, false, "", "", ""
	ctx, cancel := context.WithCancel(context.Background())
	w.stop, w.done = cancel, make(chan struct{})
	go func() { w.svc.Run(ctx); close(w.done) }()
}

func (w *simWorld) shutdown() {
	if w.stop != nil {
		w.stop()
		<-w.done
		w.stop = nil
	}
	if w.j != nil {
		w.j.Close()
	}
}

func (w *simWorld) restart() {
	w.restarts++
	w.shutdown()
	w.start(true)
	w.note += "; restarted"
}

// powerCut is called from the service loop, inside an event: the journal
// goes away under it, so nothing after this point reaches the disk.
func (w *simWorld) powerCut() {
	w.cuts++
	w.dead = true
	// What the loop held for its next commit is lost with the power: it
	// may be, being only steps whose loss changes no outcome (soon).
	if t := w.svc.Current(); t != nil {
		if tx := w.byID[t.ID]; tx != nil {
			for _, p := range w.svc.heldPayloads() {
				if i := slices.Index(tx.evidence, p); i >= 0 {
					tx.evidence = slices.Delete(tx.evidence, i, i+1)
					tx.checked = -1
					w.note += "; held message lost"
				}
			}
		}
	}
	w.j.Close()
	w.note += "; power cut"
}

func (w *simWorld) do(st simStep) {
	switch st.Op {
	case "create":
		w.create(st)
	case "cancel":
		w.cancel(st)
	case "plan":
		w.plan(st)
	case "pos":
		id, tx := w.resolve(st.Txn)
		if simIsKPOS(st.Msg) {
			w.kposDeliver(w.kposBuild(st, id, tx))
		} else {
			w.deliver(w.build(st, id, tx))
		}
	case "replay":
		if f := w.frame(st.N); f != nil {
			again := *f
			if f.kpos {
				w.kposDeliver(&again)
			} else {
				w.deliver(&again)
			}
		}
	case "resend":
		if f := w.frame(st.N); f != nil {
			if f.kpos {
				w.kposDeliver(w.kposBuild(f.step, f.txn, w.byID[f.txn]))
			} else {
				w.deliver(w.build(f.step, f.txn, w.byID[f.txn]))
			}
		}
	case "up":
		w.linkUp = true
		w.prov.ConnState(mobypay.Connected, simPOSPeer)
	case "down":
		w.linkUp = false
		w.prov.ConnState(mobypay.Disconnected, simPOSPeer)
	case "flap":
		// After each sleep, timers that came due ran on the loop while this
		// goroutine woke: wait for the loop, then a round trip through it
		// orders its reads of linkUp before the write here.
		settle := func() {
			synctest.Wait()
			if !w.dead {
				w.svc.Ping(context.Background())
			}
		}
		for range st.N {
			w.linkUp = false
			w.prov.ConnState(mobypay.Disconnected, simPOSPeer)
			synctest.Wait()
			time.Sleep(st.D / 2)
			settle()
			w.linkUp = true
			w.prov.ConnState(mobypay.Connected, simPOSPeer)
			synctest.Wait()
			time.Sleep(st.D - st.D/2)
			settle()
			if w.dead {
				break
			}
		}
	case "sleep":
		time.Sleep(st.D)
	case "crash":
		w.dead = true
	case "vended":
		w.vended(st)
	case "fault":
		switch {
		case strings.Contains(st.Fault, "send"):
			w.sendFault = st.Fault
		case strings.Contains(st.Fault, "inquiry"):
			w.inqFault = st.Fault
		default:
			w.vendFault = st.Fault
		}
	default:
		panic("sim: unknown op " + st.Op)
	}
}

func (w *simWorld) resolve(k int) (string, *simTxn) {
	if k < 0 || k >= len(w.txns) {
		return simUnknown, nil
	}
	tx := w.txns[len(w.txns)-1-k]
	return tx.id, tx
}

func (w *simWorld) frame(n int) *simFrame {
	if n >= len(w.frames) {
		return nil
	}
	return w.frames[len(w.frames)-1-n]
}

// simInProgress reports a payment not final yet, or final with its vend
// under way.
func simInProgress(t Txn) bool { return !t.State.Final() || t.Vend == VendReleasing }

// records reads every payment record, as List does, but decodes only the
// records whose bytes changed since they were last decoded: the same
// check that the journal reads back what it wrote, at a fraction of the
// cost (check also calls List itself at the end of a run).
func (w *simWorld) records() ([]Txn, error) {
	var out []Txn
	err := w.j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTxns)
		return b.ForEach(func(k, v []byte) error {
			c, ok := w.decoded[string(k)]
			if !ok || !bytes.Equal(c.raw, v) {
				t, err := get(tx, string(k)) // the journal's own decoder
				if err != nil {
					return err
				}
				c = simDecoded{raw: bytes.Clone(v), txn: *t}
				w.decoded[string(k)] = c
				if w.changed == nil {
					w.changed = map[string]bool{}
				}
				w.changed[string(k)] = true
			}
			out = append(out, c.txn)
			return nil
		})
	})
	return out, err
}

type simDecoded struct {
	raw []byte
	txn Txn
}

// openTxn returns the payment the journal says is in progress.
func (w *simWorld) openTxn() *Txn {
	list, err := w.records()
	if err != nil {
		return nil
	}
	for _, t := range list {
		if simInProgress(t) {
			return &t
		}
	}
	return nil
}

// addTxn starts tracking a payment the kiosk created, once: when its
// provider first sees it or when create returns it.
func (w *simWorld) addTxn(t Txn) *simTxn {
	if tx := w.byID[t.ID]; tx != nil {
		return tx
	}
	tx := &simTxn{id: t.ID, provider: t.Provider, mode: t.Mode, amount: t.Amount, clean: map[string]string{}}
	w.txns = append(w.txns, tx)
	w.byID[t.ID] = tx
	return tx
}

// cross says whether a message from provider about tx is delivered: one
// about another provider's payment only with "cross_provider".
func (w *simWorld) cross(tx *simTxn, provider string) bool {
	if tx.provider == provider || w.opt.on("cross_provider") {
		return true
	}
	w.note = "skipped: " + provider + " message about a " + tx.provider + " payment"
	return false
}

func (w *simWorld) create(st simStep) {
	busy, up := w.openTxn(), w.linkUp || st.Prov == "kpos"
	req := CreateRequest{Provider: st.Prov, Mode: st.Mode, Amount: st.Amt, PlanID: st.Plan}
	if w.cfg.Async > 0 {
		req.Vender = simAsync{w}
	}
	tx, err := w.svc.Create(context.Background(), req)
	if tx.ID != "" {
		w.addTxn(tx)
		w.note = "created " + tx.ID + " " + string(tx.State) + w.note
	} else {
		w.note = "create: " + fmt.Sprint(err) + w.note
	}
	if w.dead {
		return
	}
	if p := w.cfg.Pulse; p > 0 && (st.Amt%p != 0 || st.Amt/p > simMaxPulses) {
		// Refused before anything else: no train fits it.
		if !errors.Is(err, ErrBadRequest) || tx.ID != "" {
			w.fail("pulses refused at creation", "create of %s in pulses of %s returned %v, %q", st.Amt, p, err, tx.ID)
		}
		return
	}
	switch {
	case busy != nil:
		if !errors.Is(err, ErrBusy) {
			w.fail("one payment at a time", "create while %s is %s returned %v, %s", busy.ID, busy.State, err, tx.State)
		}
	case !up:
		if !errors.Is(err, ErrNotReady) {
			w.fail("create", "create with the POS away returned %v, %s", err, tx.State)
		}
	case err != nil:
		w.fail("create", "nothing in progress, POS connected, but create failed: %v", err)
	}
}

func (w *simWorld) cancel(st simStep) {
	id, tx := w.resolve(st.Txn)
	before, gerr := w.j.Get(id)
	got, err := w.svc.Cancel(context.Background(), id)
	w.note = fmt.Sprintf("cancel %s: %s %v", id, got.State, err) + w.note
	if w.dead {
		return
	}
	switch {
	case err == nil && before.State == Approved && before.Vend == VendReleasing:
		// Being vended by the machine (async mode): approved, nothing to
		// cancel; the answer is the payment as it is.
		if got.State != Approved || got.Vend != VendReleasing {
			w.fail("cancel", "cancel of %s while it is vended returned %s vend=%s", id, got.State, got.Vend)
		}
	case err == nil:
		if gerr != nil || !simInProgress(before) || got.State != CancelRequested {
			w.fail("cancel", "cancel of %s (was %s) succeeded with state %s", id, before.State, got.State)
		}
		if tx != nil && before.State != CancelRequested {
			tx.opCancel = true
		}
	case errors.Is(err, ErrNotActive):
		if gerr != nil || simInProgress(before) {
			w.fail("cancel", "cancel of %s (was %s): %v", id, before.State, err)
		}
	case errors.Is(err, ErrNotFound):
		if gerr == nil {
			w.fail("cancel", "cancel of known %s: %v", id, err)
		}
	default:
		w.fail("cancel", "cancel of %s: unexpected %v", id, err)
	}
}

func (w *simWorld) plan(st simStep) {
	id, _ := w.resolve(st.Txn)
	before, gerr := w.j.Get(id)
	got, err := w.svc.SelectPlan(context.Background(), id, st.Plan)
	w.note = fmt.Sprintf("plan %s %s: %s %v", id, st.Plan, got.State, err) + w.note
	if w.dead {
		return
	}
	offered := slices.ContainsFunc(before.Plans, func(p Plan) bool { return p.ID == st.Plan })
	switch {
	case err == nil:
		if before.State != PlansOffered || !offered || got.State != PlanSelected || got.PlanID != st.Plan {
			w.fail("plan selection", "plan %q for %s (was %s, plans %v) accepted: %s %q", st.Plan, id, before.State, before.Plans, got.State, got.PlanID)
		}
	case errors.Is(err, ErrBadRequest):
		if before.State != PlansOffered || offered {
			w.fail("plan selection", "plan %q for %s (was %s): %v", st.Plan, id, before.State, err)
		}
	case errors.Is(err, ErrNotActive):
		if gerr != nil || before.State == PlansOffered && simInProgress(before) {
			w.fail("plan selection", "plan %q for %s (was %s): %v", st.Plan, id, before.State, err)
		}
	case errors.Is(err, ErrNotFound):
		if gerr == nil {
			w.fail("plan selection", "plan for known %s: %v", id, err)
		}
	default:
		w.fail("plan selection", "plan %q for %s: unexpected %v", st.Plan, id, err)
	}
}

// simObj builds a payload in canonical form (sorted keys, compact, Python
// escapes), which is what the POS signs.
type simObj map[string]string

func (o simObj) str(k, v string) { o[k] = string(mobypay.AppendPyString(nil, v)) }

func (o simObj) canonical() string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for i, k := range keys {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = mobypay.AppendPyString(b, k)
		b = append(b, ':')
		b = append(b, o[k]...)
	}
	return string(append(b, '}'))
}

func simAmount(sen Sen) string {
	return string(mobypay.AppendPyFloat(nil, float64(sen)/100))
}

// build signs the POS message st says, about payment id (tx is nil when
// the kiosk never issued it).
func (w *simWorld) build(st simStep, id string, tx *simTxn) *simFrame {
	amount, mode, selected := Sen(1000), "card", ""
	if tx != nil {
		amount, mode, selected = tx.amount, tx.mode, tx.selected
	}
	ts := time.Now()
	if st.Late {
		ts = ts.Add(-2 * time.Minute)
	}
	o := simObj{}
	o.str("txn_id", id)
	o.str("pos_id", "POS-SIM-1")
	o.str("timestamp", strconv.FormatInt(ts.UnixMilli(), 10))
	w.nonces++
	o.str("nonce", fmt.Sprintf("sim-nonce-%06d", w.nonces))
	result := func(status string, sen Sen) {
		o.str("type", mobypay.TypeTransactionResult)
		o.str("status", status)
		o.str("transaction_id", fmt.Sprintf("%06d", w.nonces))
		if sen != 0 {
			o["amount"] = simAmount(sen)
		}
		if mode == "card" || mode == "ipp" {
			o.str("authorization_code", fmt.Sprintf("A%05d", w.nonces))
			o.str("card_last4", "4242")
		}
		if selected != "" {
			o.str("plan_id", selected)
		}
	}
	ack := func(status string) {
		o.str("type", mobypay.TypeAck)
		o.str("status", status)
	}
	switch st.Msg {
	case "ack_processing":
		ack(mobypay.StatusProcessing)
	case "ack_received":
		ack(mobypay.StatusReceived)
	case "ack_plan_received":
		ack(mobypay.StatusPlanReceived)
	case "ack_other":
		ack("queued")
	case "success":
		result(mobypay.StatusSuccess, amount)
	case "approved":
		result(mobypay.StatusApproved, amount)
	case "success_mismatch":
		result(mobypay.StatusSuccess, amount+100)
	case "success_noamount":
		result(mobypay.StatusSuccess, 0)
	case "success_fraction":
		result(mobypay.StatusSuccess, amount)
		o["amount"] = string(mobypay.AppendPyFloat(nil, float64(amount)/100+0.005))
	case "failed":
		o.str("type", mobypay.TypeTransactionResult)
		o.str("status", mobypay.StatusFailed)
		o.str("error_message", "USER_ABORT")
		o["amount"] = simAmount(amount)
	case "plans":
		o.str("type", mobypay.TypeTransactionResult)
		o.str("status", mobypay.StatusIPPPlans)
		o["amount"] = simAmount(amount)
		var p []string
		for i, pid := range simPlanIDs[:max(1, min(st.N, len(simPlanIDs)))] {
			p = append(p, fmt.Sprintf(`{"frequency":"monthly","installmentDetails":[],"planId":%q,"totalInstallments":%d}`, pid, 3*i))
		}
		o["plans"] = "[" + strings.Join(p, ",") + "]"
	case "error":
		o.str("type", mobypay.TypeError)
		o.str("message", "terminal busy")
	case "other":
		o.str("type", "status_update")
		o.str("status", "waiting_for_card")
	default:
		panic("sim: unknown message " + st.Msg)
	}
	switch st.Odd {
	case "no_nonce":
		delete(o, "nonce")
	case "extra_field":
		o.str("terminal_note", "firmware 2.1")
	case "amount_string":
		if _, ok := o["amount"]; ok {
			o.str("amount", amount.String())
		}
	case "amount_nan":
		if _, ok := o["amount"]; ok {
			o["amount"] = "NaN"
		}
	case "amount_inf":
		if _, ok := o["amount"]; ok {
			o["amount"] = "Infinity"
		}
	case "amount_neg":
		if _, ok := o["amount"]; ok {
			o["amount"] = simAmount(-amount)
		}
	case "plans_object":
		if _, ok := o["plans"]; ok {
			o["plans"] = `{"planId":"pay-in-full"}`
		}
	case "postxn_object":
		if _, ok := o["transaction_id"]; ok {
			o["transaction_id"] = `{"id":410}`
		}
	case "status_upper":
		if s, ok := o["status"]; ok {
			o["status"] = strings.ToUpper(s)
		}
	}
	payload := o.canonical()
	mac := hmac.New(sha256.New, []byte(simSecret))
	mac.Write([]byte(payload))
	frame := `{"payload":` + payload + `,"signature":"` + hex.EncodeToString(mac.Sum(nil)) + `"}`
	status := strings.ToLower(strings.Trim(o["status"], `"`))
	success := o["type"] == `"transaction_result"` && (status == "success" || status == "approved")
	// A success that states no amount is vended today (approve checks an
	// amount only when there is one), so it counts as clean here.
	clean := (st.Msg == "success" || st.Msg == "approved" || st.Msg == "success_noamount") &&
		!st.Late && (st.Odd == "" || st.Odd == "extra_field")
	return &simFrame{step: st, txn: id, bytes: []byte(frame), payload: payload, success: success, clean: clean}
}

// deliver is mobypay.Server.handle for one frame: verify, decode, replay
// guard, then the provider's Message or Late. A signed message with no
// nonce goes to Late, as the server contract of issue 9 has it. What the
// journal must now hold is noted before the provider is called: the loop
// acts on the report concurrently with the rest of this function.
func (w *simWorld) deliver(f *simFrame) {
	if tx := w.byID[f.txn]; tx != nil && !w.cross(tx, "mobypay") {
		return
	}
	if f.clean && !w.opt.on("late_result") {
		if rec, err := w.j.Get(f.txn); err == nil && simInProgress(rec) && rec.Review != "" {
			w.note = "held back (late_result): a clean success for flagged " + f.txn
			return
		}
	}
	if !w.linkUp {
		// Frames come over a session: the POS has connected first.
		w.linkUp = true
		w.prov.ConnState(mobypay.Connected, simPOSPeer)
		synctest.Wait()
		w.note = "(POS connects) "
	}
	w.frames = append(w.frames, f)
	var m mobypay.Message
	err := w.in.Open(f.bytes)
	if err == nil {
		err = w.in.Decode(&m)
	}
	var hand func()
	actOn := false
	switch {
	case err != nil:
		// Signed by the POS, but lost before the payment layer.
		w.note += "POS " + f.what() + ": lost: " + err.Error()
		w.fates["lost"]++
	case m.Nonce == "":
		hand = func() { w.prov.Late(&m, simErrNoNonce) }
		w.note += "POS " + f.what() + ": late (no nonce)"
		w.fates["late"]++
	default:
		err = w.guard.Check(time.Now(), m.Timestamp, m.Nonce)
		switch {
		case errors.Is(err, mobypay.ErrReplay):
			w.note += "POS " + f.what() + ": refused as a replay"
			w.fates["replay refused"]++
			return
		case err != nil:
			hand = func() { w.prov.Late(&m, err) }
			w.note += "POS " + f.what() + ": late"
			w.fates["late"]++
		default:
			if w.acted[m.Nonce] && w.opt.on("check:replay") {
				w.fail("replay refused", "a byte-identical replay of %s was acted on again", f.what())
			}
			w.acted[m.Nonce], actOn = true, true
			hand = func() { w.prov.Message(&m) }
			w.note += "POS " + f.what()
			w.fates["acted on"]++
		}
	}
	if tx := w.byID[f.txn]; tx != nil {
		// A late frame passes no replay guard, so the service drops a
		// byte-identical copy of what it already journaled.
		if actOn || !slices.Contains(tx.evidence, f.payload) {
			tx.evidence = append(tx.evidence, f.payload)
		}
		tx.success = tx.success || f.success
		if f.clean && actOn {
			tx.clean[f.payload] = "mobypay"
		}
		if actOn && (simIsResult(f.step.Msg) && f.step.Msg != "plans" || f.step.Msg == "error") {
			tx.resulted = true
		}
		if actOn && f.step.Msg == "ack_plan_received" {
			tx.planAcks++
		}
	}
	if hand != nil {
		hand()
	}
}

func (f *simFrame) what() string {
	s := f.step.Msg + " " + f.txn
	if f.step.Odd != "" {
		s += " (" + f.step.Odd + ")"
	}
	if f.step.Late {
		s += " (late)"
	}
	return s
}

// simSender is the POS session: it hands kiosk frames to the POS.
type simSender struct{ w *simWorld }

func (s simSender) Send(frame []byte) error {
	w := s.w
	if w.dead || !w.linkUp {
		return mobypay.ErrNotConnected
	}
	fault := w.sendFault
	w.sendFault = ""
	switch fault {
	case "crash_before_send":
		w.powerCut()
		return mobypay.ErrNotConnected
	case "crash_after_send":
		w.posReceive(frame)
		w.powerCut()
		return nil
	case "send_lost":
		w.dropLink()
		return mobypay.ErrNotConnected
	case "send_error":
		w.posReceive(frame)
		w.dropLink()
		return errors.New("mobypay: send to " + simPOSPeer + ": broken pipe")
	}
	w.posReceive(frame)
	return nil
}

// dropLink is the server noticing the session died under a write.
func (w *simWorld) dropLink() {
	w.linkUp = false
	w.prov.ConnState(mobypay.Disconnected, simPOSPeer)
}

// posReceive is the POS reading a kiosk frame. It checks that the kiosk
// signs what it sends and journals each step before the frame that
// depends on it.
func (w *simWorld) posReceive(frame []byte) {
	var m mobypay.Message
	if err := w.posCodec.Open(frame); err != nil {
		w.fail("kiosk signs", "the POS refuses a kiosk frame: %v", err)
		return
	}
	if err := w.posCodec.Decode(&m); err != nil {
		w.fail("kiosk signs", "the POS cannot decode a kiosk frame: %v", err)
		return
	}
	rec, err := w.j.Get(m.TxnID)
	if err != nil {
		w.fail("journal before effect", "%s for %s sent, journal: %v", m.Type, m.TxnID, err)
		return
	}
	switch m.Type {
	case mobypay.TypeTransactionRequest:
		w.addTxn(rec)
		w.requests[m.TxnID]++
		sen, _ := m.AmountSen()
		switch {
		case w.requests[m.TxnID] > 1:
			w.fail("one request per payment", "transaction_request for %s sent %d times", m.TxnID, w.requests[m.TxnID])
		case rec.State != Created || Sen(sen) != rec.Amount || m.PaymentMode != rec.Mode:
			w.fail("journal before effect", "transaction_request %s %d %s sent for %+v", m.TxnID, sen, m.PaymentMode, rec)
		}
	case mobypay.TypeIPPPlanSelection:
		offered := slices.ContainsFunc(rec.Plans, func(p Plan) bool { return p.ID == m.PlanID })
		if rec.State != PlanSelected || rec.PlanID != m.PlanID || !offered {
			w.fail("journal before effect", "ipp_plan_selection %q for %s sent while the journal says %s %q (plans %v)", m.PlanID, m.TxnID, rec.State, rec.PlanID, rec.Plans)
		}
		if tx := w.byID[m.TxnID]; tx != nil {
			tx.selected = m.PlanID
		}
	case mobypay.TypeCancelTransaction:
	default:
		w.fail("kiosk signs", "the kiosk sent a %q", m.Type)
	}
}

// simVender is the relay. Its pulses are real: they survive a crash.
type simVender struct{ w *simWorld }

func (v simVender) Vend(_ context.Context, t Txn, progress func(int) error) error {
	w := v.w
	if w.dead {
		return errors.New("power cut")
	}
	w.checkVend(t)
	if w.cfg.Async > 0 {
		w.fail("vend by its machine", "the relay vends %s, created with an AsyncVender", t.ID)
	}
	fault := w.vendFault
	w.vendFault = ""
	if t.PulsesTotal > 0 {
		return w.train(t, progress, fault)
	}
	switch fault {
	case "crash_before_pulse":
		w.powerCut()
		return errors.New("power cut")
	case "crash_after_pulse":
		w.pulse(t.ID)
		w.powerCut()
		return nil
	case "vend_error":
		return errors.New("relay: no response")
	case "vend_error_pulsed":
		w.pulse(t.ID)
		return errors.New("relay: no confirmation")
	}
	w.pulse(t.ID)
	return nil
}

// train is the relay giving t's coin-pulse train, with fault striking
// where it says: before the first pulse, inside or just after the middle
// one, after the last, or as a relay error after the first.
func (w *simWorld) train(t Txn, progress func(int) error, fault string) error {
	n, mid := t.PulsesTotal, (t.PulsesTotal+1)/2
	w.trains[t.ID] = n
	switch fault {
	case "crash_before_pulse":
		w.powerCut()
		return errors.New("power cut")
	case "vend_error":
		return errors.New("relay: no response")
	}
	for k := 1; k <= n; k++ {
		w.pulse(t.ID)
		if fault == "crash_mid_train" && k == mid {
			w.powerCut()
			return errors.New("power cut")
		}
		if err := progress(k); err != nil {
			return err
		}
		// The count is on disk before the next pulse may start.
		if rec, err := w.j.Get(t.ID); err != nil || rec.PulsesDone != k || rec.Vend != VendReleasing {
			w.fail("pulse journaled before the next", "%s pulse %d of %d reported, the journal has %d vend=%s (%v)", t.ID, k, n, rec.PulsesDone, rec.Vend, err)
		}
		switch {
		case fault == "crash_train_reported" && k == mid, fault == "crash_after_pulse" && k == n:
			w.powerCut()
			return errors.New("power cut")
		case fault == "vend_error_pulsed" && k == 1:
			return errors.New("relay: no confirmation")
		}
	}
	return nil
}

func (w *simWorld) pulse(id string) {
	w.pulses[id]++
	w.note += "; pulse " + id
	if most := max(1, w.trains[id]); w.pulses[id] > most {
		w.fail("at most one vend", "%s pulsed %d times, its train is %d", id, w.pulses[id], w.trains[id])
	}
}

// checkTrain holds a pulses-mode payment's record to the relay: the train
// is the amount in pulses, the journal's count is what the relay gave or
// one less (the pulse a power cut caught), and an interrupted or failed
// train says how many pulses are on record.
func (w *simWorld) checkTrain(rec Txn) {
	given := w.pulses[rec.ID]
	if rec.Vend == VendNone || w.cfg.Pulse == 0 {
		if rec.PulsesTotal != 0 || rec.PulsesDone != 0 {
			w.fail("pulses on record", "%s vend=%s with pulses %d/%d", rec.ID, rec.Vend, rec.PulsesDone, rec.PulsesTotal)
		}
		return
	}
	if rec.PulsesTotal != int(rec.Amount/w.cfg.Pulse) {
		w.fail("pulses on record", "%s of %s is a train of %d in pulses of %s", rec.ID, rec.Amount, rec.PulsesTotal, w.cfg.Pulse)
	}
	if d := given - rec.PulsesDone; d < 0 || d > 1 {
		w.fail("pulses on record", "%s: the relay gave %d pulses, the journal has %d", rec.ID, given, rec.PulsesDone)
	}
	confirmed := fmt.Sprintf("%d of %d pulses confirmed", rec.PulsesDone, rec.PulsesTotal)
	switch {
	case rec.Vend == VendUnknown && !strings.Contains(rec.Review, "vend_unknown: "+confirmed):
		w.fail("pulses on record", "%s vend_unknown, review %q does not say %q", rec.ID, rec.Review, confirmed)
	case rec.Vend == VendFailed && !strings.Contains(rec.Review, confirmed):
		w.fail("pulses on record", "%s vend failed, review %q does not say %q", rec.ID, rec.Review, confirmed)
	}
}

// checkVend runs as the relay is about to move: the journal must already
// say releasing, for an approval with nothing to review, and hold a clean
// success for this payment that the kiosk was allowed to act on.
func (w *simWorld) checkVend(t Txn) {
	rec, err := w.j.Get(t.ID)
	if err != nil {
		w.fail("vend only after a clean success", "vend of %s: journal: %v", t.ID, err)
		return
	}
	if rec.State != Approved || rec.Vend != VendReleasing || rec.Review != "" {
		w.fail("vend only after a clean success", "vend of %s while the journal says %s vend=%s review=%q", t.ID, rec.State, rec.Vend, rec.Review)
		return
	}
	tx := w.byID[t.ID]
	evs, _ := w.j.EvidenceFor(t.ID)
	if tx == nil || !slices.ContainsFunc(evs, func(e Evidence) bool { return tx.clean[e.Payload] != "" }) {
		w.fail("vend only after a clean success", "vend of %s without a clean success in the journal (evidence %d)", t.ID, len(evs))
		return
	}
	if !slices.ContainsFunc(evs, func(e Evidence) bool { return tx.clean[e.Payload] == rec.Provider }) {
		w.fail("vend only after a clean success", "vend of %s (%s) on a success from another provider", t.ID, rec.Provider)
		return
	}
	if tx.opCancel && w.cfg.AfterCancel == "review" {
		w.fail("vend only after a clean success", "vend of %s after the operator cancelled it, policy review", t.ID)
	}
}

// simPrinter is the receipt printer.
type simPrinter struct{ w *simWorld }

func (p simPrinter) Receipt(t Txn) {
	if p.w.dead {
		return
	}
	p.w.receipts[t.ID]++
	if p.w.receipts[t.ID] > 1 {
		p.w.fail("one receipt", "%s printed %d times", t.ID, p.w.receipts[t.ID])
	}
}

// check reads the journal and checks every invariant; full reads every
// payment's evidence, not only what changed.
func (w *simWorld) check(full bool) {
	list, err := w.records()
	if full && err == nil {
		list, err = w.j.List(0)
		if err == nil && len(list) != len(w.txns) {
			w.fail("journal decodes", "List(0) returns %d payments of %d", len(list), len(w.txns))
		}
	}
	if err != nil {
		w.fail("journal decodes", "List: %v", err)
		return
	}
	w.checkOutbox(list, full)
	now := time.Now()
	var inProgress []Txn
	for _, rec := range list {
		tx := w.byID[rec.ID]
		if tx == nil {
			w.fail("journal", "the journal has %s, which no create returned", rec.ID)
			return
		}
		// Evidence is read back when the record or the expectation changed
		// (each evidence write also updates the record), and at the end.
		if full || !tx.seen || !rec.UpdatedAt.Equal(tx.last.UpdatedAt) || len(tx.evidence) != tx.checked {
			evs, err := w.j.EvidenceFor(rec.ID)
			if err != nil {
				w.fail("journal decodes", "EvidenceFor(%s): %v", rec.ID, err)
				return
			}
			if rec.Evidence != len(evs) {
				w.fail("evidence", "%s counts %d messages, the journal holds %d", rec.ID, rec.Evidence, len(evs))
			}
			missing, extra := simDiff(tx.evidence, evs)
			held := 0
			if cur := w.svc.Current(); cur != nil && cur.ID == rec.ID && len(missing) > 0 {
				// Held for the next commit (soon): journaled with it.
				var still []string
				missing, still = simHeld(missing, w.svc.heldPayloads())
				held = len(missing) - len(still)
				missing = still
			}
			if len(missing)+len(extra) > 0 {
				w.fail("every signed message journaled", "%s (%s): missing %v, unexpected %v", rec.ID, rec.State, missing, extra)
			}
			if held == 0 {
				tx.checked = len(tx.evidence)
			}
		}
		w.checkMoves(tx, rec)
		if tx.success && !w.handed(rec.ID) && rec.Review == "" {
			w.fail("every success vended or flagged", "%s was told of a success and is %s vend=%s with no review flag", rec.ID, rec.State, rec.Vend)
		}
		if tx.hostPaid && rec.State.Final() && !w.handed(rec.ID) && rec.Review == "" {
			w.fail("every success vended or flagged", "%s was approved at the KPOS host and ended %s vend=%s with no review flag", rec.ID, rec.State, rec.Vend)
		}
		if rec.Review == "" {
			// What the kiosk cannot be sure of is flagged for the operator.
			switch {
			case rec.State == Unknown:
				w.fail("uncertain outcomes flagged", "%s is unknown with no review flag", rec.ID)
			case rec.Vend == VendFailed || rec.Vend == VendUnknown:
				w.fail("uncertain outcomes flagged", "%s vend=%s with no review flag", rec.ID, rec.Vend)
			case rec.State == Approved && rec.Vend == VendNone:
				w.fail("uncertain outcomes flagged", "%s approved, never vended, no review flag", rec.ID)
			case rec.Dropped && rec.State.Final() && !tx.resulted:
				w.fail("uncertain outcomes flagged", "%s lost its POS link mid-payment and ended %s without a result, no review flag", rec.ID, rec.State)
			}
		}
		switch {
		case w.pulses[rec.ID] > 0 && (rec.Vend == VendNone || rec.Vend == VendReleasing):
			w.fail("vend journaled", "%s pulsed but the journal says vend=%s", rec.ID, rec.Vend)
		case rec.Vend == VendReleased && w.cfg.Async == 0 && w.pulses[rec.ID] != max(1, rec.PulsesTotal):
			w.fail("vend journaled", "%s journaled released after %d pulses", rec.ID, w.pulses[rec.ID])
		}
		w.checkTrain(rec)
		if w.cfg.Async > 0 {
			w.checkAsync(rec, now)
		}
		if simInProgress(rec) {
			inProgress = append(inProgress, rec)
			// Until defect 5 is fixed, only where it cannot strike: no drop,
			// no plan_received (it re-arms the result timer), no plans
			// offered for a payment that is not IPP (they add a wait).
			checked := w.opt.on("check:deadline") ||
				!rec.Dropped && tx.planAcks == 0 && (rec.Mode == "ipp" || len(rec.Plans) == 0)
			// A vend the machine is dispensing has its own deadline
			// instead (checkAsync).
			m := w.machines[rec.ID]
			if dl := rec.CreatedAt.Add(w.cfg.deadline(rec.Mode)); now.After(dl) && checked && (m == nil || rec.Vend != VendReleasing) {
				w.fail("absolute deadline", "%s (%s) is still %s vend=%s dropped=%v %s after its deadline of %s (created %s)",
					rec.ID, rec.Mode, rec.State, rec.Vend, rec.Dropped, now.Sub(dl), w.cfg.deadline(rec.Mode), rec.CreatedAt.Format("15:04:05.000"))
			}
		}
	}
	if len(inProgress) > 1 {
		w.fail("one payment at a time", "%d payments in progress: %s and %s", len(inProgress), inProgress[0].ID, inProgress[1].ID)
	}
	cur := w.svc.Current()
	switch {
	case len(inProgress) == 0 && cur != nil:
		w.fail("current payment", "Current() is %s %s, the journal has nothing in progress", cur.ID, cur.State)
	case len(inProgress) == 1 && (cur == nil || cur.ID != inProgress[0].ID || !heldAhead(inProgress[0], *cur)):
		w.fail("current payment", "Current() is %v, the journal has %s %s", cur, inProgress[0].ID, inProgress[0].State)
	}
}

// heldAhead says whether cur, the payment in progress as the service has
// it, is rec, the journal's, or rec with only the steps the service may
// hold for the next commit (Service.soon): sent, acks, other non-final
// messages. Vend, review and every final state are always on disk.
func heldAhead(rec, cur Txn) bool {
	if cur.Vend != rec.Vend || cur.Review != rec.Review || cur.Evidence < rec.Evidence || cur.PulsesDone != rec.PulsesDone {
		return false
	}
	switch {
	case cur.State == rec.State:
		return true
	case rec.State == Created:
		return cur.State == Sent || cur.State == Acked
	case rec.State == Sent:
		return cur.State == Acked
	}
	return false
}

// checkOutbox reads the outbox records written since the last check:
// numbered on from the last without a gap, and each payment's last
// record is the payment as the journal holds it (checked for the
// payments that changed or got a record, and for all when full).
func (w *simWorld) checkOutbox(list []Txn, full bool) {
	if w.outbox == nil {
		w.outbox = map[string]Txn{}
	}
	touched := w.changed
	w.changed = nil
	rs, err := w.j.Records(w.outboxAt, 1<<30)
	if err != nil {
		w.fail("outbox", "Records(%d): %v", w.outboxAt, err)
		return
	}
	for _, r := range rs {
		if r.Seq != w.outboxAt+1 || r.Kind == RecordUnreadable {
			w.fail("outbox", "record %d (%s %s) follows record %d", r.Seq, r.Kind, r.Error, w.outboxAt)
			return
		}
		w.outboxAt = r.Seq
		if r.Txn != nil && (r.Kind == RecordTxn || r.Kind == RecordEvidence) {
			w.outbox[r.Txn.ID] = *r.Txn
			if touched == nil {
				touched = map[string]bool{}
			}
			touched[r.Txn.ID] = true
		}
	}
	for _, rec := range list {
		if !full && !touched[rec.ID] {
			continue
		}
		if got, ok := w.outbox[rec.ID]; !ok || !sameTxn(got, rec) {
			w.fail("outbox", "%s is %s vend=%s evidence=%d, its last record has %s vend=%s evidence=%d (found %v)",
				rec.ID, rec.State, rec.Vend, rec.Evidence, got.State, got.Vend, got.Evidence, ok)
			return
		}
	}
}

// checkMoves compares a record with the last one seen: states only move
// forward, a final state never changes, the vend state only along its
// path, review flags only accumulate, identity never changes.
func (w *simWorld) checkMoves(tx *simTxn, rec Txn) {
	defer func() { tx.last, tx.seen = rec, true }()
	if rec.Amount != tx.amount || rec.Mode != tx.mode {
		w.fail("journal", "%s is %s %s, created as %s %s", rec.ID, rec.Mode, rec.Amount, tx.mode, tx.amount)
	}
	if !tx.seen {
		return
	}
	old := tx.last
	switch {
	case rec.State.rank() < old.State.rank(), old.State.Final() && rec.State != old.State:
		w.fail("states move forward", "%s went %s -> %s", rec.ID, old.State, rec.State)
	case rec.Vend != old.Vend && !(old.Vend == VendNone || old.Vend == VendReleasing && rec.Vend != VendNone):
		w.fail("states move forward", "%s vend went %s -> %s", rec.ID, old.Vend, rec.Vend)
	case !strings.HasPrefix(rec.Review, old.Review):
		w.fail("states move forward", "%s review went %q -> %q", rec.ID, old.Review, rec.Review)
	case rec.Evidence < old.Evidence:
		w.fail("states move forward", "%s evidence went %d -> %d", rec.ID, old.Evidence, rec.Evidence)
	}
}

// simDiff compares the payloads expected with the evidence journaled, as
// multisets.
// simHeld takes the payloads the loop holds for its next commit out of
// missing; it returns missing as it came and what is still missing.
func simHeld(missing, held []string) (all, still []string) {
	n := map[string]int{}
	for _, p := range held {
		n[p]++
	}
	for _, p := range missing {
		if n[p] > 0 {
			n[p]--
			continue
		}
		still = append(still, p)
	}
	return missing, still
}

func simDiff(want []string, evs []Evidence) (missing, extra []string) {
	n := map[string]int{}
	for _, p := range want {
		n[p]++
	}
	for _, e := range evs {
		n[e.Payload]--
	}
	for p, c := range n {
		for ; c > 0; c-- {
			missing = append(missing, p)
		}
		for ; c < 0; c++ {
			extra = append(extra, p)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

func (w *simWorld) summary() string {
	if w.j == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s link=%v", time.Now().UTC().Format("15:04:05.000"), w.linkUp)
	if t := w.openTxn(); t != nil {
		fmt.Fprintf(&b, " %s %s", t.ID, t.State)
		if t.Dropped {
			b.WriteString(" dropped")
		}
	}
	return b.String()
}

// TestSim runs the simulation over many seeds (-sim.seeds from
// -sim.first), or one seed with a trace (-sim.seed).
func TestSim(t *testing.T) {
	opt := simFlags(t)
	steps := *simStepsFlag
	dir := simDir(t)
	if *simSeedFlag >= 0 {
		opt.trace = true
		seed := uint64(*simSeedFlag)
		cfg := simConfigFor(seed)
		t.Logf("seed %d, %s", seed, cfg)
		sched := simGenerate(seed, steps, cfg, opt.on)
		if v := simRun(t, filepath.Join(dir, "j.db"), cfg, sched, opt); v != nil {
			opt.trace = false
			simReport(t, dir, seed, cfg, sched, v, opt)
		}
		return
	}
	n := *simSeedsFlag
	if n <= 0 {
		n = simDefaultSeeds()
		if testing.Short() {
			n /= 10
		}
	}
	first := *simFirstFlag
	opt.stats = &simStats{}
	var next atomic.Uint64
	var failed atomic.Bool
	var mu sync.Mutex
	kinds := map[string]bool{}
	failures := 0
	// report shrinks and prints a failing seed, unless -sim.each has seen
	// its kind already; it says whether the run should stop.
	report := func(t *testing.T, wk int, seed uint64, cfg simConfig, sched []simStep, v *simViolation) bool {
		mu.Lock()
		defer mu.Unlock()
		if *simEach <= 0 {
			if failures == 0 {
				simReport(t, filepath.Join(dir, fmt.Sprintf("shrink%d", wk)), seed, cfg, sched, v, opt)
			}
			failures++
			return true
		}
		failures++
		min, mv := simShrunk(t, filepath.Join(dir, fmt.Sprintf("shrink%d", wk)), cfg, sched, v, opt)
		if key := simKind(v, min); !kinds[key] {
			kinds[key] = true
			simPrint(t, seed, cfg, sched, v, min, mv, opt)
		}
		return len(kinds) >= *simEach || failures >= 50**simEach
	}
	begin := time.Now()
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	t.Run("seeds", func(t *testing.T) {
		for wk := range workers {
			t.Run(fmt.Sprintf("w%d", wk), func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(dir, fmt.Sprintf("w%d.db", wk))
				for !failed.Load() {
					i := next.Add(1) - 1
					if i >= uint64(n) {
						return
					}
					seed := first + i
					cfg := simConfigFor(seed)
					sched := simGenerate(seed, steps, cfg, opt.on)
					if v := simRun(t, path, cfg, sched, opt); v != nil && report(t, wk, seed, cfg, sched, v) {
						failed.Store(true)
						return
					}
				}
			})
		}
	})
	ran := min(next.Load(), uint64(n))
	el := time.Since(begin)
	t.Logf("sim: %d seeds of %d steps from seed %d in %s on %d workers: %.0f seeds/s", ran, steps, first, el.Round(time.Millisecond), workers, float64(ran)/el.Seconds())
	t.Logf("sim: covered %s", opt.stats)
	if failures > 0 {
		t.Logf("sim: %d failing seeds", failures)
	}
}

// simKind names a failure for -sim.each: the invariant, and the odd
// variants and lateness its minimal schedule needs.
func simKind(v *simViolation, min []simStep) string {
	var f []string
	for _, st := range min {
		if st.Odd != "" && !slices.Contains(f, st.Odd) {
			f = append(f, st.Odd)
		}
		if st.Late && !slices.Contains(f, "late") {
			f = append(f, "late")
		}
	}
	slices.Sort(f)
	return v.Kind + " " + strings.Join(f, ",")
}

// TestSimDeterministic runs seeds twice: the same schedule must do the
// same thing and leave the same journal, byte for byte, or a failing
// seed could not be replayed.
func TestSimDeterministic(t *testing.T) {
	dir := simDir(t)
	for seed := uint64(1); seed <= 30; seed++ {
		cfg := simConfigFor(seed)
		sched := simGenerate(seed, 80, cfg, simOptions{all: true}.on)
		var a, b []byte
		va := simRun(t, filepath.Join(dir, "a.db"), cfg, sched, simOptions{all: true, digest: &a})
		vb := simRun(t, filepath.Join(dir, "b.db"), cfg, sched, simOptions{all: true, digest: &b})
		if fmt.Sprint(va) != fmt.Sprint(vb) || !bytes.Equal(a, b) || len(a) == 0 {
			t.Fatalf("seed %d ran two ways: %v %x, then %v %x", seed, va, a, vb, b)
		}
	}
}

// simDir is where the journals go: tmpfs when there is one. The files are
// real bbolt files either way; the simulation cuts the power itself, and
// a disk only adds time (half of it, with NoSync still writing pages).
func simDir(t *testing.T) string {
	if runtime.GOOS == "linux" {
		if d, err := os.MkdirTemp("/dev/shm", "kioskd-sim-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// simReport shrinks a failing schedule and prints it.
func simReport(t *testing.T, dir string, seed uint64, cfg simConfig, sched []simStep, v *simViolation, opt simOptions) {
	min, mv := simShrunk(t, dir, cfg, sched, v, opt)
	simPrint(t, seed, cfg, sched, v, min, mv, opt)
}

// simShrunk returns the minimal schedule that fails like v, and how it
// fails.
func simShrunk(t *testing.T, dir string, cfg simConfig, sched []simStep, v *simViolation, opt simOptions) ([]simStep, *simViolation) {
	os.MkdirAll(dir, 0o700)
	path := filepath.Join(dir, "shrink.db")
	quiet := opt
	quiet.trace, quiet.stats = false, nil
	min := simShrink(sched, func(c []simStep) bool {
		got := simRun(t, path, cfg, c, quiet)
		return got != nil && got.Kind == v.Kind
	})
	return min, simRun(t, path, cfg, min, quiet)
}

func simPrint(t *testing.T, seed uint64, cfg simConfig, sched []simStep, v *simViolation, min []simStep, mv *simViolation, opt simOptions) {
	t.Errorf("sim: seed %d fails: %s\nreplay: go test ./payment -run 'TestSim$' -sim.seed=%d%s -v\nconfig: %s\n"+
		"minimal schedule (%d of %d steps), failing with %s:\n%s",
		seed, v, seed, opt.flags(), cfg, len(min), len(sched), mv, simFormat(min))
}
