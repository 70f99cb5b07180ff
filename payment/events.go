package payment

// What goroutines other than the loop see: the events published on each
// change, and the snapshot the API reads under mu (live, kept by publish;
// pos, kept by onLink), so that no reader waits on the loop and no slow
// subscriber holds up a payment.

import (
	"slices"
	"time"
)

// Event is published on every change the controller may care about.
type Event struct {
	Kind string    `json:"kind"` // "payment" or "pos"
	At   time.Time `json:"at"`
	Txn  *Txn      `json:"txn,omitempty"`
	POS  *POSState `json:"pos,omitempty"`
}

// POSState is the terminal link.
type POSState struct {
	Provider string    `json:"provider"`
	State    string    `json:"state"` // disconnected, connected, in_payment, error
	Peer     string    `json:"peer,omitempty"`
	Since    time.Time `json:"since"`
}

// Current returns the payment in progress, if any.
func (s *Service) Current() *Txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasLive {
		return nil
	}
	t := s.live
	return &t
}

// Get returns one payment: the one in progress as the service has it,
// which may be a step ahead of the journal (Service.soon holds "sent" and
// acks for the next commit), any other from the journal.
func (s *Service) Get(id string) (Txn, error) {
	if t := s.Current(); t != nil && t.ID == id {
		return *t, nil
	}
	return s.j.Get(id)
}

// List is Journal.List with the payment in progress as Get has it.
func (s *Service) List(n int) ([]Txn, error) {
	cur := s.Current()
	list, err := s.j.List(n)
	if cur != nil {
		for i := range list {
			if list[i].ID == cur.ID {
				list[i] = *cur
			}
		}
	}
	return list, err
}

// POS returns the state of each provider's link.
func (s *Service) POS() []POSState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]POSState, 0, len(s.pos))
	for _, p := range s.pos {
		if s.hasLive && s.live.Provider == p.Provider && p.State == "connected" {
			p.State = "in_payment"
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b POSState) int {
		if a.Provider < b.Provider {
			return -1
		}
		return 1
	})
	return out
}

// Subscribe returns a channel of events. A subscriber that falls behind
// by more than the buffer is dropped (its channel closed) rather than
// ever slowing a payment.
func (s *Service) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}
}

func (s *Service) publish(e Event) {
	e.At = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Txn != nil {
		if s.cur != nil && s.cur.ID == e.Txn.ID {
			s.live, s.hasLive = *s.cur, true
		} else if s.hasLive && s.live.ID == e.Txn.ID {
			s.live, s.hasLive = Txn{}, false
		}
	}
	for ch := range s.subs {
		select {
		case ch <- e:
		default:
			delete(s.subs, ch)
			close(ch)
		}
	}
}
