package payment

import (
	"errors"
	"fmt"
)

// ErrPaused is a new payment refused because the kiosk is not selling
// for now (an update is being installed); the reason says why.
var ErrPaused = errors.New("payment: not taking new payments")

// PausedError is ErrPaused with its reason, so that the control API can
// hand the reason on by itself.
type PausedError struct{ Reason string }

func (e *PausedError) Error() string { return fmt.Sprintf("%v: %s", ErrPaused, e.Reason) }

// Is makes errors.Is(err, ErrPaused) hold.
func (e *PausedError) Is(target error) bool { return target == ErrPaused }

// Pause refuses every new payment, from any source (control API, price
// buttons, MDB, a KPOS submit), with reason until Resume. Every sale
// starts in create on the loop, so this one check covers them all. The
// payment in progress, if any, goes on to its end and its vend.
func (s *Service) Pause(reason string) {
	s.mu.Lock()
	s.paused = reason
	s.mu.Unlock()
}

// Resume takes new payments again.
func (s *Service) Resume() { s.Pause("") }

// Paused returns why new payments are refused, "" when they are not.
func (s *Service) Paused() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}
