package mobypay

// A connection's read loop: deadlines, frame judging, and the end of a session.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

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
		err = s.handle(ss, codec, frame, &m)
		if len(frame) > 4<<10 {
			// Real frames are under 2 KiB; the parser keeps its arrays at
			// their high-water mark, so one large frame (signed or not)
			// would pin them for the connection's life.
			codec = nil
		}
		if err != nil {
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
			"pos message refused", "peer", ss.peer, "reason", err.Error(), "bytes", len(frame))
		return err
	}
	if err := codec.Decode(m); err != nil {
		if isPing(frame) {
			s.stats.Pings.Add(1)
			return nil
		}
		s.stats.Undecoded.Add(1)
		s.agg.event(slog.LevelWarn, ss.host, "pos messages refused", "signed but not usable",
			"pos message refused: signed but not usable", "peer", ss.peer, "reason", err.Error(), "payload", string(codec.Canonical()))
		return err
	}
	ping := m.Type == typePing
	if ping {
		s.stats.Pings.Add(1)
		if m.TxnID == "" {
			// A keepalive; signed, it still proves the connection if it is
			// fresh and its nonce new. Its nonce is not journaled, so after
			// a restart the guard has not seen it: one stamped before this
			// server started may be a capture replayed to take the slot
			// (and the last-proven host) and proves nothing.
			if m.Nonce != "" {
				s.hmu.Lock()
				var p proof
				if s.guard.Check(s.cfg.Now(), m.Timestamp, m.Nonce) == nil && s.stampedSinceStart(m.Timestamp) {
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
			"pos message refused", "peer", ss.peer, "reason", err.Error(), "type", m.Type, "txn_id", m.TxnID, "nonce", m.Nonce)
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
		"pos message not acted on; kept as evidence", "peer", ss.peer, "reason", err.Error(),
		"type", m.Type, "status", m.Status, "txn_id", m.TxnID)
	return nil
}

func (s *Server) stampedSinceStart(timestamp string) bool {
	ms, err := parseMillis(timestamp)
	return err == nil && ms >= s.started.UnixMilli() // stamps are whole milliseconds
}
