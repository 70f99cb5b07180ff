package mobypay

// The session rules: which connection becomes the session, is held pending, or is refused.

import (
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"
)

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
	ss := &session{conn: c, peer: peer, host: host, since: time.Now(), role: roleNew}
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
