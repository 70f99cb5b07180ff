package mobypay

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The server tests use real loopback TCP and raw clients, for what no POS
// app would send as much as for what it does. They synchronise on the
// handler's events, never on sleeps. The server against the POS simulator,
// behaviour by behaviour, is tested in package possim: mobypay cannot
// import its own simulator. What both share is in mobypaytest; what needs
// this package's types is here.

var srvSecret = mobypaytest.Secret

const srvWait = mobypaytest.Wait

type (
	recHandler = mobypaytest.Recorder[Message, ConnState]
	connEvent  = mobypaytest.StateEvent[ConnState]
)

var _ Handler = (*recHandler)(nil)

// startServer runs a server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, cfg ServerConfig) (*Server, *recHandler) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	rec := mobypaytest.NewRecorder[Message, ConnState](256)
	srv, err := NewServer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	mobypaytest.RunUntilEnd(t, "Serve", srv.Serve)
	return srv, rec
}

func awaitState(t *testing.T, rec *recHandler, want ConnState) connEvent {
	t.Helper()
	return mobypaytest.AwaitState(t, rec.States, want)
}

// awaitMsg waits for the next delivered message and checks its type,
// status and txn_id.
func awaitMsg(t *testing.T, rec *recHandler, typ, status, txn string) Message {
	t.Helper()
	m := mobypaytest.Await(t, rec.Msgs, typ+" "+status)
	if m.Type != typ || m.Status != status || m.TxnID != txn {
		t.Fatalf("got %s %s %s, want %s %s %s\n%s", m.Type, m.Status, m.TxnID, typ, status, txn, m.Payload)
	}
	return m
}

// kiosk sends the kiosk's messages through a server.
type kiosk struct {
	t     *testing.T
	srv   *Server
	codec *Codec
}

func newKiosk(t *testing.T, srv *Server, secret []byte) *kiosk {
	return &kiosk{t, srv, NewCodec(secret)}
}

func (k *kiosk) header(txn string) Header {
	return Header{TxnID: txn, KioskID: "KIOSK001", Nonce: rand.Text(), Timestamp: time.Now().UnixMilli()}
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
