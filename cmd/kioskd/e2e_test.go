package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/logsink"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// kiosk is the whole service in-process, as `kioskd run` wires it, on
// loopback with its control socket in a temp dir.
type kiosk struct {
	dir, cfgPath, pos string
	routes            []string // the control API's mux patterns
}

func startKiosk(t *testing.T) *kiosk {
	t.Helper()
	return startKioskWith(t, nil)
}

// startKioskWith is startKiosk with seed, when not nil, run on the data
// directory before the service starts (to leave a journal behind).
func startKioskWith(t *testing.T, seed func(dataDir string)) *kiosk {
	t.Helper()
	return startKioskConfig(t, "", seed)
}

// startKioskConfig is startKioskWith with extra config sections after
// the test's own.
func startKioskConfig(t *testing.T, extra string, seed func(dataDir string)) *kiosk {
	t.Helper()
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, `[payment]
cancel_grace = "1s"
reconnect_grace = "1s"
ipp_auto_select = "none"
[payment.timeouts.card]
ack = "2s"
result = "2s"
[payment.timeouts.ipp]
ack = "2s"
result = "2s"
plan = "2s"
[relay]
pulse = "10ms"
`+extra)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if seed != nil {
		seed(cfg.DataDir)
	}
	ring := logsink.NewRing(100)
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan started, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(logsink.NewRingHandler(slog.NewTextHandler(io.Discard, nil), ring, slog.LevelInfo)), ring, up)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case s := <-up:
		return &kiosk{dir: dir, cfgPath: cfgPath, pos: s.POSAddr, routes: s.Routes}
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return nil
}

