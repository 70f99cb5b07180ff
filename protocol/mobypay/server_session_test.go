package mobypay

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The session-rule tests: real loopback TCP from chosen source addresses
// (127.0.0.1 is the POS's host; 127.0.0.2 and .3 are other hosts), and
// barriers instead of sleeps. The accept loop admits connections in the
// order their handshakes complete, so once a connection dialled last has
// been refused, every earlier one has been admitted or held.

const floodConns = 1000

// floodBound bounds the time any flood loop may take.
const floodBound = 60 * time.Second

// fakePOS is a raw POS client that signs like the app.
type fakePOS struct {
	t     *testing.T
	conn  net.Conn
	fr    *FrameReader
	codec *Codec
}

func dialPOS(t *testing.T, addr net.Addr, local string) *fakePOS {
	t.Helper()
	c := mobypaytest.Dial(t, addr, local)
	return &fakePOS{t: t, conn: c, fr: NewFrameReader(c, 0), codec: NewCodec(srvSecret)}
}

// ack sends a signed ack for txn, which proves the connection.
func (p *fakePOS) ack(txn string) {
	p.t.Helper()
	mobypaytest.Write(p.t, p.conn, string(posFrame(p.t, srvSecret, txn, time.Now())))
}

// expect reads the next kiosk frame, verifies it and checks its txn_id.
func (p *fakePOS) expect(typ, txn string) {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(srvWait))
	defer p.conn.SetReadDeadline(time.Time{})
	f, err := p.fr.Next()
	if err != nil {
		p.t.Fatalf("POS %s: reading the kiosk's %s %s: %v", p.conn.LocalAddr(), typ, txn, err)
	}
	var m Message
	if err := p.codec.Open(f); err != nil {
		p.t.Fatalf("kiosk frame: %v", err)
	}
	if err := p.codec.Decode(&m); err != nil {
		p.t.Fatalf("kiosk frame: %v", err)
	}
	if m.Type != typ || m.TxnID != txn {
		p.t.Fatalf("POS got %s %s, want %s %s", m.Type, m.TxnID, typ, txn)
	}
}

// roundTrip sends a request to whatever the server's session is and
// checks that p received it and that p's answer came back.
func roundTrip(t *testing.T, k *kiosk, rec *recHandler, p *fakePOS, txn string) {
	t.Helper()
	k.request(txn, 1000, ModeCard)
	p.expect(TypeTransactionRequest, txn)
	p.ack(txn)
	awaitMsg(t, rec, TypeAck, StatusProcessing, txn)
}

// provenPOS connects a POS from 127.0.0.1 and proves it.
func provenPOS(t *testing.T, srv *Server, rec *recHandler) *fakePOS {
	t.Helper()
	p := dialPOS(t, srv.Addr(), "127.0.0.1")
	if ev := awaitState(t, rec, Connected); ev.Peer != p.conn.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.Peer, p.conn.LocalAddr())
	}
	p.ack("PROOF")
	awaitMsg(t, rec, TypeAck, StatusProcessing, "PROOF")
	return p
}

// barrier dials from 127.0.0.3 and waits for the refusal (a session must
// be up), so that every connection dialled before has been admitted.
func barrier(t *testing.T, srv *Server) {
	t.Helper()
	c := mobypaytest.Dial(t, srv.Addr(), "127.0.0.3")
	mobypaytest.ExpectClosed(t, c)
	c.Close()
}

// flooder opens unproven connections from one address and keeps the last
// few open, as an attacker holding sockets would; it sends each either
// nothing, garbage or an unsigned ping.
type flooder struct {
	t     *testing.T
	addr  net.Addr
	d     net.Dialer
	open  []net.Conn
	keep  int
	count int
}

func newFlooder(t *testing.T, addr net.Addr, from string, keep int) *flooder {
	f := &flooder{t: t, addr: addr, keep: keep,
		d: net.Dialer{Timeout: srvWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}}
	t.Cleanup(f.close)
	return f
}

func (f *flooder) dial() {
	f.t.Helper()
	c, err := f.d.DialContext(f.t.Context(), "tcp", f.addr.String())
	if err != nil {
		f.t.Fatalf("flood connection %d: %v", f.count, err)
	}
	c.SetWriteDeadline(time.Now().Add(srvWait))
	switch f.count % 3 {
	case 1:
		c.Write([]byte("GET / HTTP/1.0\r\n")) // refused, or closed with the rest: errors do not matter
	case 2:
		c.Write([]byte(`{"type":"ping"}` + "\n"))
	}
	f.count++
	f.open = append(f.open, c)
	if len(f.open) > f.keep {
		f.open[0].Close()
		f.open = append(f.open[:0], f.open[1:]...)
	}
}

