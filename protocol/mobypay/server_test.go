package mobypay

import (
	"crypto/rand"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

func TestServerOversizedFrameClosesSession(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{MaxFrame: 1024})
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, c, `{"payload": {"type": "ack", "pad": "`+strings.Repeat("x", 2000))
	mobypaytest.ExpectClosed(t, c)
	awaitState(t, rec, Disconnected)
	if n := srv.Stats().Oversize.Load(); n != 1 {
		t.Errorf("Oversize = %d, want 1", n)
	}
}

func TestServerGarbageClosesSessionKeepsAccepting(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{MaxRefusals: 2})
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, c, "hello\r\n{\"payload\": 1}\n")
	// Two refusals are tolerated: a signed frame after them is still
	// heard, which proves the server read them and kept the session.
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN1", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	mobypaytest.Write(t, c, "\x00\xff garbage\n")
	mobypaytest.ExpectClosed(t, c)
	awaitState(t, rec, Disconnected)
	if n := srv.Stats().Malformed.Load(); n != 3 {
		t.Errorf("Malformed = %d, want 3", n)
	}
	// The server still accepts, and a POS that signs is heard.
	pos := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, pos, string(posFrame(t, srvSecret, "TXN2", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
}

func TestServerSlowDripCutOff(t *testing.T) {
	const frameTimeout = 200 * time.Millisecond
	srv, rec := startServer(t, ServerConfig{FrameTimeout: frameTimeout})
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	// Idle between frames is normal: FrameTimeout does not apply.
	mobypaytest.ExpectOpen(t, c, 2*frameTimeout)
	mobypaytest.Write(t, c, `{"payload": {"type": "ack", `)
	took := mobypaytest.ExpectClosed(t, c)
	if took < frameTimeout/2 {
		t.Errorf("closed after %s, before the frame timeout %s", took, frameTimeout)
	}
	awaitState(t, rec, Disconnected)
}

func TestServerOneSession(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	a := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	if ev := awaitState(t, rec, Connected); ev.Peer != a.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.Peer, a.LocalAddr())
	}
	// A reconnect from the same host replaces the session.
	b := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	if ev := awaitState(t, rec, Connected); ev.Peer != b.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.Peer, b.LocalAddr())
	}
	a.SetReadDeadline(time.Now().Add(srvWait))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("replaced connection: %v, want EOF", err)
	}
	if n := srv.Stats().Replaced.Load(); n != 1 {
		t.Errorf("Replaced = %d, want 1", n)
	}
	// Another host is refused while the session is up.
	other := mobypaytest.Dial(t, srv.Addr(), "127.0.0.2")
	mobypaytest.ExpectClosed(t, other)
	if n := srv.Stats().Rejected.Load(); n != 1 {
		t.Errorf("Rejected = %d, want 1", n)
	}
	if peer, _ := srv.Peer(); peer != b.LocalAddr().String() {
		t.Errorf("Peer() = %q, want %s", peer, b.LocalAddr())
	}
	// The session still works.
	mobypaytest.Write(t, b, string(posFrame(t, srvSecret, "TXN1", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	b.Close()
	if ev := awaitState(t, rec, Disconnected); ev.Peer != b.LocalAddr().String() {
		t.Errorf("disconnected %s, want %s", ev.Peer, b.LocalAddr())
	}
	mobypaytest.ExpectNothing(t, rec.States, "ConnState")
}

func TestServerAllowList(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	c := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	mobypaytest.ExpectClosed(t, c)
	if n := srv.Stats().Rejected.Load(); n != 1 {
		t.Errorf("Rejected = %d, want 1", n)
	}
	ok := mobypaytest.Dial(t, srv.Addr(), "127.0.0.2")
	if ev := awaitState(t, rec, Connected); ev.Peer != ok.LocalAddr().String() {
		t.Errorf("connected %s, want %s", ev.Peer, ok.LocalAddr())
	}
	if n := srv.Stats().Sessions.Load(); n != 1 {
		t.Errorf("Sessions = %d, want 1", n)
	}
}

func TestServerSendWithoutPOS(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	k := newKiosk(t, srv, srvSecret)
	if err := srv.Send(k.codec.AppendCancel(nil, k.header("TXN1"))); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send without POS: %v, want ErrNotConnected", err)
	}
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	c.Close()
	awaitState(t, rec, Disconnected)
	if err := srv.Send(k.codec.AppendCancel(nil, k.header("TXN1"))); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send after the POS left: %v, want ErrNotConnected", err)
	}
}

