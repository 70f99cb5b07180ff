package mobypay

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// (from the session goroutines and the accept loop), in the order of the
// events; a slow handler slows the POS's reads and the accepting of a
// reconnect. A handler may call Send and Peer.
type Handler interface {
	// Message delivers a verified, fresh, never-seen message. *m is reused
	// after the call returns; copying the struct is enough to keep it.
	Message(m *Message)
	// Late delivers a correctly signed message that must not be acted on
	// (stale timestamp) but must not be lost either: it is evidence.
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
	// MaxRefusals is how many refused frames in a row end a session (16).
	MaxRefusals int

	Log *slog.Logger
	Now func() time.Time // clock for the timestamp window (time.Now)
}

// maxDrain bounds how long a replaced session may still read what its
// POS sent before reconnecting.
const maxDrain = 2 * time.Second

// ErrNotConnected is returned by Send when no POS is connected.
var ErrNotConnected = errors.New("mobypay: no POS connected")

// Server is the kiosk side of the POS link: it accepts the POS terminal's
// connection, verifies everything it sends, and writes the kiosk's frames.
type Server struct {
	cfg     ServerConfig
	handler Handler
	log     *slog.Logger
	ln      net.Listener

	mu   sync.Mutex
	sess *session // the one live session, or nil

	// hmu serialises handler calls, as Handler promises, and orders them
	// with the session changes they report: without it a session ending
	// could report Disconnected after its successor reported Connected.
	// It also guards the replay guard, which is shared by all sessions so
	// that a reconnect does not reopen the nonces of the last 2 minutes.
	// Lock order: hmu before mu.
	hmu   sync.Mutex
	guard *ReplayGuard

	stats Stats
	wg    sync.WaitGroup
}

// Stats counts what the server saw. Fields are read with atomic loads.
type Stats struct {
	Sessions  atomic.Int64 // accepted sessions
	Replaced  atomic.Int64 // sessions replaced by a reconnect from the same host
	Rejected  atomic.Int64 // connections refused (allow-list, another POS)
	Received  atomic.Int64 // messages accepted
	Late      atomic.Int64 // signed but stale, kept as evidence
	Malformed atomic.Int64
	BadSig    atomic.Int64
	Replayed  atomic.Int64
	Oversize  atomic.Int64
	Undecoded atomic.Int64 // signed but not a usable message
}

type session struct {
	conn  net.Conn
	peer  string
	since time.Time
	wmu   sync.Mutex // serialises writes

	dmu   sync.Mutex // orders read-deadline changes with retire
	drain time.Time  // set once replaced: read no later than this
}

// retire ends a replaced session without losing what its POS sent before
// it left: closing the socket at once would discard frames still in the
// kernel buffer, such as a final result sent just before the drop. The
// peer gets a FIN (a live one sees EOF at once); the session reads on
// until EOF or the drain deadline.
func (ss *session) retire(until time.Time) {
	ss.dmu.Lock()
	ss.drain = until
	ss.conn.SetReadDeadline(until)
	ss.dmu.Unlock()
	if tc, ok := ss.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		ss.conn.Close()
	}
}

