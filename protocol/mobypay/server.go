package mobypay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
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
var ErrNotConnected = errors.New("mobypay: no POS connected")

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
		return nil, errors.New("mobypay: server needs a secret")
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
		return nil, fmt.Errorf("mobypay: listen: %w", err)
	}
	guard := NewReplayGuard(cfg.Window, 0)
	for _, n := range cfg.Seen {
		guard.Remember(n.Nonce, n.Forget)
	}
	log := cfg.Log.With("component", "pos")
	return &Server{cfg: cfg, handler: h, log: log, agg: newLogAgg(log, cfg.LogWindow), ln: ln,
		guard: guard, lastProven: cfg.LastProven.Unmap(), proven: make(chan netip.Addr, 1)}, nil
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
	return fmt.Errorf("mobypay: accept: %w", err)
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

// admission is what admit decided for a newcomer.
type admission int

const (
	admitNew      admission = iota // no session: it becomes the session
	admitReplace                   // replaces an unproven session from its host
	admitDisplace                  // the last proven host displaces an unproven squatter
	admitHold                      // held pending behind a proven session from its host
	admitRefuse                    // another host while a session is up
)

// decideLocked applies the session rules to a newcomer from host; s.mu held.
func (s *Server) decideLocked(host netip.Addr) admission {
	cur := s.sess
	switch {
	case cur == nil:
		return admitNew
	case cur.host == host && cur.proven.Load():
		return admitHold
	case cur.host == host:
		return admitReplace
	case !cur.proven.Load() && s.lastProven.IsValid() && host == s.lastProven:
		return admitDisplace
	}
	return admitRefuse
}

// admit applies the session rules (see Server) to a new connection.
//
// Pending connections are bounded by MaxPending and PendingTimeout. When
// the bound is reached the oldest pending connection is closed, not the
// newcomer: a real POS's reconnect is always the newest connection from
// its host when it arrives, and it is the one promoted when the old
// session ends, so a burst that came before it costs it nothing. A flood
// that goes on from the POS's own address cannot be told from the POS
// until the POS signs something; it costs one short-lived reader with a
// 512-byte buffer per connection, never more than MaxPending at once, and
// never the proven session.
//
// Refusals and holds do not take hmu, so a flood does not queue behind
// the handler; only a change of session does, to report it in order.
func (s *Server) admit(c net.Conn) {
	peer := c.RemoteAddr().String()
	ap, _ := netip.ParseAddrPort(peer)
	host := ap.Addr().Unmap()
	if !s.allowed(host) {
		s.stats.Rejected.Add(1)
		c.Close()
		s.agg.event(slog.LevelWarn, host, "pos connections refused", "peer not in allow-list",
			"pos connection refused: peer not in allow-list", "peer", peer)
		return
	}
	ss := &session{conn: c, peer: peer, host: host, since: time.Now()}
	s.mu.Lock()
	act := s.decideLocked(host)
	if act == admitRefuse || act == admitHold {
		s.admitQuietLocked(ss, act) // unlocks s.mu
		return
	}
	s.mu.Unlock()
	s.hmu.Lock()
	s.mu.Lock()
	act = s.decideLocked(host) // the session may have changed meanwhile
	if act == admitRefuse || act == admitHold {
		s.hmu.Unlock()
		s.admitQuietLocked(ss, act)
		return
	}
	old := s.sess
	var drop []*session
	if old != nil {
		s.retireLocked(old)
	}
	// Pending connections wait on a proven session; the one being
	// replaced is unproven, so there are none, but a promotion may have
	// left some behind.
	drop = s.dropPendingLocked("the session they waited on was replaced")
	s.becomeSessionLocked(ss)
	switch act {
	case admitReplace:
		s.stats.Replaced.Add(1)
	case admitDisplace:
		s.stats.Displaced.Add(1)
	}
	s.wg.Add(1)
	go s.run(ss)
	s.mu.Unlock()
	s.handler.ConnState(Connected, peer)
	s.hmu.Unlock()
	for _, p := range drop {
		p.conn.Close()
	}
	switch act {
	case admitNew:
		s.agg.event(slog.LevelInfo, host, "pos connections accepted", "no session was up", "pos connected", "peer", peer)
	case admitReplace:
		s.agg.event(slog.LevelInfo, host, "pos connections accepted", "replaced an unproven session from the same host",
			"pos reconnected; replacing old session", "peer", peer, "old", old.peer)
	case admitDisplace:
		s.log.Info("pos connected from the last proven host; displacing an unproven session from another host",
			"peer", peer, "old", old.peer)
	}
}

