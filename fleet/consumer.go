package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// SeqRange is an inclusive range of seqs.
type SeqRange struct{ From, To uint64 }

func (r SeqRange) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// KioskReport is what an audit learnt of one kiosk.
type KioskReport struct {
	KioskID    string
	Events     int        // distinct seqs seen
	Lowest     uint64     // the lowest seq seen (an audit sees what was published while it listened)
	Highest    uint64     // the highest seq seen
	Gaps       []SeqRange // seqs missing between Lowest and Highest
	Duplicates int        // events seen again with the same seq (resends)
	Conflicts  []uint64   // seqs seen again with different content: a bug
	OutOfOrder int        // new seqs that came after a higher one
	Tombstones []uint64   // seqs the broker refused and the kiosk replaced (Event.Refused)
	LastSeen   time.Time  // when its last message (event or status) arrived
	// Lag is how long after its record was written the newest event
	// arrived, MaxLag the longest of any first arrival: a kiosk catching up after an
	// outage shows hours, one keeping up shows milliseconds. Both read
	// the kiosk's clock against the consumer's, so a kiosk whose clock
	// is off shows that too (a negative lag is a clock ahead).
	Lag, MaxLag time.Duration
	Status      *Status // the last status (retained: the kiosk's last word)
	BadSchema   int     // messages of a schema this version does not know

	seen map[uint64]digest
}

// Online reports the kiosk's retained status: false when it never said
// or its Will (or clean stop) said offline.
func (k *KioskReport) Online() bool { return k.Status != nil && k.Status.Online }

// PendingReviews is from the last status.
func (k *KioskReport) PendingReviews() int {
	if k.Status == nil {
		return 0
	}
	return k.Status.PendingReviews
}

type digest struct {
	sum  [32]byte
	tomb bool
}

// Report is an audit's result, by kiosk_id.
type Report struct {
	Kiosks      map[string]*KioskReport
	Undecodable int // messages on kioskd topics that were no schema-1 JSON
}

// collector de-duplicates by (kiosk_id, seq), as every consumer must.
type collector struct {
	mu sync.Mutex
	r  Report
}

func newCollector() *collector {
	return &collector{r: Report{Kiosks: map[string]*KioskReport{}}}
}

func (c *collector) kiosk(id string) *KioskReport {
	k := c.r.Kiosks[id]
	if k == nil {
		k = &KioskReport{KioskID: id, seen: map[uint64]digest{}}
		c.r.Kiosks[id] = k
	}
	return k
}

// add takes one message; it returns the decoded event or status for
// Watch (nil when the message was not one).
func (c *collector) add(topic string, payload []byte, now time.Time) (*Event, *Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := strings.Split(topic, "/")
	if len(parts) != 3 || parts[0] != "kioskd" {
		return nil, nil
	}
	switch parts[2] {
	case "journal":
		var ev Event
		if err := json.Unmarshal(payload, &ev); err != nil || ev.KioskID == "" || ev.Seq == 0 {
			c.r.Undecodable++
			return nil, nil
		}
		k := c.kiosk(ev.KioskID)
		k.LastSeen = now
		if ev.Schema != Schema {
			k.BadSchema++
			return &ev, nil
		}
		d := digest{sum: sha256.Sum256(payload), tomb: ev.Refused != nil}
		if old, ok := k.seen[ev.Seq]; ok {
			k.Duplicates++
			// A tombstone and the full record may meet when the broker's
			// limit changed between a refusal and a resend: not a bug.
			if old.sum != d.sum && !old.tomb && !d.tomb {
				k.Conflicts = append(k.Conflicts, ev.Seq)
			}
			return &ev, nil
		}
		k.seen[ev.Seq] = d
		if d.tomb {
			k.Tombstones = append(k.Tombstones, ev.Seq)
		}
		if ev.Seq < k.Highest {
			k.OutOfOrder++
		}
		if k.Events == 0 || ev.Seq < k.Lowest {
			k.Lowest = ev.Seq
		}
		if !ev.At.IsZero() {
			lag := now.Sub(ev.At)
			k.MaxLag = max(k.MaxLag, lag)
			if ev.Seq >= k.Highest {
				k.Lag = lag
			}
		}
		k.Highest = max(k.Highest, ev.Seq)
		k.Events++
		return &ev, nil
	case "status":
		var st Status
		if err := json.Unmarshal(payload, &st); err != nil || st.KioskID == "" {
			c.r.Undecodable++
			return nil, nil
		}
		k := c.kiosk(st.KioskID)
		k.LastSeen = now
		if st.Schema != Schema {
			k.BadSchema++
		}
		k.Status = &st
		return nil, &st
	}
	return nil, nil
}

