package mobypay

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// Pings, nonces and replays across restarts: which signed messages prove a
// connection, and which are kept as evidence without being acted on.

// fakeClock is a clock tests step; it starts at the real time so that
// frames signed with it are fresh.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signed seals a payload written like the app (unsorted, spaced).
func signed(t *testing.T, payload string) string {
	t.Helper()
	sig, err := NewCodec(srvSecret).AppendSignature(nil, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return `{"payload": ` + payload + `, "signature": "` + string(sig) + "\"}\n"
}

// TestServerPingsAreKeepalives (defect 10): unsigned pings, however many,
// are keepalives, not refusals; a signed ping without txn_id is not
// delivered, one with a txn_id is. Refusals are judged per window: 16
// within RefusalWindow are tolerated, a 17th closes the session.
func TestServerPingsAreKeepalives(t *testing.T) {
	clock := newFakeClock()
	srv, rec := startServer(t, ServerConfig{Now: clock.Now})
	c := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	awaitState(t, rec, Connected)
	pings := []string{
		`{"type":"ping"}`,
		`{"payload": {"type": "ping"}}`,
		`{"payload": {"type": "ping", "timestamp": "1"}, "signature": "00"}`,
	}
	const n = 40 // a ping every 30 s for 20 minutes
	for i := range n {
		mobypaytest.Write(t, c, pings[i%len(pings)]+"\r\n")
		clock.Add(30 * time.Second)
	}
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN1", clock.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	st := srv.Stats()
	if st.Pings.Load() != n || st.Malformed.Load() != 0 || st.BadSig.Load() != 0 {
		t.Fatalf("Pings %d, Malformed %d, BadSig %d; want %d, 0, 0", st.Pings.Load(), st.Malformed.Load(), st.BadSig.Load(), n)
	}

	ts := strconv.FormatInt(clock.Now().UnixMilli(), 10)
	mobypaytest.Write(t, c, signed(t, `{"type": "ping", "timestamp": "`+ts+`", "nonce": "`+rand.Text()+`"}`))
	mobypaytest.Write(t, c, signed(t, `{"type": "ping", "txn_id": "TXNP", "timestamp": "`+ts+`", "nonce": "`+rand.Text()+`"}`))
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN2", clock.Now())))
	if m := mobypaytest.Await(t, rec.Msgs, "signed ping with txn_id"); m.Type != typePing || m.TxnID != "TXNP" {
		t.Fatalf("got %s %s, want the ping for TXNP", m.Type, m.TxnID)
	}
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
	if got := st.Pings.Load(); got != n+2 {
		t.Errorf("Pings = %d, want %d", got, n+2)
	}

	garbage := func(k int) {
		for range k {
			mobypaytest.Write(t, c, "garbage\n")
		}
	}
	garbage(16)
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN3", clock.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN3") // 16 tolerated
	clock.Add(11 * time.Second)                         // they leave the window
	garbage(16)
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN4", clock.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN4") // 16 again
	garbage(1)                                          // 17 within the window
	mobypaytest.ExpectClosed(t, c)
	awaitState(t, rec, Disconnected)
	if got := st.Malformed.Load(); got != 33 {
		t.Errorf("Malformed = %d, want 33", got)
	}
}