// admitQuietLocked refuses or holds a newcomer: neither changes the
// session, so neither needs hmu. It unlocks s.mu.
func (s *Server) admitQuietLocked(ss *session, act admission) {
	if act == admitRefuse {
		connected := s.sess.peer
		s.mu.Unlock()
		s.stats.Rejected.Add(1)
		ss.conn.Close()
		s.agg.event(slog.LevelWarn, ss.host, "pos connections refused", "another POS is connected",
			"pos connection refused: another POS is connected", "peer", ss.peer, "connected", connected)
		return
	}
	cur := s.sess
	var evicted *session
	if len(s.pending) >= s.cfg.MaxPending {
		evicted = s.pending[0]
		s.pending = append(s.pending[:0], s.pending[1:]...)
		evicted.role, evicted.why = roleClosed, "evicted by a newer connection"
	}
	ss.role = rolePending
	ss.hold(time.Now().Add(s.cfg.PendingTimeout))
	s.pending = append(s.pending, ss)
	if !cur.probed {
		cur.probed = true
		cur.probe()
	}
	s.stats.Pending.Add(1)
	s.wg.Add(1)
	go s.run(ss)
	s.mu.Unlock()
	if evicted != nil {
		evicted.conn.Close()
	}
	s.agg.event(slog.LevelInfo, ss.host, "pos connections held pending", "a proven session from this host is up",
		"pos connection held pending: a proven session from this host is up; probing it", "peer", ss.peer, "session", cur.peer)
}

// retireLocked retires the session being replaced; s.mu held. Past
// maxRetired draining sessions the oldest is closed at once.
func (s *Server) retireLocked(old *session) {
	old.role = roleRetired
	old.retire(time.Now().Add(min(s.cfg.FrameTimeout, maxDrain)))
	s.retiredSS = append(s.retiredSS, old)
	if len(s.retiredSS) > maxRetired {
		o := s.retiredSS[0]
		s.retiredSS = append(s.retiredSS[:0], s.retiredSS[1:]...)
		o.role, o.why = roleClosed, "too many replaced sessions draining"
		o.conn.Close()
	}
}

// dropPendingLocked closes the held connections out (the caller closes
// the returned sockets once s.mu is released); s.mu held.
func (s *Server) dropPendingLocked(why string) []*session {
	drop := s.pending
	for _, p := range drop {
		p.role, p.why = roleClosed, why
	}
	s.pending = nil
	return drop
}

// removeLocked takes ss out of the server's lists when it ends, and ends
// the probe once nothing is pending any more; s.mu held.
func (s *Server) removeLocked(ss *session) {
	del := func(list []*session) []*session {
		for i, x := range list {
			if x == ss {
				return append(list[:i], list[i+1:]...)
			}
		}
		return list
	}
	switch ss.role {
	case rolePending:
		s.pending = del(s.pending)
	case roleRetired:
		s.retiredSS = del(s.retiredSS)
	}
	if len(s.pending) == 0 && s.sess != nil && s.sess.probed {
		s.sess.probed = false
		s.sess.unprobe(s.cfg.KeepAlive)
	}
}