// events is how many distinct seqs of kiosk arrived.
func (c *collector) events(kiosk string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.r.Kiosks[kiosk]; k != nil {
		return k.Events
	}
	return 0
}

// report returns a copy with the gaps computed.
func (c *collector) report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Report{Kiosks: make(map[string]*KioskReport, len(c.r.Kiosks)), Undecodable: c.r.Undecodable}
	for id, k := range c.r.Kiosks {
		cp := *k
		cp.seen = nil
		cp.Conflicts = slices.Clone(k.Conflicts)
		cp.Tombstones = slices.Clone(k.Tombstones)
		if k.Status != nil {
			st := *k.Status
			cp.Status = &st
		}
		cp.Gaps = gaps(k.seen)
		out.Kiosks[id] = &cp
	}
	return out
}

// gaps are the seqs missing between the lowest and the highest seen.
// They are found from the seqs that arrived, sorted, never by walking
// the range: one message with seq 2^63, from a buggy kiosk or anyone
// who can publish, would otherwise hold the audit for ever.
func gaps(seen map[uint64]digest) []SeqRange {
	seqs := make([]uint64, 0, len(seen))
	for s := range seen {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	var out []SeqRange
	for i := 1; i < len(seqs); i++ {
		if seqs[i] > seqs[i-1]+1 {
			out = append(out, SeqRange{seqs[i-1] + 1, seqs[i] - 1})
		}
	}
	return out
}

// subscribe connects an operator's client to cfg's broker and feeds
// every kioskd journal and status message to fn, until ctx ends.
// Its client id is random (two operators, or an audit beside a watch,
// must not take each other's session over) and its session outlives a
// reconnect by ten minutes, so that the broker queues what was published
// while the operator's link was down instead of the audit reporting a
// gap the kiosk did not make. ready, if not nil, is closed after the
// first SUBACK. Clean start is off from the first connection (the
// random id has no old session anyway): Mosquitto 2.0.11 does not keep
// across its restart the session of a client that connected with clean
// start on, and the audit then saw gaps the kiosk never made.
func subscribe(ctx context.Context, cfg Config, ready chan<- struct{}, fn func(topic string, payload []byte)) (*autopaho.ConnectionManager, error) {
	cr, err := cfg.load(false)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Broker)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	subs := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "kioskd/+/journal", QoS: 1},
		{Topic: "kioskd/+/status", QoS: 1},
	}}
	log := cfg.Log
	if log == nil {
		log = discardLogger()
	}
	var once sync.Once
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     keepAlive,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         600,
		ReconnectBackoff:              pahoBackoff(&cfg),
		ConnectTimeout:                10 * time.Second,
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			c, err := dial(ctx, u, cr.TLS)
			if err != nil {
				return nil, err
			}
			return &turnConn{Conn: c, armed: new(atomic.Pointer[turn])}, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			// In a goroutine: OnConnectionUp must not block, and a
			// subscription waits for its SUBACK.
			go func() {
				if _, err := cm.Subscribe(ctx, subs); err != nil {
					if ctx.Err() == nil {
						log.Warn("fleet: subscribe", "err", err)
					}
					return
				}
				if ready != nil {
					once.Do(func() { close(ready) })
				}
			}()
		},
		OnConnectError:  func(err error) { log.Warn("fleet: cannot reach the broker", "broker", cfg.Broker, "err", err) },
		ConnectUsername: cr.Username,
		ConnectPassword: cr.Password,
		ClientConfig: paho.ClientConfig{
			ClientID: "kioskd-op-" + hex.EncodeToString(rnd[:]),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(p paho.PublishReceived) (bool, error) {
					fn(p.Packet.Topic, p.Packet.Payload)
					return true, nil
				},
			},
		},
	}
	cm, err := autopaho.NewConnection(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return cm, nil
}

