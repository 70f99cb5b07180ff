package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/kioskd/kioskd/payment"
)

// Source is the journal as the shipper sees it.
type Source interface {
	Records(after uint64, max int) ([]payment.Record, error) // Seq > after, ascending, at most max
	Shipped() (uint64, error)                                // the durable cursor
	SetShipped(seq uint64) error                             // durable; never moves back (lower is ignored)
}

const (
	// window is how many QoS 1 publishes are in flight at once: enough
	// to hide a WAN round trip (32 records per RTT), few enough that a
	// reconnect resends little. The broker's Receive Maximum (Mosquitto:
	// 20) may hold it lower; paho waits for a slot then.
	window = 32
	// batch is how many records one Records call reads.
	batch = 256
	// flushEvery and flushCount bound how often the cursor is written:
	// each SetShipped is an fsync under the journal's writer lock, which
	// payments wait for. A crash loses at most this much progress, which
	// costs resends, never a gap.
	flushEvery = 250 * time.Millisecond
	flushCount = 256
	// fallbackTick looks at the journal when no Notify came (a daemon
	// that forgot one, or a record written before Run started).
	fallbackTick = 5 * time.Second
	// statusCheck bounds how often status() is asked whether anything
	// changed.
	statusCheck = time.Second
	// refusedTries is how many times a record the broker refuses is
	// tried before it is replaced by a tombstone (see Run).
	refusedTries = 5
	// sessionExpiry keeps the broker's session through a week offline.
	sessionExpiry = 7 * 24 * 3600
	keepAlive     = 30 // seconds
	// stopTimeout bounds the clean stop: offline status, DISCONNECT.
	stopTimeout = 5 * time.Second
)

// Stats is what the shipper has done since New.
type Stats struct {
	Shipped     uint64    // records the cursor moved over since New
	ShippedSeq  uint64    // the cursor: every seq up to it is acknowledged
	SeenSeq     uint64    // the highest seq read from the journal
	Lag         uint64    // SeenSeq - ShippedSeq
	Connected   bool      // a connection to the broker is up
	Refused     uint64    // records replaced by a tombstone after refusals
	LastError   string    // the last failure (connect, publish, journal)
	LastErrorAt time.Time // when
}

// Shipper publishes the journal after its durable cursor to the broker,
// and the kiosk's status beside it. It never blocks the journal's
// writers: it reads in batches and writes the cursor at most 4 times a
// second, and Notify never waits.
type Shipper struct {
	cfg    Config
	cr     *Credentials
	url    *url.URL
	src    Source
	status func() Status
	log    *slog.Logger
	start  time.Time

	jTopic, sTopic string
	offline        []byte

	notify chan struct{} // coalescing, capacity 1
	down   chan struct{} // coalescing: the connection was lost

	armed  atomic.Pointer[turn]
	conn   atomic.Pointer[turnConn]
	abrupt atomic.Bool // tests: stop as a crash would, no flush, no DISCONNECT

	mu    sync.Mutex
	stats Stats

	// Owned by Run's goroutine.
	lastStatus []byte    // last published status, without the times
	statusAt   time.Time // when it was published
	checkedAt  time.Time // when status() was last asked
	refSeq     uint64    // the record the broker refused last
	refTries   int       // how often in a row
	refReason  byte      // its last PUBACK reason
	fails      int       // epochs in a row that ended in a failure

	connLog, pubLog, srcLog rateLog
}

// New checks cfg, reads its files and returns a shipper over src.
// status is called from Run's goroutine, at most once a second; it may
// be nil.
func New(cfg Config, src Source, status func() Status) (*Shipper, error) {
	cr, err := cfg.Load()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Broker) // Load validated it
	if cfg.StatusEvery == 0 {
		cfg.StatusEvery = DefaultStatusEvery
	}
	log := cfg.Log
	if log == nil {
		log = discardLogger()
	}
	if status == nil {
		status = func() Status { return Status{} }
	}
	off, _ := json.Marshal(Status{Schema: Schema, KioskID: cfg.KioskID})
	const period = time.Minute
	return &Shipper{
		cfg: cfg, cr: cr, url: u, src: src, status: status,
		log:    log.With("component", "fleet"),
		start:  time.Now(),
		jTopic: JournalTopic(cfg.KioskID), sTopic: StatusTopic(cfg.KioskID),
		offline: off,
		notify:  make(chan struct{}, 1),
		down:    make(chan struct{}, 1),
		connLog: rateLog{period: period}, pubLog: rateLog{period: period}, srcLog: rateLog{period: period},
	}, nil
}

// Notify tells the shipper the journal has new records. The daemon calls
// it after every journal write; it never blocks, and many calls before
// the shipper looks count as one.
func (s *Shipper) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if st.SeenSeq > st.ShippedSeq {
		st.Lag = st.SeenSeq - st.ShippedSeq
	}
	return st
}

func (s *Shipper) fail(err error) {
	s.mu.Lock()
	s.stats.LastError, s.stats.LastErrorAt = errString(err), time.Now()
	s.mu.Unlock()
}