func (s *Server) allowed(a netip.Addr) bool {
	if len(s.cfg.AllowPeers) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range s.cfg.AllowPeers {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
		// session so the POS reconnects cleanly.
		sess.conn.Close()
		return fmt.Errorf("mobypay: send to %s: %w", sess.peer, err)
	}
	return nil
}

// deadlineReader arms the connection's read deadline before each read: a
// frame that has started must finish within FrameTimeout, an idle link may
// wait IdleTimeout (or forever); the session's pending and drain bounds
// apply on top.
type deadlineReader struct {
	sess  *session
	cfg   *ServerConfig
	fr    *FrameReader
	start time.Time // when the pending partial frame began
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	var dl time.Time
	if d.fr.Buffered() > 0 {
		if d.start.IsZero() {
			d.start = time.Now()
		}
		dl = d.start.Add(d.cfg.FrameTimeout)
	} else {
		d.start = time.Time{}
		if d.cfg.IdleTimeout > 0 {
			dl = time.Now().Add(d.cfg.IdleTimeout)
		}
	}
	d.sess.setOwnDeadline(dl)
	return d.sess.conn.Read(p)
}

// run reads a connection until it ends, then takes it out of the
// server's books. A connection that is not the session is closed only
// after that, so a peer that sees it closed knows the server has
// forgotten it; the session is closed at once, so that Send fails fast.
func (s *Server) run(ss *session) {
	defer s.wg.Done()
	end := s.read(ss)

	s.mu.Lock()
	if ss.role != roleCurrent {
		s.endQuietLocked(ss, end) // unlocks s.mu
		return
	}
	s.mu.Unlock()
	ss.conn.Close()
	s.hmu.Lock()
	s.mu.Lock()
	if ss.role != roleCurrent { // replaced meanwhile
		s.hmu.Unlock()
		s.endQuietLocked(ss, end)
		return
	}
	// The session ended. If newcomers from its host were held, the most
	// recent one takes over; the others are closed (a live POS among
	// them reconnects, and replaces an unproven session as a newcomer).
	s.sess = nil
	var next *session
	var drop []*session
	if n := len(s.pending); n > 0 && !s.closing {
		next = s.pending[n-1]
		s.pending = s.pending[:n-1]
		drop = s.dropPendingLocked("another pending connection took over")
		s.becomeSessionLocked(next)
		next.admitted()
		s.stats.Replaced.Add(1)
		s.stats.Promoted.Add(1)
	}
	s.mu.Unlock()
	if next != nil {
		s.handler.ConnState(Connected, next.peer)
	} else {
		s.handler.ConnState(Disconnected, ss.peer)
	}
	s.hmu.Unlock()
	for _, p := range drop {
		p.conn.Close()
	}
	s.logEnd(ss, end, "")
	if next != nil {
		s.log.Info("pos session ended; the newest pending connection from its host takes over", "peer", next.peer, "old", ss.peer)
	}
}

// endQuietLocked finishes a connection that is not the session; s.mu held,
// released.
func (s *Server) endQuietLocked(ss *session, end endReason) {
	why := ss.why
	s.removeLocked(ss)
	s.mu.Unlock()
	ss.conn.Close()
	s.logEnd(ss, end, why)
}

// logEnd writes why a connection ended. A proven session's end is always
// written; the ends of connections that never proved themselves are
// aggregated per host, as a flood makes thousands of them.
func (s *Server) logEnd(ss *session, end endReason, why string) {
	class := end.class
	if why != "" {
		class = why
	}
	args := []any{"peer", ss.peer, "reason", class}
	if end.err != nil {
		args = append(args, "error", end.err.Error())
	}
	switch {
	case ss.proven.Load():
		s.log.Info("pos session ended", args...)
	case ss.wasSession:
		s.agg.event(slog.LevelInfo, ss.host, "pos sessions ended", class, "pos session ended", args...)
	default:
		s.agg.event(slog.LevelInfo, ss.host, "pos pending connections closed", class, "pos pending connection closed", args...)
	}
}

