package mobypay

// The kiosk-side POS server: its config, lifecycle, counters and Send.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ConnState is the POS link as the rest of the service sees it.
type ConnState int

// Connection states.
const (
	Disconnected ConnState = iota
	Connected
	ConnError // the listener failed; nothing can connect
)

func (s ConnState) String() string {
	switch s {
	case Connected:
		return "connected"
	case ConnError:
		return "error"
	}
	return "disconnected"
}

// Handler receives what the server learns. Calls are made one at a time
// (from the connection goroutines and the accept loop), in the order of
// the events; a slow handler slows the POS's reads and a change of
// session, never the refusal of a flood. A handler may call Send and
// Peer. Keepalives (pings without a txn_id) never reach it.
type Handler interface {
	// Message delivers a verified, fresh, never-seen message. *m is reused
	// after the call returns; copying the struct is enough to keep it.
	Message(m *Message)
	// Late delivers a correctly signed message that must not be acted on
	// (stale timestamp, no nonce: errors.Is(reason, ErrStale or
	// ErrNoNonce), replay guard full) but must not be lost either: it is
	// evidence. It may come from a connection held pending.
	Late(m *Message, reason error)
	// ConnState reports link changes; peer is "ip:port" or "".
	ConnState(s ConnState, peer string)
}

// ServerConfig configures the kiosk-side TCP server. Zero values take the
// defaults noted.
type ServerConfig struct {
	Addr       string         // listen address, e.g. "0.0.0.0:8080"
	Secret     []byte         // HMAC shared secret
	Window     time.Duration  // timestamp window (DefaultWindow)
	MaxFrame   int            // longest NDJSON line (MaxFrame)
	AllowPeers []netip.Prefix // if set, only these peers may connect

	// KeepAlive is the TCP keepalive idle time and probe interval (10 s);
	// with 3 probes a vanished POS is noticed within about 40 s.
	KeepAlive time.Duration
	// IdleTimeout closes a session that sends nothing for this long (0:
	// never; the POS is silent between payments, keepalive finds the dead).
	IdleTimeout time.Duration
	// FrameTimeout bounds the time from a frame's first byte to its
	// newline (10 s), which cuts slow-drip clients off.
	FrameTimeout time.Duration
	// WriteTimeout bounds each write to the POS (5 s).
	WriteTimeout time.Duration
	// MaxRefusals is how many refused frames (bad signature, malformed,
	// replayed, unusable) a connection may send within RefusalWindow; one
	// more ends it (16 within 10 s). Pings are never refusals.
	MaxRefusals   int
	RefusalWindow time.Duration

	// MaxPending bounds the connections held pending (8): newcomers from
	// the host of a proven session, waiting to prove themselves or for the
	// session to be shown dead. When it is full the oldest pending one is
	// closed (see Server.admit). PendingTimeout is how long one may wait
	// (10 s; keep it above the probe's ~3 s).
	MaxPending     int
	PendingTimeout time.Duration

	// LogWindow is the aggregation window of repeated log events (10 s):
	// at most one line per (event, reason, remote host) per window after
	// the first.
	LogWindow time.Duration

	// Seen are nonces accepted before a restart (journaled by the payment
	// layer), loaded into the replay guard so that a byte-identical replay
	// after a restart is still refused as a replay.
	Seen []SeenNonce
	// LastProven is the host of the last session that sent a correctly
	// signed message, as remembered across restarts (zero: none). A
	// connection from it displaces an unproven session from another host.
	// The server keeps it up to date in memory.
	LastProven netip.Addr
	// OnProven, if set, is told the host of every session that proves
	// itself, so that the caller can persist LastProven. It is called
	// from one goroutine of the server's own, never from a session, so a
	// slow call delays only later reports (which are coalesced to the
	// latest), not the POS link. It may run concurrently with Handler
	// calls.
	OnProven func(netip.Addr)

	Log *slog.Logger
	Now func() time.Time // clock for the timestamp and refusal windows (time.Now)
}

// maxDrain bounds how long a replaced session may still read what its
// POS sent before reconnecting.
const maxDrain = 2 * time.Second

// maxRetired bounds the replaced sessions still draining: past it the
// oldest is closed at once, so that a flood of reconnects that replace
// one another (an unproven session's host) does not keep a connection
// per reconnect for the drain bound.
const maxRetired = 8

// ErrNotConnected is returned by Send when no POS is connected.
var ErrNotConnected = newError("no POS connected")

// Server is the kiosk side of the POS link: it accepts the POS terminal's
// connection, verifies everything it sends, and writes the kiosk's frames.
//
// The session rules (see admit): one session at a time. A session is
// proven once it has sent a correctly signed, fresh, never-seen message.
// A proven session is never displaced by an unproven connection: a
// newcomer from its host is held pending (read, bounded in number and
// time) and replaces it only by proving itself, or by being the most
// recent pending connection when the session ends (the newcomer's arrival
// probes the session with a short keepalive, so a dead one ends within
// seconds). An unproven session is replaced by a newcomer from its host,
// and displaced by one from the last proven host. Any other host is
// refused while a session is up.
type Server struct {
	cfg     ServerConfig
	handler Handler
	log     *slog.Logger
	agg     *logAgg
	ln      net.Listener
	started time.Time // by cfg.Now: a signed ping stamped earlier proves nothing

	mu         sync.Mutex
	sess       *session   // the one live session, or nil
	pending    []*session // held, oldest first; only while sess is proven, all from sess.host
	retiredSS  []*session // replaced and draining, oldest first
	lastProven netip.Addr
	closing    bool // Serve is ending: nothing is promoted any more

	// hmu serialises handler calls, as Handler promises, and orders them
	// with the session changes they report: without it a session ending
	// could report Disconnected after its successor reported Connected.
	// It also guards the replay guard, which is shared by all sessions so
	// that a reconnect does not reopen the nonces of the last 2 minutes.
	// Lock order: hmu before mu. Nothing is logged while either is held.
	hmu   sync.Mutex
	guard *ReplayGuard

	proven chan netip.Addr // to the OnProven goroutine; holds the latest

	stats Stats
	wg    sync.WaitGroup
}