// TestServerReplayAcrossReconnect: nonces are remembered across sessions,
// so a captured result cannot be replayed on a fresh connection.
func TestServerReplayAcrossReconnect(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	frame := string(posFrame(t, srvSecret, "TXN1", time.Now()))
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, c, frame)
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	c.Close()
	awaitState(t, rec, Disconnected)
	c = mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, c, frame)
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "TXN2", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
	if n := srv.Stats().Replayed.Load(); n != 1 {
		t.Errorf("Replayed = %d, want 1", n)
	}
}

// TestServerConnStateOrder: however fast the POS reconnects, the handler
// never hears Disconnected for a session after its successor's Connected.
func TestServerConnStateOrder(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	var last string
	for range 30 {
		c := mobypaytest.Dial(t, srv.Addr(), "")
		last = c.LocalAddr().String()
		c.Close()
	}
	cur := ""
	for {
		ev := mobypaytest.Await(t, rec.States, "ConnState")
		switch ev.State {
		case Connected:
			cur = ev.Peer
		case Disconnected:
			if ev.Peer != cur {
				t.Fatalf("Disconnected %s while %q is the session", ev.Peer, cur)
			}
			cur = ""
		default:
			t.Fatalf("ConnState %v", ev.State)
		}
		if ev.State == Disconnected && ev.Peer == last {
			break
		}
	}
	if got := srv.Stats().Sessions.Load(); got != 30 {
		t.Errorf("Sessions = %d, want 30", got)
	}
}

// posFrame is a POS ack signed like the app signs it.
func posFrame(t *testing.T, secret []byte, txn string, ts time.Time) []byte {
	t.Helper()
	p := `{"type": "ack", "txn_id": "` + txn + `", "status": "processing", "pos_id": "POS001", "timestamp": "` +
		strconv.FormatInt(ts.UnixMilli(), 10) + `", "nonce": "` + rand.Text() + `"}`
	c := NewCodec(secret)
	sig, err := c.AppendSignature(nil, []byte(p))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"payload": ` + p + `, "signature": "` + string(sig) + "\"}\r\n")
}

// gateHandler holds Message calls for txn_ids starting with HOLD until
// the test sends a token on gate (or closes it), and counts handler calls
// that overlap.
type gateHandler struct {
	*recHandler
	gate            chan struct{}
	inside, overlap atomic.Int32
}

func (g *gateHandler) enter() {
	if g.inside.Add(1) > 1 {
		g.overlap.Add(1)
	}
}

func (g *gateHandler) Message(m *Message) {
	g.enter()
	defer g.inside.Add(-1)
	g.recHandler.Message(m)
	if strings.HasPrefix(m.TxnID, "HOLD") {
		<-g.gate
	}
}

func (g *gateHandler) ConnState(s ConnState, p string) {
	g.enter()
	defer g.inside.Add(-1)
	g.recHandler.ConnState(s, p)
}

// startGated serves with a handler whose Message blocks until g.gate closes.
func startGated(t *testing.T) (*gateHandler, *Server) {
	t.Helper()
	g := &gateHandler{
		recHandler: mobypaytest.NewRecorder[Message, ConnState](16),
		gate:       make(chan struct{}),
	}
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: srvSecret}, g)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context()) }()
	t.Cleanup(func() { mobypaytest.Await(t, done, "Serve to return") })
	return g, srv
}