// read runs a connection: frame, verify, replay guard, dispatch. It
// returns why it ended.
func (s *Server) read(ss *session) endReason {
	dr := &deadlineReader{sess: ss, cfg: &s.cfg}
	fr := NewFrameReader(dr, s.cfg.MaxFrame)
	dr.fr = fr
	var codec *Codec // made at the first frame: a silent connection costs none
	var refused refusals
	var m Message
	for {
		frame, err := fr.Next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				s.stats.Oversize.Add(1)
				s.agg.event(slog.LevelWarn, ss.host, "pos frames refused", "too large",
					"pos frame refused: too large; closing", "peer", ss.peer, "max", s.cfg.MaxFrame)
				return endReason{"oversized frame", nil}
			case errors.Is(err, io.EOF):
				return endReason{"closed by peer", nil}
			case errors.As(err, &ne) && ne.Timeout():
				switch {
				case ss.retired():
					return endReason{"replaced", nil}
				case ss.pendingExpired(time.Now()):
					return endReason{"not proven in time", nil}
				case fr.Buffered() > 0:
					return endReason{"frame not completed in time", nil}
				}
				return endReason{"idle", nil}
			}
			return endReason{readErrorClass(err), err}
		}
		// Whatever is buffered now belongs to the next frame, which starts
		// its own FrameTimeout from here.
		dr.start = time.Time{}
		if codec == nil {
			codec = NewCodec(s.cfg.Secret)
		}
		if err := s.handle(ss, codec, frame, &m); err != nil {
			if refused.add(s.cfg.Now(), s.cfg.MaxRefusals, s.cfg.RefusalWindow) {
				s.agg.event(slog.LevelWarn, ss.host, "pos sessions closed for refused frames", "too many refused frames",
					"pos session closed: too many refused frames", "peer", ss.peer,
					"refusals", s.cfg.MaxRefusals+1, "within", s.cfg.RefusalWindow.String())
				return endReason{"too many refused frames", nil}
			}
		}
	}
}

// handle judges one frame. It returns an error for a refusal; late
// evidence and keepalives are not refusals.
func (s *Server) handle(ss *session, codec *Codec, frame []byte, m *Message) error {
	if err := codec.Open(frame); err != nil {
		if isPing(frame) {
			s.stats.Pings.Add(1)
			return nil
		}
		class := "malformed"
		if errors.Is(err, ErrSignature) {
			s.stats.BadSig.Add(1)
			class = "bad signature"
		} else {
			s.stats.Malformed.Add(1)
		}
		s.agg.event(slog.LevelWarn, ss.host, "pos messages refused", class,
			"pos message refused", "peer", ss.peer, "reason", reason(err), "bytes", len(frame))
		return err
	}
	if err := codec.Decode(m); err != nil {
		if isPing(frame) {
			s.stats.Pings.Add(1)
			return nil
		}
		s.stats.Undecoded.Add(1)
		s.agg.event(slog.LevelWarn, ss.host, "pos messages refused", "signed but not usable",
			"pos message refused: signed but not usable", "peer", ss.peer, "reason", reason(err), "payload", string(codec.Canonical()))
		return err
	}
	ping := m.Type == typePing
	if ping {
		s.stats.Pings.Add(1)
		if m.TxnID == "" {
			// A keepalive; signed, it still proves the connection if it is
			// fresh and its nonce new.
			if m.Nonce != "" {
				s.hmu.Lock()
				var p proof
				if s.guard.Check(s.cfg.Now(), m.Timestamp, m.Nonce) == nil {
					p = s.provenLocked(ss)
				}
				s.hmu.Unlock()
				s.logProof(ss, p)
			}
			return nil
		}
	}
	s.hmu.Lock()
	err := s.guard.Check(s.cfg.Now(), m.Timestamp, m.Nonce)
	switch {
	case err == nil:
		p := s.provenLocked(ss)
		s.stats.Received.Add(1)
		s.handler.Message(m)
		s.hmu.Unlock()
		s.logProof(ss, p)
		if s.log.Enabled(context.Background(), slog.LevelDebug) { // spare the hot path the arguments
			s.log.Debug("pos message", "peer", ss.peer, "type", m.Type, "status", m.Status, "txn_id", m.TxnID)
		}
		return nil
	case errors.Is(err, ErrReplay):
		s.hmu.Unlock()
		s.stats.Replayed.Add(1)
		s.agg.event(slog.LevelWarn, ss.host, "pos messages refused", "replayed",
			"pos message refused", "peer", ss.peer, "reason", reason(err), "type", m.Type, "txn_id", m.TxnID, "nonce", m.Nonce)
		if ping {
			return nil
		}
		return err
	}
	// Stale, no nonce, a timestamp we cannot read, or the guard is full:
	// the message is authentic, so it is kept, but not acted on.
	s.stats.Late.Add(1)
	class := "stale"
	switch {
	case errors.Is(err, ErrNoNonce):
		s.stats.NoNonce.Add(1)
		class = "no nonce"
	case errors.Is(err, ErrFull):
		class = "replay guard full"
	case !errors.Is(err, ErrStale):
		class = "bad timestamp"
	}
	s.handler.Late(m, err)
	s.hmu.Unlock()
	s.agg.event(slog.LevelWarn, ss.host, "pos messages not acted on; kept as evidence", class,
		"pos message not acted on; kept as evidence", "peer", ss.peer, "reason", reason(err),
		"type", m.Type, "status", m.Status, "txn_id", m.TxnID)
	return nil
}

