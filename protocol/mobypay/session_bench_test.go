package mobypay

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

type nopHandler struct{}

func (nopHandler) Message(*Message)            {}
func (nopHandler) Late(*Message, error)        {}
func (nopHandler) ConnState(ConnState, string) {}

// BenchmarkSessionMessage is the session loop's cost per received message
// once a frame is read: verify, decode, replay guard, dispatch. The clock
// advances 100 ms per message so the guard stays at steady-state size.
func BenchmarkSessionMessage(b *testing.B) {
	const n = 1024
	start := time.UnixMilli(1757482370549)
	signer := NewCodec([]byte(DevSecret))
	frames := make([][]byte, n)
	for i := range frames {
		ts := start.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli()
		p := fmt.Sprintf(`{"type": "transaction_result", "txn_id": "TXN1757482355464", "status": "success", "pos_id": "POS001", "transaction_id": "000410", "amount": 2.0, "timestamp": "%d", "nonce": "nonce-%06d-joHQ83Mp9dWbFsREU=="}`, ts, i)
		f, err := signer.Seal(nil, []byte(p))
		if err != nil {
			b.Fatal(err)
		}
		frames[i] = f[:len(f)-1]
	}
	var clock time.Time
	log := slog.New(slog.DiscardHandler)
	s := &Server{cfg: ServerConfig{Window: DefaultWindow, Now: func() time.Time { return clock }}, handler: nopHandler{},
		log: log, agg: newLogAgg(log, 10*time.Second)}
	ss := &session{role: roleCurrent}
	ss.proven.Store(true)
	codec := NewCodec([]byte(DevSecret))
	var m Message
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Each pass over the frames starts a fresh guard: the nonces repeat.
		if i%n == 0 {
			s.guard = NewReplayGuard(DefaultWindow, 0)
		}
		clock = start.Add(time.Duration(i%n) * 100 * time.Millisecond)
		if err := s.handle(ss, codec, frames[i%n], &m); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