func (f *flooder) close() {
	for _, c := range f.open {
		c.Close()
	}
	f.open = nil
}

// TestServerProvenSessionSurvivesFlood (defect 3): 1000 unproven
// connections from the POS's own address, or from another one, never
// displace a proven session, and every request sent during the flood
// reaches the real POS and is answered.
func TestServerProvenSessionSurvivesFlood(t *testing.T) {
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		t.Run("from "+from, func(t *testing.T) {
			srv, rec := startServer(t, ServerConfig{})
			pos := provenPOS(t, srv, rec)
			k := newKiosk(t, srv, srvSecret)
			f := newFlooder(t, srv.Addr(), from, 32)
			deadline := time.Now().Add(floodBound)
			sent := 0
			for i := range floodConns {
				if time.Now().After(deadline) {
					t.Fatalf("flood not done in %s (%d connections)", floodBound, i)
				}
				f.dial()
				if i%50 == 49 {
					roundTrip(t, k, rec, pos, "TXN"+strconv.Itoa(i))
					sent++
				}
			}
			barrier(t, srv)
			st := srv.Stats()
			if from == "127.0.0.1" {
				if n := st.Pending.Load(); n != floodConns {
					t.Errorf("Pending = %d, want %d", n, floodConns)
				}
			} else if n := st.Rejected.Load(); n != floodConns+1 {
				t.Errorf("Rejected = %d, want %d", n, floodConns+1)
			}
			if n := st.Replaced.Load() + st.Promoted.Load() + st.Displaced.Load(); n != 0 {
				t.Errorf("the session changed %d times", n)
			}
			if peer, _ := srv.Peer(); peer != pos.conn.LocalAddr().String() {
				t.Errorf("Peer() = %s, want the POS %s", peer, pos.conn.LocalAddr())
			}
			mobypaytest.ExpectNothing(t, rec.States, "ConnState")
			roundTrip(t, k, rec, pos, "AFTER")
			t.Logf("%d requests during the flood, all answered by the POS", sent)
		})
	}
}

// TestServerPOSReconnectsAfterReset: the POS's old connection dies (RST)
// and it reconnects from the same host while squatters from that host
// are held pending; the POS is the session at once, whichever the server
// noticed first.
func TestServerPOSReconnectsAfterReset(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	old := provenPOS(t, srv, rec)
	f := newFlooder(t, srv.Addr(), "127.0.0.1", 16)
	for range 5 {
		f.dial()
	}
	barrier(t, srv)
	if n := srv.Stats().Pending.Load(); n != 5 {
		t.Fatalf("Pending = %d, want 5", n)
	}
	old.conn.(*net.TCPConn).SetLinger(0)
	old.conn.Close() // RST: the server's read fails at once
	start := time.Now()
	pos := dialPOS(t, srv.Addr(), "127.0.0.1")
	want := pos.conn.LocalAddr().String()
	for {
		ev := mobypaytest.Await(t, rec.States, "the POS connected")
		if ev.State == Connected && ev.Peer == want {
			break
		}
		if ev.State != Connected {
			t.Fatalf("ConnState %v %s", ev.State, ev.Peer)
		}
	}
	took := time.Since(start)
	if took > time.Second {
		t.Errorf("the reconnect took %s to become the session", took)
	}
	k := newKiosk(t, srv, srvSecret)
	roundTrip(t, k, rec, pos, "TXN1")
	t.Logf("the reconnect was the session after %s (promoted %d, replaced %d)",
		took.Round(time.Millisecond), srv.Stats().Promoted.Load(), srv.Stats().Replaced.Load())
}