// Stats counts what the server saw. Fields are read with atomic loads.
type Stats struct {
	Sessions  atomic.Int64 // connections that became the session
	Replaced  atomic.Int64 // sessions replaced by a connection from the same host
	Rejected  atomic.Int64 // connections refused (allow-list, another POS)
	Pending   atomic.Int64 // connections held pending behind a proven session
	Promoted  atomic.Int64 // pending connections that became the session
	Displaced atomic.Int64 // unproven sessions displaced by the last proven host
	Received  atomic.Int64 // messages accepted
	Late      atomic.Int64 // signed but not to be acted on (stale, no nonce), kept as evidence
	NoNonce   atomic.Int64 // of Late: signed without a nonce
	Pings     atomic.Int64 // keepalives, signed or not; never refusals
	Malformed atomic.Int64
	BadSig    atomic.Int64
	Replayed  atomic.Int64
	Oversize  atomic.Int64
	Undecoded atomic.Int64 // signed but not a usable message
}

// NewServer listens on cfg.Addr. It does not accept until Serve.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	if len(cfg.Secret) == 0 {
		return nil, newError("server needs a secret")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = MaxFrame
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.MaxRefusals <= 0 {
		cfg.MaxRefusals = 16
	}
	if cfg.RefusalWindow <= 0 {
		cfg.RefusalWindow = 10 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 8
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = 10 * time.Second
	}
	if cfg.LogWindow <= 0 {
		cfg.LogWindow = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: cfg.KeepAlive, Interval: cfg.KeepAlive, Count: 3,
	}}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Addr)
	if err != nil {
		return nil, errorf("listen: %w", err)
	}
	guard := NewReplayGuard(cfg.Window, 0)
	for _, n := range cfg.Seen {
		guard.Remember(n.Nonce, n.Forget)
	}
	log := cfg.Log.With("component", "pos")
	return &Server{cfg: cfg, handler: h, log: log, agg: newLogAgg(log, cfg.LogWindow), ln: ln,
		guard: guard, lastProven: cfg.LastProven.Unmap(), proven: make(chan netip.Addr, 1), started: cfg.Now()}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Peer returns the connected POS's address and since when, or "".
func (s *Server) Peer() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return "", time.Time{}
	}
	return s.sess.peer, s.sess.since
}

// LastProven returns the host of the last session that proved itself
// (ServerConfig.LastProven until one does).
func (s *Server) LastProven() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastProven
}

// Serve accepts connections until ctx ends, then closes the listener and
// every connection and waits for their goroutines.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	notified := s.startNotifier()
	s.log.Info("pos server listening", "addr", s.ln.Addr().String())
	var err error
	for {
		var c net.Conn
		c, err = s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		s.admit(c)
	}
	s.mu.Lock()
	s.closing = true
	var all []*session
	if s.sess != nil {
		all = append(all, s.sess)
	}
	all = append(append(all, s.pending...), s.retiredSS...)
	s.mu.Unlock()
	for _, ss := range all {
		ss.conn.Close()
	}
	s.wg.Wait()
	notified()
	s.agg.close()
	if ctx.Err() != nil {
		return nil
	}
	s.hmu.Lock()
	s.handler.ConnState(ConnError, "")
	s.hmu.Unlock()
	return errorf("accept: %w", err)
}

// startNotifier runs OnProven calls on a goroutine of their own. The
// returned func stops it after the last proof was reported.
func (s *Server) startNotifier() func() {
	if s.cfg.OnProven == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case a := <-s.proven:
				s.cfg.OnProven(a)
			case <-quit:
				select {
				case a := <-s.proven:
					s.cfg.OnProven(a)
				default:
				}
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// reportProven hands a proven host to the notifier without waiting: if a
// report is still queued it is replaced by this later one.
func (s *Server) reportProven(a netip.Addr) {
	if s.cfg.OnProven == nil {
		return
	}
	for range 2 {
		select {
		case s.proven <- a:
			return
		default:
		}
		select {
		case <-s.proven:
		default:
		}
	}
}

// Send writes one frame (newline-ended) to the connected POS. Pending
// connections never receive anything.
func (s *Server) Send(frame []byte) error {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil {
		return ErrNotConnected
	}
	sess.wmu.Lock()
	defer sess.wmu.Unlock()
	sess.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := WriteFrame(sess.conn, frame); err != nil {
		// A failed write leaves the stream in an unknown state: end the
		// session so the POS reconnects cleanly. A session replaced
		// meanwhile is left to drain what its POS sent before it left.
		s.mu.Lock()
		current := s.sess == sess
		s.mu.Unlock()
		if current {
			sess.conn.Close()
		}
		return errorf("send to %s: %w", sess.peer, err)
	}
	return nil
}
