package mobypay

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The server tests use real loopback TCP and raw clients, for what no POS
// app would send as much as for what it does. They synchronise on the
// handler's events, never on sleeps. The server against the POS simulator,
// behaviour by behaviour, is tested in package possim: mobypay cannot
// import its own simulator.

var srvSecret = []byte("server-test-secret")

const srvWait = 5 * time.Second // bound on any single wait

type lateMsg struct {
	m   Message
	err error
}

type connEvent struct {
	s    ConnState
	peer string
}

// recHandler records every handler call on a channel.
type recHandler struct {
	msgs   chan Message
	late   chan lateMsg
	states chan connEvent
}

func (r *recHandler) Message(m *Message)              { r.msgs <- *m }
func (r *recHandler) Late(m *Message, err error)      { r.late <- lateMsg{*m, err} }
func (r *recHandler) ConnState(s ConnState, p string) { r.states <- connEvent{s, p} }

// startServer runs a server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, cfg ServerConfig) (*Server, *recHandler) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = srvSecret
	}
	rec := &recHandler{make(chan Message, 256), make(chan lateMsg, 256), make(chan connEvent, 256)}
	srv, err := NewServer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context()) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(srvWait):
			t.Errorf("Serve did not return")
		}
	})
	return srv, rec
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(srvWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// expectNothing fails if anything is queued on ch now. It is only used
// after a later event proved that the server has passed the point where
// the unwanted value would have been delivered.
func expectNothing[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

func awaitState(t *testing.T, rec *recHandler, want ConnState) connEvent {
	t.Helper()
	ev := await(t, rec.states, "ConnState "+want.String())
	if ev.s != want {
		t.Fatalf("ConnState %v (%s), want %v", ev.s, ev.peer, want)
	}
	return ev
}

// awaitMsg waits for the next delivered message and checks its type,
// status and txn_id.
func awaitMsg(t *testing.T, rec *recHandler, typ, status, txn string) Message {
	t.Helper()
	m := await(t, rec.msgs, typ+" "+status)
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

// dialFrom opens a raw client connection from a chosen loopback address.
func dialFrom(t *testing.T, addr net.Addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: srvWait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.DialContext(t.Context(), "tcp", addr.String())
	if err != nil {
		if local != "" {
			t.Skipf("cannot dial from %s: %v", local, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads until the server closes c, which must happen before
// the deadline. It returns how long that took.
func expectClosed(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(srvWait))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %s", srvWait)
		}
		return time.Since(start)
	}
}

// expectOpen checks that the server leaves c open for d.
func expectOpen(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection closed early: %v", err)
	}
	c.SetReadDeadline(time.Time{})
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(srvWait))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func TestServerOversizedFrameClosesSession(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{MaxFrame: 1024})
	c := dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	write(t, c, `{"payload": {"type": "ack", "pad": "`+strings.Repeat("x", 2000))
	expectClosed(t, c)
	awaitState(t, rec, Disconnected)
	if n := srv.Stats().Oversize.Load(); n != 1 {
		t.Errorf("Oversize = %d, want 1", n)
	}
}

func TestServerGarbageClosesSessionKeepsAccepting(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{MaxRefusals: 2})
	c := dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	write(t, c, "hello\r\n{\"payload\": 1}\n")
	expectOpen(t, c, 50*time.Millisecond) // two refusals are tolerated
	write(t, c, "\x00\xff garbage\n")
	expectClosed(t, c)
	awaitState(t, rec, Disconnected)
	if n := srv.Stats().Malformed.Load(); n != 3 {
		t.Errorf("Malformed = %d, want 3", n)
	}
	// The server still accepts, and a POS that signs is heard.
	pos := dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	write(t, pos, string(posFrame(t, srvSecret, "TXN1", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
}

func TestServerSlowDripCutOff(t *testing.T) {
	const frameTimeout = 200 * time.Millisecond
	srv, rec := startServer(t, ServerConfig{FrameTimeout: frameTimeout})
	c := dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	// Idle between frames is normal: FrameTimeout does not apply.
	expectOpen(t, c, 2*frameTimeout)
	write(t, c, `{"payload": {"type": "ack", `)
	took := expectClosed(t, c)
	if took < frameTimeout/2 {
		t.Errorf("closed after %s, before the frame timeout %s", took, frameTimeout)
	}
	awaitState(t, rec, Disconnected)
}

func TestServerOneSession(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	a := dialFrom(t, srv.Addr(), "127.0.0.1")
	if ev := awaitState(t, rec, Connected); ev.peer != a.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.peer, a.LocalAddr())
	}
	// A reconnect from the same host replaces the session.
	b := dialFrom(t, srv.Addr(), "127.0.0.1")
	if ev := awaitState(t, rec, Connected); ev.peer != b.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.peer, b.LocalAddr())
	}
	a.SetReadDeadline(time.Now().Add(srvWait))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("replaced connection: %v, want EOF", err)
	}
	if n := srv.Stats().Replaced.Load(); n != 1 {
		t.Errorf("Replaced = %d, want 1", n)
	}
	// Another host is refused while the session is up.
	other := dialFrom(t, srv.Addr(), "127.0.0.2")
	expectClosed(t, other)
	if n := srv.Stats().Rejected.Load(); n != 1 {
		t.Errorf("Rejected = %d, want 1", n)
	}
	if peer, _ := srv.Peer(); peer != b.LocalAddr().String() {
		t.Errorf("Peer() = %q, want %s", peer, b.LocalAddr())
	}
	// The session still works.
	write(t, b, string(posFrame(t, srvSecret, "TXN1", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	b.Close()
	if ev := awaitState(t, rec, Disconnected); ev.peer != b.LocalAddr().String() {
		t.Errorf("disconnected %s, want %s", ev.peer, b.LocalAddr())
	}
	expectNothing(t, rec.states, "ConnState")
}

func TestServerAllowList(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	c := dialFrom(t, srv.Addr(), "127.0.0.1")
	expectClosed(t, c)
	if n := srv.Stats().Rejected.Load(); n != 1 {
		t.Errorf("Rejected = %d, want 1", n)
	}
	ok := dialFrom(t, srv.Addr(), "127.0.0.2")
	if ev := awaitState(t, rec, Connected); ev.peer != ok.LocalAddr().String() {
		t.Errorf("connected %s, want %s", ev.peer, ok.LocalAddr())
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
	c := dialFrom(t, srv.Addr(), "")
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
	c := dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	write(t, c, frame)
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
	c.Close()
	awaitState(t, rec, Disconnected)
	c = dialFrom(t, srv.Addr(), "")
	awaitState(t, rec, Connected)
	write(t, c, frame)
	write(t, c, string(posFrame(t, srvSecret, "TXN2", time.Now())))
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
		c := dialFrom(t, srv.Addr(), "")
		last = c.LocalAddr().String()
		c.Close()
	}
	cur := ""
	for {
		ev := await(t, rec.states, "ConnState")
		switch ev.s {
		case Connected:
			cur = ev.peer
		case Disconnected:
			if ev.peer != cur {
				t.Fatalf("Disconnected %s while %q is the session", ev.peer, cur)
			}
			cur = ""
		default:
			t.Fatalf("ConnState %v", ev.s)
		}
		if ev.s == Disconnected && ev.peer == last {
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
		recHandler: &recHandler{make(chan Message, 16), make(chan lateMsg, 16), make(chan connEvent, 16)},
		gate:       make(chan struct{}),
	}
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: srvSecret}, g)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context()) }()
	t.Cleanup(func() { await(t, done, "Serve to return") })
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

	a := dialFrom(t, srv.Addr(), "")
	awaitState(t, g.recHandler, Connected)
	write(t, a, string(posFrame(t, srvSecret, "HOLD1", time.Now())))
	awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, "HOLD1") // now blocked in Message
	// a is proven, so b is held pending until it proves itself too.
	b := dialFrom(t, srv.Addr(), "")
	write(t, b, string(posFrame(t, srvSecret, "TXN2", time.Now())))
	select {
	case ev := <-g.states:
		t.Fatalf("ConnState %v %s delivered while Message was running", ev.s, ev.peer)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.gate)
	gateOpen = true
	if ev := awaitState(t, g.recHandler, Connected); ev.peer != b.LocalAddr().String() {
		t.Errorf("connected %s, want %s", ev.peer, b.LocalAddr())
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
		a := dialFrom(t, srv.Addr(), "")
		awaitState(t, g.recHandler, Connected)
		write(t, a, string(posFrame(t, srvSecret, hold, time.Now())))
		awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, hold) // the session is busy in Message
		// The next frame waits in the socket while the POS leaves and
		// comes back.
		write(t, a, string(posFrame(t, srvSecret, txn, time.Now())))
		a.Close()
		b := dialFrom(t, srv.Addr(), "")
		g.gate <- struct{}{}
		var sawB, sawTxn bool
		for !sawB || !sawTxn {
			select {
			case e := <-g.states:
				switch {
				case e.s == Connected && e.peer == b.LocalAddr().String():
					sawB = true
				case e.s == Disconnected && e.peer == a.LocalAddr().String() && !sawB:
				default:
					t.Fatalf("ConnState %v %s", e.s, e.peer)
				}
			case m := <-g.msgs:
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
	write(t, pos, string(posFrame(t, srvSecret, "TXN1", time.Now()))+string(posFrame(t, srvSecret, "TXN2", time.Now())))
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