// sim starts the POS simulator against the kiosk and waits until the
// kiosk sees it connected.
func (k *kiosk) sim(t *testing.T, behaviour possim.Behaviour) {
	t.Helper()
	connected := make(chan struct{}, 1)
	s, err := possim.New(possim.Config{
		Addr: k.pos, Secret: []byte(testSecret), Behaviour: behaviour, Delay: 300 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnEvent: func(e possim.Event) {
			if e.Kind == possim.Connected {
				select {
				case connected <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("simulator did not connect")
	}
	// The kiosk learns of the connection on its own goroutine. Its event
	// stream opens with the present state, so waiting on it cannot miss it.
	k.waitEvent(t, "POS connected", func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
}

// follow subscribes to the daemon's event stream for 10 s at most, or
// until stop; the stream opens with the present state.
func (k *kiosk) follow(t *testing.T) (events <-chan payment.Event, stop func()) {
	t.Helper()
	cf := clientFlags{config: k.cfgPath}
	c, err := cf.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ch, err := c.Follow(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return ch, cancel
}

func (k *kiosk) waitEvent(t *testing.T, what string, ok func(payment.Event) bool) payment.Event {
	t.Helper()
	ch, stop := k.follow(t)
	defer stop()
	for e := range ch {
		if ok(e) {
			return e
		}
	}
	t.Fatalf("no event: %s", what)
	return payment.Event{}
}

// payAcked runs `kioskd pay` in the background and returns, once the
// payment is acked, the channel its final record arrives on and its id.
func (k *kiosk) payAcked(t *testing.T, args ...string) (<-chan payment.Txn, string) {
	t.Helper()
	result := make(chan payment.Txn, 1)
	go func() {
		_, out, _ := kioskd(t, "", append([]string{"pay", "-json", "-config", k.cfgPath}, args...)...)
		var tx payment.Txn
		json.Unmarshal([]byte(out), &tx)
		result <- tx
	}()
	id := k.waitEvent(t, "payment acked", func(e payment.Event) bool {
		return e.Txn != nil && e.Txn.State == payment.Acked
	}).Txn.ID
	return result, id
}

func (k *kiosk) pulses(t *testing.T) int {
	b, err := os.ReadFile(filepath.Join(k.dir, "data", "sim", "vends.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), " on ")
}

// TestPayThroughEveryBehaviour drives `kioskd pay` against the service
// with the simulator in each of its behaviours and checks the outcome, the
// exit code and the relay.
func TestPayThroughEveryBehaviour(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cases := []struct {
		behaviour possim.Behaviour
		args      []string
		exit      int
		state     payment.State
		review    bool
		pulses    int
	}{
		{possim.Approve, []string{"-mode", "card"}, exitOK, payment.Approved, false, 1},
		{possim.Approve, []string{"-mode", "bnpl"}, exitOK, payment.Approved, false, 1},
		{possim.Approve, []string{"-mode", "duitnow_qr"}, exitOK, payment.Approved, false, 1},
		{possim.Approved, []string{}, exitOK, payment.Approved, false, 1},
		{possim.IPP, []string{"-mode", "ipp", "-plan", "ipp-6m"}, exitOK, payment.Approved, false, 1},
		{possim.Split, []string{}, exitOK, payment.Approved, false, 1},
		{possim.Merged, []string{}, exitOK, payment.Approved, false, 1},
		{possim.Slow, []string{"-mode", "duitnow_qr"}, exitOK, payment.Approved, false, 1},
		{possim.Replay, []string{}, exitOK, payment.Approved, false, 1},
		{possim.Decline, []string{}, exitDeclined, payment.Declined, false, 0},
		{possim.Error, []string{}, exitDeclined, payment.Declined, false, 0},
		{possim.WrongAmount, []string{}, exitUnclear, payment.Approved, true, 0},
		{possim.Silent, []string{}, exitUnclear, payment.TimedOut, false, 0},
		{possim.AckOnly, []string{}, exitUnclear, payment.TimedOut, false, 0},
		{possim.BadSig, []string{}, exitUnclear, payment.TimedOut, false, 0},
		{possim.Stale, []string{}, exitUnclear, payment.TimedOut, true, 0},
		{possim.WrongTxn, []string{}, exitUnclear, payment.TimedOut, false, 0},
		{possim.Drop, []string{}, exitUnclear, payment.Unknown, true, 0},
		{possim.IPP, []string{"-mode", "ipp"}, exitUnclear, payment.TimedOut, false, 0}, // nobody picks a plan
	}
	for _, tc := range cases {
		name := string(tc.behaviour) + strings.Join(tc.args, "")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := startKiosk(t)
			k.sim(t, tc.behaviour)
			args := append([]string{"pay", "-amount", "12.50", "-json", "-config", k.cfgPath}, tc.args...)
			code, out, errs := kioskd(t, "", args...)
			var tx payment.Txn
			if err := json.Unmarshal([]byte(out), &tx); err != nil {
				t.Fatalf("pay output %q: %v\n%s", out, err, errs)
			}
			if code != tc.exit || tx.State != tc.state || (tx.Review != "") != tc.review {
				t.Fatalf("exit %d state %s review %q; want exit %d state %s review %v\n%s", code, tx.State, tx.Review, tc.exit, tc.state, tc.review, errs)
			}
			if n := k.pulses(t); n != tc.pulses {
				t.Fatalf("%d relay pulses, want %d", n, tc.pulses)
			}
		})
	}
}

// TestCancelFromCLI: a cancel while the POS waits for the customer, as
// a controller gives it: without the txn id. This POS acks the cancel and
// sends no final result, so the payment ends cancelled when the grace
// period runs out. Then there is nothing to cancel.
func TestCancelFromCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	k := startKiosk(t)
	k.sim(t, possim.AckOnly)
	// Once the payment is in progress, cancel it.
	result, id := k.payAcked(t, "-amount", "3.00")
	if code, out, errs := kioskd(t, "", "cancel", "-config", k.cfgPath); code != 0 || !strings.HasPrefix(out, "cancel_requested "+id+" ") {
		t.Fatalf("cancel: exit %d %q %s", code, out, errs)
	}
	tx := <-result
	if tx.State != payment.Cancelled || tx.Evidence != 2 { // ack processing, ack received
		t.Fatalf("after cancel: %+v", tx)
	}
	if code, out, errs := kioskd(t, "", "cancel", "-config", k.cfgPath); code != exitOK || out != "no payment in progress\n" {
		t.Errorf("cancel with nothing in progress: exit %d %q %s", code, out, errs)
	}
	if code, _, errs := kioskd(t, "", "cancel", "-config", k.cfgPath, id); code != exitFail || !strings.Contains(errs, "not in progress") {
		t.Errorf("cancel %s once it ended: exit %d %s", id, code, errs)
	}
	code, out, _ := kioskd(t, "", "journal", "-json", "-n", "1", "-config", k.cfgPath)
	var rec map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("journal: %d %q", code, out)
	}
	for _, key := range []string{"txn_id", "mode", "amount", "state", "vend", "pos_transaction_id", "error", "created_at", "updated_at"} {
		if _, ok := rec[key]; !ok {
			t.Errorf("journal line lacks %s: %s", key, out)
		}
	}
	if rec["amount"] != "3.00" {
		t.Errorf("journal amount %v, want the string 3.00", rec["amount"])
	}
}

// TestClientsWithoutDaemon: every client command exits 4 when no daemon
// answers, which a script tells apart from its own usage error (2): the
// same command may work once the daemon is back. pay refuses fast when
// no POS is connected.
func TestClientsWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"pay", "-amount", "1.00", "-control", sock},
		{"status", "-control", sock},
		{"journal", "-control", sock},
		{"journal", "-unknown", "-control", sock},
		{"cancel", "-control", sock, "TXN1"},
		{"cancel", "-control", sock},
		{"plan", "-control", sock, "TXN1", "ipp-6m"},
		{"review", "-control", sock},
		{"review", "settle", "-control", sock, "-note", "refunded", "TXN1"},
		{"logs", "-control", sock},
		{"selftest", "-control", sock},
	} {
		if code, _, errs := kioskd(t, "", args...); code != exitUnreachable || !strings.Contains(errs, "not reachable") {
			t.Errorf("%v: exit %d %s", args, code, errs)
		}
	}
	// Its own usage errors are still 2, daemon or none.
	for _, args := range [][]string{
		{"pay", "-control", sock},
		{"status", "-control", sock, "extra"},
		{"review", "settle", "-control", sock, "TXN1"},
	} {
		if code, _, errs := kioskd(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 %s", args, code, errs)
		}
	}
	k := startKiosk(t)
	// status names the watchdog the daemon holds (on a board, the
	// kernel driver's identity: scripts/vm checks i6300esb and softdog).
	if code, out, errs := kioskd(t, "", "status", "-config", k.cfgPath); code != exitOK || !strings.Contains(out, "watchdog: fake watchdog, timeout ") {
		t.Errorf("status: exit %d, no watchdog line: %s%s", code, out, errs)
	}
	code, _, errs := kioskd(t, "", "pay", "-amount", "1.00", "-config", k.cfgPath)
	if code != exitDeclined || !strings.Contains(errs, "not connected") {
		t.Fatalf("pay with no POS: exit %d %s", code, errs)
	}
	if code, _, _ := kioskd(t, "", "pay", "-amount", "1.005", "-config", k.cfgPath); code != exitUsage {
		t.Fatalf("bad amount: exit %d", code)
	}
}

// TestReviewAndLogs: a payment the kiosk could not settle shows in
// `kioskd review` until an operator settles it with a note; the daemon's
// recent log lines are readable with `kioskd logs`.
func TestReviewAndLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	k := startKiosk(t)
	k.sim(t, possim.WrongAmount)
	code, out, _ := kioskd(t, "", "pay", "-amount", "4.00", "-json", "-config", k.cfgPath)
	var tx payment.Txn
	if code != exitUnclear || json.Unmarshal([]byte(out), &tx) != nil || tx.Review == "" {
		t.Fatalf("pay: %d %s", code, out)
	}
	if code, out, _ := kioskd(t, "", "review", "-config", k.cfgPath); code != 0 || !strings.Contains(out, tx.ID) || !strings.Contains(out, "amount mismatch") {
		t.Fatalf("review: %d\n%s", code, out)
	}
	if code, _, _ := kioskd(t, "", "review", "settle", "-config", k.cfgPath, tx.ID); code != exitUsage {
		t.Fatalf("settle without a note: exit %d", code)
	}
	if code, out, errs := kioskd(t, "", "review", "settle", "-config", k.cfgPath, "-note", "refunded RM 5.00 in cash", tx.ID); code != 0 || !strings.Contains(out, "refunded RM 5.00") {
		t.Fatalf("settle: %d %s %s", code, out, errs)
	}
	if _, out, _ := kioskd(t, "", "review", "-config", k.cfgPath); !strings.Contains(out, "nothing to review") {
		t.Fatalf("after settling:\n%s", out)
	}
	if _, out, _ := kioskd(t, "", "review", "-all", "-config", k.cfgPath); !strings.Contains(out, "settled ") {
		t.Fatalf("review -all:\n%s", out)
	}
	if code, _, errs := kioskd(t, "", "review", "settle", "-config", k.cfgPath, "-note", "again", tx.ID); code != exitFail || !strings.Contains(errs, "settled already") {
		t.Fatalf("second settle: %d %s", code, errs)
	}
	code, out, _ = kioskd(t, "", "logs", "-n", "200", "-config", k.cfgPath)
	if code != 0 || !strings.Contains(out, "msg=payment") || !strings.Contains(out, tx.ID) {
		t.Fatalf("logs: %d\n%s", code, out)
	}
	if code, out, _ := kioskd(t, "", "logs", "-n", "3", "-config", k.cfgPath); code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("logs -n 3: %d\n%s", code, out)
	}
}

func TestClientFindsTheMachineConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.toml")
	os.WriteFile(data, []byte("[control]\nsocket = \"/run/from-data.sock\"\n"), 0o600)
	etc := filepath.Join(dir, "etc.toml")
	os.WriteFile(etc, []byte("[control]\nsocket = \"/run/from-etc.sock\"\n"), 0o600)
	old := configSearch
	t.Cleanup(func() { configSearch = old })
	configSearch = []string{filepath.Join(dir, "missing.toml"), data, etc}
	t.Setenv("KIOSKD_CONFIG", "")
	sock := func(cf clientFlags) string {
		c, err := cf.client()
		if err != nil {
			t.Fatal(err)
		}
		return c.Socket()
	}
	if got := sock(clientFlags{}); got != "/run/from-data.sock" {
		t.Errorf("search found %s, want the data partition's config", got)
	}
	t.Setenv("KIOSKD_CONFIG", etc)
	if got := sock(clientFlags{}); got != "/run/from-etc.sock" {
		t.Errorf("KIOSKD_CONFIG gave %s", got)
	}
	if got := sock(clientFlags{control: "/x.sock"}); got != "/x.sock" {
		t.Errorf("-control gave %s", got)
	}
}
