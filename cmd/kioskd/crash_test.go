package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// The tests in this file run the real daemon as a child process (this test
// binary, re-executed as kioskd), talk to it over a real unix socket and a
// real loopback TCP POS connection, and kill it with SIGKILL.

const testSecret = "e2e-secret-not-the-dev-key"

// daemon is one kioskd process over a data directory.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	posAddr string
	c       *control.Client
	exited  chan struct{}
	waitErr error       // how the process ended, once exited is closed
	lines   chan string // the daemon's log, one event per line
	mu      sync.Mutex
	log     strings.Builder
}

// logText returns everything the daemon logged so far.
func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// waitLog waits for a log line containing s.
func (d *daemon) waitLog(s string) string {
	d.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l := <-d.lines:
			if strings.Contains(l, s) {
				return l
			}
		case <-d.exited:
			d.t.Fatalf("kioskd exited waiting for %q:\n%s", s, d.logText())
		case <-deadline:
			d.t.Fatalf("no log line %q:\n%s", s, d.logText())
		}
	}
}

// writeTestConfig writes a config for a kiosk on loopback in dir; body
// adds the test's own tables (payment timeouts, relay pulse, ...).
func writeTestConfig(t *testing.T, dir, body string) string {
	t.Helper()
	conf := fmt.Sprintf(`kiosk_id = "KIOSK-T"
data_dir = %q
log_level = "debug"

[pos]
listen = "127.0.0.1:0"
secret = %q

[control]
socket = %q

%s`, filepath.Join(dir, "data"), testSecret, filepath.Join(dir, "ctl.sock"), body)
	path := filepath.Join(dir, "kioskd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// crashConfig has long timers: each crash test decides when things happen.
func crashConfig(pulse time.Duration) string {
	return fmt.Sprintf(`[payment]
ipp_auto_select = "none"
cancel_grace = "10m"
reconnect_grace = "10m"

[payment.timeouts.card]
ack = "1h"
result = "1h"

[payment.timeouts.ipp]
ack = "1h"
result = "1h"
plan = "1h"

[relay]
pulse = %q
`, pulse.String())
}

var posListenRE = regexp.MustCompile(`pos_listen=(127\.0\.0\.1:\d+)`)

// spawnDaemon starts `kioskd run` as a process of its own and follows
// its log; the process is killed when the test ends.
func spawnDaemon(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "KIOSKD_TEST_AS_DAEMON=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, exited: make(chan struct{}), lines: make(chan string, 4096)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.lines <- sc.Text():
			default: // nobody is waiting for old lines
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	// Wait only once the log is read to its end, as exec requires.
	go func() { <-read; d.waitErr = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.kill() })
	return d
}

// startDaemon spawns kioskd and waits until it takes payments.
func startDaemon(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	d := spawnDaemon(t, cfgPath)
	m := posListenRE.FindStringSubmatch(d.waitLog("kioskd started"))
	if m == nil {
		t.Fatalf("no pos_listen in the start line:\n%s", d.logText())
	}
	d.posAddr = m[1]
	cf := clientFlags{config: cfgPath}
	var err error
	if d.c, err = cf.client(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *daemon) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// posPeer is a scripted POS terminal: the test decides every byte it sends.
type posPeer struct {
	t     *testing.T
	conn  net.Conn
	codec *mobypay.Codec
	fr    *mobypay.FrameReader
}

func dialPOS(t *testing.T, addr string) *posPeer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &posPeer{t: t, conn: conn, codec: mobypay.NewCodec([]byte(testSecret)), fr: mobypay.NewFrameReader(conn, 0)}
}

// expect reads the next kiosk message and checks its type.
func (p *posPeer) expect(typ string) mobypay.Message {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := p.fr.Next()
	if err != nil {
		p.t.Fatalf("POS waiting for %s: %v", typ, err)
	}
	if err := p.codec.Open(frame); err != nil {
		p.t.Fatalf("kiosk message does not verify: %v", err)
	}
	var m mobypay.Message
	if err := p.codec.Decode(&m); err != nil || m.Type != typ {
		p.t.Fatalf("kiosk sent %q (%v), want %s", m.Type, err, typ)
	}
	return m
}

// send signs and writes a POS message with a fresh timestamp and nonce.
func (p *posPeer) send(fields string) {
	p.t.Helper()
	payload := fmt.Sprintf(`{%s,"pos_id":"POS001","timestamp":"%d","nonce":"%s"}`, fields, time.Now().UnixMilli(), uuid.NewString())
	frame, err := p.codec.Seal(nil, []byte(payload))
	if err != nil {
		p.t.Fatal(err)
	}
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.conn.Write(frame); err != nil {
		p.t.Fatal(err)
	}
}

// watch follows the daemon's event stream.
type watch struct {
	t  *testing.T
	ch <-chan payment.Event
}

func (d *daemon) watch(ctx context.Context) *watch {
	ch, err := d.c.Follow(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return &watch{d.t, ch}
}

func (w *watch) until(what string, ok func(payment.Event) bool) payment.Event {
	w.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e, open := <-w.ch:
			if !open {
				w.t.Fatalf("event stream ended waiting for %s", what)
			}
			if ok(e) {
				return e
			}
		case <-deadline:
			w.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (w *watch) txn(id string, ok func(payment.Txn) bool) payment.Txn {
	w.t.Helper()
	return *w.until(id, func(e payment.Event) bool { return e.Txn != nil && e.Txn.ID == id && ok(*e.Txn) }).Txn
}

func (w *watch) connected() {
	w.t.Helper()
	w.until("POS connected", func(e payment.Event) bool { return e.POS != nil && e.POS.State == "connected" })
}

func vendPulses(t *testing.T, dir, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "sim", "vends.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), " on "+id+" ")
}

func (d *daemon) pay(mode, amount string) payment.Txn {
	d.t.Helper()
	tx, _, err := d.c.Pay(context.Background(), control.PayRequest{Amount: amount, Mode: mode}, "")
	if err != nil {
		d.t.Fatalf("pay: %v", err)
	}
	return tx
}

func (d *daemon) get(id string) payment.Txn {
	d.t.Helper()
	tx, err := d.c.Payment(context.Background(), id)
	if err != nil {
		d.t.Fatalf("get %s: %v", id, err)
	}
	return tx
}

// TestCrashAtEveryState kills kioskd with SIGKILL at each state a payment
// passes through, restarts it on the same journal, and checks that the
// payment is neither lost nor vended twice, and that a success arriving
// after the restart is recorded and flagged, never vended.
func TestCrashAtEveryState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	type outcome struct {
		state  payment.State
		vend   payment.Vend
		review bool
		pulses int
	}
	cases := []struct {
		stop  string
		mode  string
		drive func(d *daemon, p *posPeer, w *watch, id string)
		want  outcome
	}{
		{"sent", "card", func(d *daemon, p *posPeer, w *watch, id string) {}, outcome{payment.Unknown, payment.VendNone, true, 0}},
		{"acked", "card", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"ack","status":"processing","txn_id":"` + id + `"`)
			w.txn(id, func(t payment.Txn) bool { return t.State == payment.Acked })
		}, outcome{payment.Unknown, payment.VendNone, true, 0}},
		{"plans_offered", "ipp", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"ack","status":"processing","txn_id":"` + id + `"`)
			p.send(`"type":"transaction_result","status":"ipp_plans","txn_id":"` + id + `","amount":12.5,"plans":[{"planId":"pay-in-full","frequency":"","totalInstallments":0,"installmentDetails":[]},{"planId":"6m","frequency":"monthly","totalInstallments":6,"installmentDetails":[]}]`)
			w.txn(id, func(t payment.Txn) bool { return t.State == payment.PlansOffered })
		}, outcome{payment.Unknown, payment.VendNone, true, 0}},
		{"plan_selected", "ipp", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"transaction_result","status":"ipp_plans","txn_id":"` + id + `","amount":12.5,"plans":[{"planId":"6m","frequency":"monthly","totalInstallments":6,"installmentDetails":[]},{"planId":"pay-in-full"}]`)
			w.txn(id, func(t payment.Txn) bool { return t.State == payment.PlansOffered })
			if _, err := d.c.SelectPlan(context.Background(), id, "6m"); err != nil {
				t.Fatal(err)
			}
			if m := p.expect(mobypay.TypeIPPPlanSelection); m.PlanID != "6m" {
				t.Fatalf("plan selection for %q", m.PlanID)
			}
		}, outcome{payment.Unknown, payment.VendNone, true, 0}},
		{"cancel_requested", "card", func(d *daemon, p *posPeer, w *watch, id string) {
			if _, err := d.c.Cancel(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			p.expect(mobypay.TypeCancelTransaction)
			p.send(`"type":"ack","status":"received","txn_id":"` + id + `"`)
		}, outcome{payment.Unknown, payment.VendNone, true, 0}},
		{"releasing", "card", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"transaction_result","status":"success","txn_id":"` + id + `","amount":12.5,"transaction_id":"000410"`)
			w.txn(id, func(t payment.Txn) bool { return t.Vend == payment.VendReleasing })
			// Kill inside the relay pulse.
			d.waitLog("relay on (simulated)")
		}, outcome{payment.Approved, payment.VendUnknown, true, 1}},
		{"released", "card", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"transaction_result","status":"approved","txn_id":"` + id + `","amount":12.5`)
			w.txn(id, func(t payment.Txn) bool { return t.Vend == payment.VendReleased })
		}, outcome{payment.Approved, payment.VendReleased, false, 1}},
		{"declined", "card", func(d *daemon, p *posPeer, w *watch, id string) {
			p.send(`"type":"transaction_result","status":"failed","error_message":"USER_ABORT","txn_id":"` + id + `","amount":12.5`)
			w.txn(id, func(t payment.Txn) bool { return t.State == payment.Declined })
		}, outcome{payment.Declined, payment.VendNone, false, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.stop, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pulse := 50 * time.Millisecond
			if tc.stop == "releasing" {
				pulse = 20 * time.Second // long enough to kill inside it
			}
			cfg := writeTestConfig(t, dir, crashConfig(pulse))
			d := startDaemon(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := d.watch(ctx)
			p := dialPOS(t, d.posAddr)
			w.connected()
			tx := d.pay(tc.mode, "12.50")
			if m := p.expect(mobypay.TypeTransactionRequest); m.TxnID != tx.ID || m.Amount != 12.5 || m.PaymentMode != tc.mode {
				t.Fatalf("request %+v for %+v", m, tx)
			}
			tc.drive(d, p, w, tx.ID)
			d.kill()
			cancel()

			d2 := startDaemon(t, cfg)
			got := d2.get(tx.ID)
			if got.State != tc.want.state || got.Vend != tc.want.vend || (got.Review != "") != tc.want.review {
				t.Fatalf("after restart: state %s vend %s review %q; want %+v\n%s", got.State, got.Vend, got.Review, tc.want, d2.logText())
			}
			if n := vendPulses(t, dir, tx.ID); n != tc.want.pulses {
				t.Fatalf("%d relay pulses, want %d", n, tc.want.pulses)
			}
			// The POS reconnects and (late, but fresh) reports success. It
			// is kept and, unless the payment was already vended, flagged;
			// it is never vended.
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			w2 := d2.watch(ctx2)
			p2 := dialPOS(t, d2.posAddr)
			w2.connected()
			p2.send(`"type":"transaction_result","status":"success","txn_id":"` + tx.ID + `","amount":12.5`)
			after := w2.txn(tx.ID, func(t payment.Txn) bool { return t.Evidence > got.Evidence })
			if after.State != got.State || after.Vend != got.Vend {
				t.Fatalf("late success changed the payment: %+v -> %+v", got, after)
			}
			if after.State != payment.Approved && after.Review == "" {
				t.Fatalf("late success after %s not flagged", after.State)
			}
			if n := vendPulses(t, dir, tx.ID); n != tc.want.pulses {
				t.Fatalf("%d relay pulses after the late success, want %d", n, tc.want.pulses)
			}
		})
	}
}
