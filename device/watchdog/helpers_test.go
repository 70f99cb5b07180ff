package watchdog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// wait bounds every blocking step of a test; nothing waits this long when
// the code is right. Inside a bubble it is the bubble's time, so a test
// that would hang fails after wait of fake time instead.
const wait = 5 * time.Second

// recorder is a slog.Handler that keeps the records.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// find returns the records with msg, each as its attributes.
func (r *recorder) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// harness runs a supervisor on a Fake. It must be made inside a
// synctest bubble: the supervisor's own ticker then runs on the bubble's
// clock, time moves only when every goroutine of the bubble is blocked,
// and synctest.Wait returns once Run has finished with every tick that
// came due. A test steps time with tick and sees each tick's whole
// effect, with no clock of its own and no polling.
type harness struct {
	dev    *Fake
	sup    *Supervisor
	logs   *recorder
	period time.Duration
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, timeout time.Duration, opts ...Option) *harness {
	t.Helper()
	h := &harness{dev: NewFake(timeout), logs: &recorder{}}
	h.sup = NewSupervisor(h.dev, slog.New(h.logs), opts...)
	return h
}

// start runs the supervisor through the tick it makes at once.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.sup.Run(ctx) }()
	// Cleanups run inside the bubble, which may not end while Run does.
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	synctest.Wait()
	h.period = h.sup.Status().Interval
}

// tick lets one feeding period pass and Run judge the tick it brings.
func (h *harness) tick() {
	time.Sleep(h.period)
	synctest.Wait()
}

// fed checks that the last tick fed the device.
func (h *harness) fed(t *testing.T) {
	t.Helper()
	select {
	case <-h.dev.Fed():
	default:
		t.Fatal("not fed")
	}
}

// noFeed checks that nothing fed the device since the last fed.
func (h *harness) noFeed(t *testing.T) {
	t.Helper()
	select {
	case <-h.dev.Fed():
		t.Fatal("fed after the stall")
	default:
	}
}

// stalled checks that the feeding has stopped by now.
func (h *harness) stalled(t *testing.T) {
	t.Helper()
	select {
	case <-h.sup.Stalled():
	default:
		t.Fatal("stall not detected")
	}
}

func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}