// TestServerPendingProvesItself: a newcomer from the POS's host while the
// proven session is alive is held, hears nothing, and becomes the session
// when it sends a correctly signed message, which is delivered after its
// Connected.
func TestServerPendingProvesItself(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	old := provenPOS(t, srv, rec)
	k := newKiosk(t, srv, srvSecret)
	nc := dialPOS(t, srv.Addr(), "127.0.0.1")
	barrier(t, srv)
	roundTrip(t, k, rec, old, "TXN1") // the held one hears nothing
	mobypaytest.ExpectNothing(t, rec.States, "ConnState")
	nc.ack("TXN2")
	if ev := awaitState(t, rec, Connected); ev.Peer != nc.conn.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", ev.Peer, nc.conn.LocalAddr())
	}
	awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN2")
	mobypaytest.ExpectClosed(t, old.conn) // retired: FIN at once
	roundTrip(t, k, rec, nc, "TXN3")
	if st := srv.Stats(); st.Promoted.Load() != 1 || st.Sessions.Load() != 2 {
		t.Errorf("Promoted = %d, Sessions = %d; want 1, 2", st.Promoted.Load(), st.Sessions.Load())
	}
}

// TestServerPendingBounded: at most MaxPending connections are held (the
// oldest goes first), and none longer than PendingTimeout.
func TestServerPendingBounded(t *testing.T) {
	const max, timeout = 4, 300 * time.Millisecond
	srv, rec := startServer(t, ServerConfig{MaxPending: max, PendingTimeout: timeout})
	pos := provenPOS(t, srv, rec)
	var held []net.Conn
	for range 10 {
		held = append(held, mobypaytest.Dial(t, srv.Addr(), "127.0.0.1"))
	}
	barrier(t, srv)
	for i, c := range held[:10-max] {
		if took := mobypaytest.ExpectClosed(t, c); took > timeout/2 {
			t.Errorf("connection %d closed after %s, want evicted at once", i, took)
		}
	}
	start := time.Now()
	for _, c := range held[10-max:] {
		mobypaytest.ExpectClosed(t, c)
	}
	if took := time.Since(start); took < timeout/4 {
		t.Errorf("the newest %d were closed after %s, before PendingTimeout %s", max, took, timeout)
	}
	roundTrip(t, newKiosk(t, srv, srvSecret), rec, pos, "TXN1")
	mobypaytest.ExpectNothing(t, rec.States, "ConnState")
	if n := srv.Stats().Pending.Load(); n != 10 {
		t.Errorf("Pending = %d, want 10", n)
	}
}

// TestServerLastProvenDisplacesSquatter (defect 3): a silent connection
// from another host holds the slot while the POS is away; the host that
// last proved itself displaces it, a third host is still refused.
func TestServerLastProvenDisplacesSquatter(t *testing.T) {
	check := func(t *testing.T, srv *Server, rec *recHandler) {
		t.Helper()
		squatter := mobypaytest.Dial(t, srv.Addr(), "127.0.0.2")
		if ev := awaitState(t, rec, Connected); ev.Peer != squatter.LocalAddr().String() {
			t.Fatalf("connected %s, want the squatter %s", ev.Peer, squatter.LocalAddr())
		}
		barrier(t, srv) // 127.0.0.3 has no claim
		pos := dialPOS(t, srv.Addr(), "127.0.0.1")
		if ev := awaitState(t, rec, Connected); ev.Peer != pos.conn.LocalAddr().String() {
			t.Fatalf("connected %s, want the POS %s", ev.Peer, pos.conn.LocalAddr())
		}
		mobypaytest.ExpectClosed(t, squatter)
		roundTrip(t, newKiosk(t, srv, srvSecret), rec, pos, "TXN1")
		if n := srv.Stats().Displaced.Load(); n != 1 {
			t.Errorf("Displaced = %d, want 1", n)
		}
	}
	t.Run("learned", func(t *testing.T) {
		proven := make(chan netip.Addr, 4)
		srv, rec := startServer(t, ServerConfig{OnProven: func(a netip.Addr) { proven <- a }})
		pos := provenPOS(t, srv, rec)
		if a := mobypaytest.Await(t, proven, "OnProven"); a != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("OnProven(%s), want 127.0.0.1", a)
		}
		pos.conn.Close()
		awaitState(t, rec, Disconnected)
		check(t, srv, rec)
	})
	t.Run("configured", func(t *testing.T) {
		srv, rec := startServer(t, ServerConfig{LastProven: netip.MustParseAddr("127.0.0.1")})
		check(t, srv, rec)
	})
}