// Watch prints every kiosk's events and statuses as they arrive, one
// line each, until ctx ends. cfg needs Broker (and the TLS and password
// files the broker wants); KioskID is not used.
func Watch(ctx context.Context, cfg Config, w io.Writer) error {
	c := newCollector()
	var mu sync.Mutex
	cm, err := subscribe(ctx, cfg, nil, func(topic string, payload []byte) {
		ev, st := c.add(topic, payload, time.Now())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev != nil:
			fmt.Fprintln(w, eventLine(ev))
		case st != nil:
			fmt.Fprintln(w, statusLine(st))
		default:
			fmt.Fprintf(w, "? %s: %d bytes not understood\n", topic, len(payload))
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	<-cm.Done()
	return nil
}

func eventLine(ev *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s seq=%d %s", ev.At.UTC().Format(time.RFC3339), ev.KioskID, ev.Seq, ev.Kind)
	if ev.Txn != nil {
		fmt.Fprintf(&b, " txn=%s state=%s vend=%s amount=%d", ev.Txn.ID, ev.Txn.State, ev.Txn.Vend, ev.Txn.Amount)
	}
	if ev.Evidence != nil {
		fmt.Fprintf(&b, " evidence=%s/%s", ev.Evidence.Source, ev.Evidence.Type)
	}
	if ev.Refused != nil {
		fmt.Fprintf(&b, " REFUSED by the broker (reason 0x%02x, %d bytes); see the kiosk's journal", ev.Refused.Reason, ev.Refused.Size)
	}
	return b.String()
}

func statusLine(st *Status) string {
	if !st.Online {
		return fmt.Sprintf("%s %s OFFLINE", time.Now().UTC().Format(time.RFC3339), st.KioskID)
	}
	disk := "?"
	if st.DiskFreeMiB != nil {
		disk = fmt.Sprintf("%dMiB", *st.DiskFreeMiB)
	}
	line := fmt.Sprintf("%s %s online version=%s uptime=%ds pos=%s printer=%s watchdog=%s faults=%v reviews=%d disk_free=%s shipped=%d",
		st.At.UTC().Format(time.RFC3339), st.KioskID, st.Version, st.UptimeS, st.POS, st.Printer, st.Watchdog, st.Faults, st.PendingReviews, disk, st.ShippedSeq)
	if f := st.UpdateFailed; f != nil {
		line += fmt.Sprintf(" update_failed=%s@%s", f.Version, f.At.UTC().Format(time.RFC3339))
	}
	return line
}

// Audit listens for window (or until ctx ends) and reports, per kiosk,
// the seqs seen, gaps, duplicates and conflicting duplicates, and the
// retained status. A kiosk's events from before the audit started are
// not on the broker (they are not retained), so gaps are counted from
// the lowest seq seen.
func Audit(ctx context.Context, cfg Config, window time.Duration) (Report, error) {
	return audit(ctx, cfg, window, nil, nil)
}

// StartAudit is Audit for a caller that must know when the audit
// listens (a test that makes the kiosks write only then): it returns
// once the broker acknowledged the subscription, and wait returns the
// report when window or ctx ends.
func StartAudit(ctx context.Context, cfg Config, window time.Duration) (wait func() (Report, error), err error) {
	type result struct {
		r   Report
		err error
	}
	ready := make(chan struct{})
	res := make(chan result, 1)
	go func() {
		r, err := audit(ctx, cfg, window, ready, nil)
		res <- result{r, err}
	}()
	select {
	case <-ready:
		return func() (Report, error) { r := <-res; return r.r, r.err }, nil
	case r := <-res:
		if r.err == nil {
			r.err = errors.New("fleet: audit ended before it subscribed")
		}
		return nil, r.err
	}
}

// audit is Audit that also ends once done says the collection is
// complete (tests: every seq arrived), checked after each message, and
// closes ready once it listens. done must be cheap: a consumer slower
// than the kiosks makes the broker drop messages for it.
func audit(ctx context.Context, cfg Config, window time.Duration, ready chan<- struct{}, done func(*collector) bool) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	c := newCollector()
	cm, err := subscribe(ctx, cfg, ready, func(topic string, payload []byte) {
		c.add(topic, payload, time.Now())
		if done != nil && done(c) {
			cancel()
		}
	})
	if err != nil {
		return Report{}, err
	}
	<-ctx.Done()
	<-cm.Done()
	return c.report(), nil
}