// TestServerNoNonceIsEvidence (defect 2): a correctly signed message with
// no nonce cannot be replay-checked: it goes to Late with ErrNoNonce, never
// to Message.
func TestServerNoNonceIsEvidence(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	mobypaytest.Write(t, c, signed(t, `{"type": "transaction_result", "txn_id": "TXN1", "status": "success", "amount": 10.0, "timestamp": "`+ts+`"}`))
	mobypaytest.Write(t, c, signed(t, `{"type": "transaction_result", "txn_id": "TXN2", "status": "success", "amount": 10.0, "timestamp": "`+ts+`", "nonce": ""}`))
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN3", time.Now())))
	for _, txn := range []string{"TXN1", "TXN2"} {
		l := mobypaytest.Await(t, rec.Lates, "late "+txn)
		if !errors.Is(l.Err, ErrNoNonce) || l.Msg.TxnID != txn || !l.Msg.IsSuccess() {
			t.Errorf("Late(%s, %v), want %s with ErrNoNonce", l.Msg.TxnID, l.Err, txn)
		}
	}
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN3")
	st := srv.Stats()
	if st.NoNonce.Load() != 2 || st.Late.Load() != 2 || st.Received.Load() != 1 || st.Replayed.Load() != 0 {
		t.Errorf("NoNonce %d, Late %d, Received %d, Replayed %d; want 2, 2, 1, 0",
			st.NoNonce.Load(), st.Late.Load(), st.Received.Load(), st.Replayed.Load())
	}
}

// TestServerSeenNoncesRefuseReplayAfterRestart (defect 8): a server
// started with the nonces journaled before a restart refuses a
// byte-identical replay as a replay: not accepted, not kept as late.
func TestServerSeenNoncesRefuseReplayAfterRestart(t *testing.T) {
	const nonce = "joHQ83Mp9dWbFsREUHDRCg=="
	ts := strconv.FormatInt(time.Now().Add(-20*time.Second).UnixMilli(), 10)
	frame := signed(t, `{"type": "transaction_result", "txn_id": "TXN1", "status": "success", "amount": 10.0, "timestamp": "`+ts+`", "nonce": "`+nonce+`"}`)
	for _, restarted := range []bool{false, true} {
		t.Run(fmt.Sprint("restarted=", restarted), func(t *testing.T) {
			cfg := ServerConfig{}
			if restarted {
				cfg.Seen = []SeenNonce{{Nonce: nonce, Forget: time.Now().Add(100 * time.Second)}}
			}
			srv, rec := startServer(t, cfg)
			c := mobypaytest.Dial(t, srv.Addr(), "")
			awaitState(t, rec, Connected)
			mobypaytest.Write(t, c, frame)
			mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN2", time.Now())))
			if !restarted { // control: the frame itself is good
				awaitMsg(t, rec, TypeTransactionResult, StatusSuccess, "TXN1")
			}
			awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
			mobypaytest.ExpectNothing(t, rec.Lates, "late message")
			want := int64(0)
			if restarted {
				want = 1
			}
			if n := srv.Stats().Replayed.Load(); n != want {
				t.Errorf("Replayed = %d, want %d", n, want)
			}
		})
	}
}

// A signed ping's nonce is not journaled, so after a restart a captured
// ping from before it passes the replay guard. It must not prove the
// connection: a squatter replaying one would otherwise become the last
// proven host and lock the real POS out across restarts.
func TestServerCapturedPingProvesNothing(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	c := mobypaytest.Dial(t, srv.Addr(), "127.0.0.2")
	awaitState(t, rec, Connected)
	ping := func(at time.Time) string {
		return signed(t, `{"type": "ping", "timestamp": "`+strconv.FormatInt(at.UnixMilli(), 10)+`", "nonce": "`+rand.Text()+`"}`)
	}
	// Handled in order: once the nonce-less message reaches Late, the
	// ping before it has been judged.
	sync := func() {
		mobypaytest.Write(t, c, signed(t, `{"type": "ack", "txn_id": "SYNC", "status": "processing", "timestamp": "`+strconv.FormatInt(time.Now().UnixMilli(), 10)+`"}`))
		mobypaytest.Await(t, rec.Lates, "nonce-less sync message")
	}
	mobypaytest.Write(t, c, ping(time.Now().Add(-20*time.Second))) // inside the window, before the start
	sync()
	if a := srv.LastProven(); a.IsValid() {
		t.Fatalf("a ping stamped before the server started proved %s", a)
	}
	mobypaytest.Write(t, c, ping(time.Now()))
	sync()
	if a := srv.LastProven(); a != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("a fresh signed ping did not prove the connection: last proven %v", a)
	}
}