// TestServerHandlerCallsSerialised: a reconnect that proves itself while
// the old session is inside the handler waits for it, so the handler is
// never entered twice and hears the new session only after the old one's
// message.
func TestServerHandlerCallsSerialised(t *testing.T) {
	g, srv := startGated(t)
	gateOpen := false
	defer func() {
		if !gateOpen {
			close(g.gate)
		}
	}()

	a := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, g.recHandler, Connected)
	mobypaytest.Write(t, a, string(posFrame(t, srvSecret, "HOLD1", time.Now())))
	awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, "HOLD1") // now blocked in Message
	// a is proven, so b is held pending until it proves itself too.
	b := mobypaytest.Dial(t, srv.Addr(), "")
	mobypaytest.Write(t, b, string(posFrame(t, srvSecret, "TXN2", time.Now())))
	select {
	case ev := <-g.States:
		t.Fatalf("ConnState %v %s delivered while Message was running", ev.State, ev.Peer)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.gate)
	gateOpen = true
	if ev := awaitState(t, g.recHandler, Connected); ev.Peer != b.LocalAddr().String() {
		t.Errorf("connected %s, want %s", ev.Peer, b.LocalAddr())
	}
	awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, "TXN2")
	if n := g.overlap.Load(); n != 0 {
		t.Errorf("%d overlapping handler calls", n)
	}
}

// TestServerReplacedSessionDrains: what the POS sent before it reconnected
// is still delivered, even if it is unread when the reconnect replaces the
// session. Whether the old session ends by itself first or is replaced is
// a race, so the scenario is repeated; both outcomes must deliver.
func TestServerReplacedSessionDrains(t *testing.T) {
	g, srv := startGated(t)
	defer close(g.gate)

	for i := range 20 {
		hold, txn := "HOLD"+strconv.Itoa(i), "TXN"+strconv.Itoa(i)
		a := mobypaytest.Dial(t, srv.Addr(), "")
		awaitState(t, g.recHandler, Connected)
		mobypaytest.Write(t, a, string(posFrame(t, srvSecret, hold, time.Now())))
		awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, hold) // the session is busy in Message
		// The next frame waits in the socket while the POS leaves and
		// comes back.
		mobypaytest.Write(t, a, string(posFrame(t, srvSecret, txn, time.Now())))
		a.Close()
		b := mobypaytest.Dial(t, srv.Addr(), "")
		g.gate <- struct{}{}
		var sawB, sawTxn bool
		for !sawB || !sawTxn {
			select {
			case e := <-g.States:
				switch {
				case e.State == Connected && e.Peer == b.LocalAddr().String():
					sawB = true
				case e.State == Disconnected && e.Peer == a.LocalAddr().String() && !sawB:
				default:
					t.Fatalf("ConnState %v %s", e.State, e.Peer)
				}
			case m := <-g.Msgs:
				if m.TxnID != txn {
					t.Fatalf("message %s", m.Payload)
				}
				sawTxn = true
			case <-time.After(srvWait):
				t.Fatalf("round %d timed out: connected %v, %s delivered %v", i, sawB, txn, sawTxn)
			}
		}
		b.Close()
		awaitState(t, g.recHandler, Disconnected)
	}
	t.Logf("%d of 20 rounds replaced the session", srv.Stats().Replaced.Load())
}

// TestRetiredSessionReadsWhatWasSent: a replaced session still delivers
// the frames waiting in its socket, tells the old peer (FIN), and ends at
// the drain deadline if the old peer stays silent.
func TestRetiredSessionReadsWhatWasSent(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	pos, conn := tcpPair(t)
	mobypaytest.Write(t, pos, string(posFrame(t, srvSecret, "TXN1", time.Now()))+string(posFrame(t, srvSecret, "TXN2", time.Now())))
	sess := &session{conn: conn, peer: pos.LocalAddr().String(), since: time.Now(), role: roleRetired}
	sess.retire(time.Now().Add(200 * time.Millisecond))
	pos.SetReadDeadline(time.Now().Add(srvWait))
	if _, err := pos.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("old peer read %v, want EOF", err)
	}
	if why := srv.read(sess); why.class != "replaced" {
		t.Errorf("session ended: %s, want replaced", why.class)
	}
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
}