// Run ships until ctx ends, then publishes the offline status, writes
// the cursor and disconnects. An absent broker is no error: autopaho
// keeps trying, with back-off. It returns an error only when it cannot
// start.
func (s *Shipper) Run(ctx context.Context) error {
	// The connection outlives ctx by the clean stop: the offline status
	// must go out before the DISCONNECT that ctx's end would send.
	connCtx, stopConn := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConn()
	cm, err := autopaho.NewConnection(connCtx, s.clientConfig())
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	for ctx.Err() == nil {
		if cm.AwaitConnection(ctx) != nil {
			break
		}
		select { // a loss before this connection is old news
		case <-s.down:
		default:
		}
		progressed, err := s.epoch(ctx, cm)
		if ctx.Err() != nil {
			break
		}
		if progressed {
			s.fails = 0
		}
		if err == nil || errors.Is(err, errConnLost) {
			continue // autopaho reconnects; AwaitConnection waits for it
		}
		s.fail(err)
		d := retryDelay(s.fails)
		if s.cfg.backoff != nil {
			d = s.cfg.backoff(s.fails + 1)
		}
		s.pubLog.log(s.log, slog.LevelWarn, "fleet: shipping paused", "err", err, "retry_in", d)
		t := time.NewTimer(d)
		s.fails++
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if s.abrupt.Load() {
		if c := s.conn.Load(); c != nil {
			c.Close()
		}
		stopConn()
		<-cm.Done()
		return nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if s.Stats().Connected {
		if _, err := cm.Publish(sctx, &paho.Publish{QoS: 1, Retain: true, Topic: s.sTopic, Payload: s.offline}); err != nil {
			s.log.Warn("fleet: offline status not published", "err", err)
		}
	}
	if err := cm.Disconnect(sctx); err != nil {
		s.log.Warn("fleet: disconnect", "err", err)
	}
	// autopaho calls OnConnectionDown only for a connection it lost.
	s.mu.Lock()
	s.stats.Connected = false
	s.mu.Unlock()
	return nil
}

// retryDelay is the pause after a failed epoch on a live connection
// (refused record, publish timeout): 0.5 s doubling to a minute.
func retryDelay(fails int) time.Duration {
	d := 500 * time.Millisecond << min(fails, 7)
	return min(d, time.Minute)
}

var errConnLost = errors.New("fleet: connection lost")

func (s *Shipper) clientConfig() autopaho.ClientConfig {
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{s.url},
		KeepAlive:                     keepAlive,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         sessionExpiry,
		ReconnectBackoff:              pahoBackoff(&s.cfg),
		ConnectTimeout:                10 * time.Second,
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			c, err := dial(ctx, u, s.cr.TLS)
			if err != nil {
				return nil, err
			}
			tc := &turnConn{Conn: c, armed: &s.armed}
			s.conn.Store(tc)
			return tc, nil
		},
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			s.mu.Lock()
			s.stats.Connected = true
			s.mu.Unlock()
			s.log.Info("fleet: connected", "broker", s.cfg.Broker)
		},
		OnConnectionDown: func() bool {
			s.mu.Lock()
			s.stats.Connected = false
			s.mu.Unlock()
			select {
			case s.down <- struct{}{}:
			default:
			}
			return true
		},
		OnConnectError: func(err error) {
			s.fail(err)
			s.connLog.log(s.log, slog.LevelWarn, "fleet: cannot reach the broker", "broker", s.cfg.Broker, "err", err)
		},
		ConnectUsername: s.cr.Username,
		ConnectPassword: s.cr.Password,
		WillMessage:     &paho.WillMessage{Retain: true, QoS: 1, Topic: s.sTopic, Payload: s.offline},
		DisconnectPacketBuilder: func() *paho.Disconnect {
			if s.abrupt.Load() {
				return nil
			}
			return &paho.Disconnect{ReasonCode: 0}
		},
		ClientConfig: paho.ClientConfig{
			ClientID: "kioskd-" + s.cfg.KioskID,
			// A PUBACK later than this ends the epoch and resends from
			// the cursor: a broker that slow is as good as gone.
			PacketTimeout: 30 * time.Second,
		},
	}
}

// result is one publisher's outcome.
type result struct {
	seq    uint64 // 0 for a status
	tomb   bool
	reason byte // the PUBACK's reason code when the broker refused
	err    error
}

// publish starts one publisher after prev's turn and returns its own.
// A publisher whose predecessor failed, or whose epoch ended, does not
// publish at all (abort ends the epoch on a failure): a later seq
// written after an earlier one failed would reach the consumer ahead
// of the earlier one's resend. Only a refusal, which the PUBACK reports
// after the successors were written, still reorders.
func (s *Shipper) publish(ctx context.Context, abort context.CancelFunc, cm *autopaho.ConnectionManager, prev *turn, p *paho.Publish, r result, out chan<- result) *turn {
	mine := newTurn()
	go func() {
		defer mine.pass() // never leave a successor waiting
		select {
		case <-prev.ch:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			r.err = err
			out <- r
			return
		}
		s.armed.Store(mine)
		resp, err := cm.Publish(ctx, p)
		s.armed.CompareAndSwap(mine, nil)
		if err != nil && resp != nil && resp.ReasonCode >= 0x80 {
			r.reason = resp.ReasonCode
		}
		r.err = err
		out <- r // before abort: the epoch must see this failure, not a successor's cancel
		if err != nil && r.seq != 0 {
			abort()
		}
	}()
	return mine
}