// proof is what provenLocked did, to be logged once the locks are gone.
type proof struct {
	first    bool   // the connection had not proven itself before
	promoted bool   // it was pending and became the session
	old      string // the session it replaced
}

// provenLocked records that ss sent a correctly signed, fresh, new
// message; hmu held. A pending connection that proves itself becomes the
// session (the session it waited on is retired): it holds the secret, so
// it is the POS, and the old connection is one the POS gave up.
func (s *Server) provenLocked(ss *session) proof {
	if ss.proven.Load() {
		return proof{}
	}
	s.mu.Lock()
	ss.proven.Store(true)
	s.lastProven = ss.host
	p := proof{first: true, promoted: ss.role == rolePending}
	if p.promoted {
		s.pending = slices.DeleteFunc(s.pending, func(x *session) bool { return x == ss })
		if old := s.sess; old != nil {
			p.old = old.peer
			s.retireLocked(old)
		}
		// Any others held stay pending behind this session, which has
		// just shown it is alive; they time out.
		s.becomeSessionLocked(ss)
		ss.admitted()
		s.stats.Replaced.Add(1)
		s.stats.Promoted.Add(1)
	}
	s.mu.Unlock()
	if p.promoted {
		s.handler.ConnState(Connected, ss.peer)
	}
	s.reportProven(ss.host)
	return p
}

// becomeSessionLocked makes ss the session; s.mu held.
func (s *Server) becomeSessionLocked(ss *session) {
	ss.role = roleCurrent
	ss.wasSession = true
	s.sess = ss
	s.stats.Sessions.Add(1)
}

func (s *Server) logProof(ss *session, p proof) {
	switch {
	case p.promoted:
		s.log.Info("pos pending connection proved itself; it replaces the old session", "peer", ss.peer, "old", p.old)
	case p.first:
		s.log.Info("pos session proven", "peer", ss.peer)
	}
}

func peerOf(ss *session) string {
	if ss == nil {
		return ""
	}
	return ss.peer
}

func reason(err error) string {
	s := err.Error()
	const p = "mobypay: "
	for len(s) > len(p) && s[:len(p)] == p {
		s = s[len(p):]
	}
	return s
}
