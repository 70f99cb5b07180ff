package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/fleet/fleettest"
)

func TestNotifyNeverBlocks(t *testing.T) {
	s, err := New(Config{Broker: "mqtt://127.0.0.1:1", KioskID: "k"}, newFakeJournal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 10000 {
			s.Notify()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("10,000 Notify calls with no shipper reading did not return in 5s")
	}
	if len(s.notify) != 1 {
		t.Errorf("%d notifications pending, want them coalesced into 1", len(s.notify))
	}
}

func TestAdvance(t *testing.T) {
	acked := map[uint64]bool{2: true, 3: true, 5: true}
	c, order := advance(1, []uint64{2, 3, 4, 5}, acked)
	if c != 3 || !slices.Equal(order, []uint64{4, 5}) {
		t.Errorf("advance = %d %v; want 3 [4 5]", c, order)
	}
}

// chanHandler passes the log records' messages on, so that a test can
// wait for one instead of polling.
type chanHandler struct{ c chan string }

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.c <- r.Message:
	default:
	}
	return nil
}
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h chanHandler) WithGroup(string) slog.Handler      { return h }

// TestRunBrokerAbsent: no broker is no error; Run keeps trying, says
// so, and returns when told to.
func TestRunBrokerAbsent(t *testing.T) {
	logs := make(chan string, 100)
	cfg := Config{Broker: fmt.Sprintf("mqtt://127.0.0.1:%d", fleettest.FreePort(t)), KioskID: "k", Log: slog.New(chanHandler{logs}),
		backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	j := newFakeJournal()
	j.add(10)
	s, err := New(cfg, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for msg := ""; msg != "fleet: cannot reach the broker"; {
		select {
		case msg = <-logs:
		case <-deadline:
			t.Fatal("no connect failure logged in 10s")
		}
	}
	if st := s.Stats(); st.Connected || st.LastError == "" || st.ShippedSeq != 0 {
		t.Errorf("Stats = %+v; want disconnected, the connect error, nothing shipped", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run with no broker = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return 10s after its context ended")
	}
	if j.cursor() != 0 {
		t.Errorf("cursor %d with no broker", j.cursor())
	}
}