// retired reports whether the session was replaced.
func (ss *session) retired() bool {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	return !ss.drain.IsZero()
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
	return &Server{cfg: cfg, handler: h, log: cfg.Log.With("component", "pos"), ln: ln,
		guard: NewReplayGuard(cfg.Window, 0)}, nil
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

// Serve accepts connections until ctx ends, then closes the listener and
// the session and waits for its goroutines.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
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
	if s.sess != nil {
		s.sess.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	s.hmu.Lock()
	s.handler.ConnState(ConnError, "")
	s.hmu.Unlock()
	return fmt.Errorf("mobypay: accept: %w", err)
}

// admit applies the one-session rule. A connection from the host of the
// current session replaces it: the POS app keeps one connection, so a new
// one from the same host means the old is dead even if TCP has not noticed
// yet (the old session is retired, not cut: see session.retire). A
// different host is refused while a session is up; keepalive clears
// a dead session within about 40 s and the app retries with back-off.
func (s *Server) admit(c net.Conn) {
	peer := c.RemoteAddr().String()
	ap, _ := netip.ParseAddrPort(peer)
	if !s.allowed(ap.Addr()) {
		s.stats.Rejected.Add(1)
		s.log.Warn("pos connection refused: peer not in allow-list", "peer", peer)
		c.Close()
		return
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mu.Lock()
	old := s.sess
	if old != nil {
		oldAP, _ := netip.ParseAddrPort(old.peer)
		if oldAP.Addr() != ap.Addr() {
			s.mu.Unlock()
			s.stats.Rejected.Add(1)
			s.log.Warn("pos connection refused: another POS is connected", "peer", peer, "connected", old.peer)
			c.Close()
			return
		}
		s.stats.Replaced.Add(1)
		s.log.Info("pos reconnected; replacing old session", "peer", peer, "old", old.peer)
		old.retire(time.Now().Add(min(s.cfg.FrameTimeout, maxDrain)))
	}
	sess := &session{conn: c, peer: peer, since: time.Now()}
	s.sess = sess
	s.mu.Unlock()
	s.stats.Sessions.Add(1)
	s.log.Info("pos connected", "peer", peer)
	s.handler.ConnState(Connected, peer)
	s.wg.Add(1)
	go s.run(sess)
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

// Send writes one frame (newline-ended) to the connected POS.
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
// wait IdleTimeout (or forever).
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
	d.sess.dmu.Lock()
	if dr := d.sess.drain; !dr.IsZero() && (dl.IsZero() || dr.Before(dl)) {
		dl = dr
	}
	d.sess.conn.SetReadDeadline(dl)
	d.sess.dmu.Unlock()
	return d.sess.conn.Read(p)
}

func (s *Server) run(sess *session) {
	defer s.wg.Done()
	log := s.log.With("peer", sess.peer)
	reason := s.read(sess, log)
	sess.conn.Close()
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mu.Lock()
	current := s.sess == sess
	if current {
		s.sess = nil
	}
	s.mu.Unlock()
	log.Info("pos session ended", "reason", reason)
	if current {
		s.handler.ConnState(Disconnected, sess.peer)
	}
}

// read runs the session: frame, verify, replay guard, dispatch. It returns
// why the session ended.
func (s *Server) read(sess *session, log *slog.Logger) string {
	codec := NewCodec(s.cfg.Secret)
	dr := &deadlineReader{sess: sess, cfg: &s.cfg}
	fr := NewFrameReader(dr, s.cfg.MaxFrame)
	dr.fr = fr
	refusals := 0
	var m Message
	for {
		frame, err := fr.Next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				s.stats.Oversize.Add(1)
				log.Warn("pos frame refused: too large; closing", "max", s.cfg.MaxFrame)
				return "oversized frame"
			case errors.Is(err, io.EOF):
				return "closed by peer"
			case errors.As(err, &ne) && ne.Timeout():
				if sess.retired() {
					return "replaced"
				}
				if fr.Buffered() > 0 {
					return "frame not completed in time"
				}
				return "idle"
			}
			return err.Error()
		}
		// Whatever is buffered now belongs to the next frame, which starts
		// its own FrameTimeout from here.
		dr.start = time.Time{}
		if err := s.handle(codec, frame, &m, log); err != nil {
			refusals++
			if refusals >= s.cfg.MaxRefusals {
				log.Warn("pos session closed: too many refused frames", "refusals", refusals)
				return "too many refused frames"
			}
			continue
		}
		refusals = 0
	}
}

// handle judges one frame. It returns an error for a refusal; late
// evidence is not a refusal.
func (s *Server) handle(codec *Codec, frame []byte, m *Message, log *slog.Logger) error {
	if err := codec.Open(frame); err != nil {
		if errors.Is(err, ErrSignature) {
			s.stats.BadSig.Add(1)
		} else {
			s.stats.Malformed.Add(1)
		}
		log.Warn("pos message refused", "reason", reason(err), "bytes", len(frame))
		return err
	}
	if err := codec.Decode(m); err != nil {
		s.stats.Undecoded.Add(1)
		log.Warn("pos message refused: signed but not usable", "reason", reason(err), "payload", string(codec.Canonical()))
		return err
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if err := s.guard.Check(s.cfg.Now(), m.Timestamp, m.Nonce); err != nil {
		if errors.Is(err, ErrReplay) {
			s.stats.Replayed.Add(1)
			log.Warn("pos message refused", "reason", reason(err), "type", m.Type, "txn_id", m.TxnID, "nonce", m.Nonce)
			return err
		}
		// Stale (or a timestamp we cannot read, or the guard is full): the
		// message is authentic, so it is kept, but not acted on.
		s.stats.Late.Add(1)
		log.Warn("pos message not acted on; kept as evidence", "reason", reason(err), "type", m.Type, "status", m.Status, "txn_id", m.TxnID)
		s.handler.Late(m, err)
		return nil
	}
	s.stats.Received.Add(1)
	log.Debug("pos message", "type", m.Type, "status", m.Status, "txn_id", m.TxnID)
	s.handler.Message(m)
	return nil
}

func reason(err error) string {
	s := err.Error()
	const p = "mobypay: "
	for len(s) > len(p) && s[:len(p)] == p {
		s = s[len(p):]
	}
	return s
}
