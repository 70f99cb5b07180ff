package possim

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The harness: the simulator against the kiosk's real mobypay.Server, or
// against a bare listener, over loopback TCP. Tests synchronise on the
// handler's and the simulator's events, never on sleeps. What it shares
// with mobypay's own server tests is in mobypaytest; what needs the
// simulator or mobypay's types is here.

var srvSecret = mobypaytest.Secret

const srvWait = mobypaytest.Wait

type (
	recHandler = mobypaytest.Recorder[mobypay.Message, mobypay.ConnState]
	connEvent  = mobypaytest.StateEvent[mobypay.ConnState]
)

var _ mobypay.Handler = (*recHandler)(nil)

// startServer runs a server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, cfg mobypay.ServerConfig) (*mobypay.Server, *recHandler) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	rec := mobypaytest.NewRecorder[mobypay.Message, mobypay.ConnState](256)
	srv, err := mobypay.NewServer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	mobypaytest.RunUntilEnd(t, "Serve", srv.Serve)
	return srv, rec
}

// startSim runs a simulator until the test ends and returns its events.
func startSim(t *testing.T, cfg Config) <-chan Event {
	t.Helper()
	ctx := t.Context()
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	events := make(chan Event, 256)
	cfg.OnEvent = func(e Event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mobypaytest.RunUntilEnd(t, "Run", sim.Run)
	return events
}

// awaitSim skips simulator events until one matches.
func awaitSim(t *testing.T, ch <-chan Event, what string, match func(Event) bool) Event {
	t.Helper()
	return mobypaytest.AwaitMatch(t, ch, "simulator event: "+what, match)
}

func simKind(k EventKind) func(Event) bool {
	return func(e Event) bool { return e.Kind == k }
}

func awaitState(t *testing.T, rec *recHandler, want mobypay.ConnState) connEvent {
	t.Helper()
	return mobypaytest.AwaitState(t, rec.States, want)
}

// awaitMsg waits for the next delivered message and checks its type,
// status and txn_id.
func awaitMsg(t *testing.T, rec *recHandler, typ, status, txn string) mobypay.Message {
	t.Helper()
	m := mobypaytest.Await(t, rec.Msgs, typ+" "+status)
	if m.Type != typ || m.Status != status || m.TxnID != txn {
		t.Fatalf("got %s %s %s, want %s %s %s\n%s", m.Type, m.Status, m.TxnID, typ, status, txn, m.Payload)
	}
	return m
}

// kiosk sends the kiosk's messages through a server (srv), or builds them
// for a raw connection (srv nil).
type kiosk struct {
	t     *testing.T
	srv   *mobypay.Server
	codec *mobypay.Codec
}

func newKiosk(t *testing.T, srv *mobypay.Server, secret []byte) *kiosk {
	return &kiosk{t, srv, mobypay.NewCodec(secret)}
}

func (k *kiosk) header(txn string) mobypay.Header {
	return mobypay.Header{TxnID: txn, KioskID: "KIOSK001", Nonce: rand.Text(), Timestamp: time.Now().UnixMilli()}
}

func (k *kiosk) send(frame []byte) {
	k.t.Helper()
	if err := k.srv.Send(frame); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kiosk) request(txn string, sen int64, mode string) {
	k.t.Helper()
	f, err := k.codec.AppendTransactionRequest(nil, k.header(txn), sen, mode)
	if err != nil {
		k.t.Fatal(err)
	}
	k.send(f)
}

func (k *kiosk) selectPlan(txn, plan string) {
	k.t.Helper()
	k.send(k.codec.AppendPlanSelection(nil, k.header(txn), plan))
}

func (k *kiosk) cancel(txn string) {
	k.t.Helper()
	k.send(k.codec.AppendCancel(nil, k.header(txn)))
}
