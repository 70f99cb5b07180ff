package payment

import (
	"context"
	"errors"
	"testing"
)

// A paused service refuses new payments with its reason, journals none,
// and lets the payment already in progress end with its vend.
func TestPauseRefusesNewPayments(t *testing.T) {
	h := start(t, fastConfig())
	ctx := context.Background()
	tx := h.pay("card", 100)
	h.svc.Pause("updating: installing /b.raucb")
	_, err := h.svc.Create(ctx, CreateRequest{Mode: "card", Amount: 1})
	var pe *PausedError
	if !errors.Is(err, ErrPaused) || !errors.As(err, &pe) || pe.Reason != "updating: installing /b.raucb" {
		t.Fatalf("paused: %v", err)
	}
	h.svc.Report(ack(tx.ID, "processing"))
	h.svc.Report(success(tx.ID, 100))
	h.wait(tx.ID, func(t Txn) bool { return t.Vend == VendReleased })
	if l, _ := h.j.List(0); len(l) != 1 {
		t.Fatalf("a refused payment was journaled: %+v", l)
	}
	h.svc.Resume()
	if h.svc.Paused() != "" {
		t.Fatal("still paused")
	}
	h.pay("card", 200)
}