// lockedBuffer is an io.Writer for a slog handler shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServerFloodLogsAggregated (defect 4): 1000 connections from the
// POS's own host and 1000 from another write a handful of lines, and the
// summaries' counts are exact.
func TestServerFloodLogsAggregated(t *testing.T) {
	var buf lockedBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rec := mobypaytest.NewRecorder[Message, ConnState](256)
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: srvSecret,
		Log: slog.New(slog.NewTextHandler(&buf, nil))}, rec)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	pos := provenPOS(t, srv, rec)
	own := newFlooder(t, srv.Addr(), "127.0.0.1", 16)
	other := newFlooder(t, srv.Addr(), "127.0.0.3", 16)
	deadline := time.Now().Add(floodBound)
	for range floodConns {
		if time.Now().After(deadline) {
			t.Fatalf("flood not done in %s", floodBound)
		}
		own.dial()
		other.dial()
	}
	roundTrip(t, newKiosk(t, srv, srvSecret), rec, pos, "TXN1")
	barrier(t, srv) // one more from 127.0.0.3
	own.close()
	other.close()
	cancel()
	if err := mobypaytest.Await(t, done, "Serve to return"); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(buf.String())
	ls := strings.Split(out, "\n")
	t.Logf("%d log lines for %d connections:\n%s", len(ls), 2*floodConns+1, out)
	if len(ls) > 16 {
		t.Errorf("%d log lines, want a handful", len(ls))
	}
	// Every refusal from 127.0.0.3 is in the first line or a summary.
	total := 0
	for _, l := range ls {
		switch {
		case strings.Contains(l, `msg="pos connection refused: another POS is connected"`) && strings.Contains(l, "peer=127.0.0.3:"):
			total++
		case strings.Contains(l, `msg="pos connections refused"`) && strings.Contains(l, "peer_host=127.0.0.3"):
			i := strings.Index(l, " count=")
			n, _ := strconv.Atoi(strings.Fields(l[i+len(" count="):])[0])
			total += n
		}
	}
	if total != floodConns+1 {
		t.Errorf("the log accounts for %d refusals from 127.0.0.3, want %d", total, floodConns+1)
	}
}

// TestServerFloodDoesNotWaitForHandler: refusals and holds never queue
// behind a handler call, so a flood is turned away even while the
// payment layer is busy with a message.
func TestServerFloodDoesNotWaitForHandler(t *testing.T) {
	g, srv := startGated(t)
	gateOpen := false
	defer func() {
		if !gateOpen {
			close(g.gate)
		}
	}()
	a := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	awaitState(t, g.recHandler, Connected)
	mobypaytest.Write(t, a, string(posFrame(t, srvSecret, "HOLD1", time.Now())))
	awaitMsg(t, g.recHandler, TypeAck, StatusProcessing, "HOLD1") // blocked in Message
	own := newFlooder(t, srv.Addr(), "127.0.0.1", 16)
	other := newFlooder(t, srv.Addr(), "127.0.0.2", 16)
	for range 50 {
		own.dial()
		other.dial()
	}
	barrier(t, srv) // refused while Message is still running
	if st := srv.Stats(); st.Pending.Load() != 50 || st.Rejected.Load() != 51 {
		t.Errorf("Pending %d, Rejected %d; want 50, 51", st.Pending.Load(), st.Rejected.Load())
	}
	close(g.gate)
	gateOpen = true
	mobypaytest.ExpectNothing(t, g.States, "ConnState")
}

// TestServerUnprovenReplacementsBounded: connections that replace one
// another (an unproven session's host reconnecting in a loop) keep at most
// maxRetired replaced sessions draining, not one per reconnect.
func TestServerUnprovenReplacementsBounded(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{FrameTimeout: time.Minute}) // drain: maxDrain
	f := newFlooder(t, srv.Addr(), "127.0.0.1", 100)
	for range 100 {
		f.dial()
	}
	barrier(t, srv)
	srv.mu.Lock()
	n := len(srv.retiredSS)
	srv.mu.Unlock()
	if n > maxRetired {
		t.Errorf("%d replaced sessions draining, want at most %d", n, maxRetired)
	}
	if got := srv.Stats().Replaced.Load(); got != 99 {
		t.Errorf("Replaced = %d, want 99", got)
	}
	for range 100 {
		if ev := mobypaytest.Await(t, rec.States, "ConnState"); ev.State != Connected {
			t.Fatalf("ConnState %v %s", ev.State, ev.Peer)
		}
	}
}
