package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/kioskd/kioskd/payment"
)

// epoch ships over one connection, from the durable cursor, until the
// connection is lost, a publish fails or ctx ends. It reports whether
// any record was acknowledged. Ending an epoch on any failure and
// starting the next from the durable cursor is what makes the stream
// simple to reason about: the cursor only ever covers a contiguous
// acknowledged prefix, and whatever was in flight is sent again
// (a resend, de-duplicated by the consumer), never skipped.
func (s *Shipper) epoch(ctx context.Context, cm *autopaho.ConnectionManager) (progressed bool, err error) {
	ectx, cancel := context.WithCancel(ctx)
	cursor, err := s.src.Shipped()
	if err != nil {
		cancel()
		return false, fmt.Errorf("fleet: journal cursor: %w", err)
	}
	s.setShippedSeq(cursor)

	var (
		results  = make(chan result, window+1)
		inflight int
		order    []uint64            // seqs in flight or acked beyond the cursor, in publish order
		acked    = map[uint64]bool{} // of those, the acknowledged ones
		next     = cursor            // the last seq handed to a publisher
		buf      []payment.Record    // read, not yet published
		idle     bool                // the journal had nothing after next
		unsaved  int                 // records acked since the last SetShipped
		saved    = cursor
		tail     = newTurn()
		status   bool // a status publish is in flight
		flushT   = time.NewTimer(time.Hour)
		flushOn  bool
	)
	tail.pass()
	flushT.Stop()
	fallback := time.NewTicker(fallbackTick)
	check := time.NewTicker(statusCheck)
	defer func() {
		fallback.Stop()
		check.Stop()
		flushT.Stop()
		cancel()
		// Publishers return at once on cancel; an ack that still comes
		// in counts.
		for ; inflight > 0; inflight-- {
			if r := <-results; r.err == nil && r.seq != 0 {
				acked[r.seq] = true
			}
		}
		cursor, order = advance(cursor, order, acked)
		if !s.abrupt.Load() && cursor > saved {
			if e := s.save(cursor); e != nil && err == nil {
				err = e
			}
		}
	}()

	publishStatus := func(force bool) {
		if status {
			return
		}
		now := time.Now()
		if !force && now.Sub(s.checkedAt) < statusCheck {
			return
		}
		s.checkedAt = now
		st := s.status()
		st.Schema, st.KioskID, st.Online, st.Version = Schema, s.cfg.KioskID, true, s.cfg.Version
		st.UptimeS, st.ShippedSeq, st.At = 0, 0, time.Time{}
		// Compared without the fields that change by themselves, so
		// that "on change" means a change of the kiosk's health.
		key, _ := json.Marshal(st)
		if !force && bytes.Equal(key, s.lastStatus) && now.Sub(s.statusAt) < s.cfg.StatusEvery {
			return
		}
		st.UptimeS = int64(now.Sub(s.start) / time.Second)
		st.ShippedSeq, st.At = cursor, now.UTC()
		payload, _ := json.Marshal(st)
		s.lastStatus, s.statusAt = key, now
		tail = s.publish(ectx, cancel, cm, tail, &paho.Publish{QoS: 1, Retain: true, Topic: s.sTopic, Payload: payload}, result{}, results)
		status = true
		inflight++
	}
	publishStatus(true) // online, on every (re)connection

	for {
		for inflight < window+1 && (len(buf) > 0 || !idle) && len(order) < window {
			if len(buf) == 0 {
				recs, err := s.src.Records(next, batch)
				if err != nil {
					s.srcLog.log(s.log, slog.LevelError, "fleet: journal unreadable", "after", next, "err", err)
					return progressed, fmt.Errorf("fleet: journal records after %d: %w", next, err)
				}
				if len(recs) == 0 {
					idle = true
					break
				}
				buf = recs
				s.seen(recs[len(recs)-1].Seq)
			}
			rec := buf[0]
			buf = buf[1:]
			if rec.Seq <= next {
				continue // not after the cursor: a Source bug, never shipped twice in one epoch
			}
			next = rec.Seq
			payload, tomb, err := s.encode(&rec)
			if err != nil {
				return progressed, err
			}
			order = append(order, rec.Seq)
			tail = s.publish(ectx, cancel, cm, tail, &paho.Publish{QoS: 1, Topic: s.jTopic, Payload: payload}, result{seq: rec.Seq, tomb: tomb}, results)
			inflight++
		}
		// Caught up, the cursor is not written at once: the flush timer
		// armed by the last ack writes it within flushEvery. Writing it
		// on every catch-up made one cursor fsync per payment record,
		// under the journal's writer lock that payments wait for
		// (BenchmarkCommitBesideShipper: 1.7x the floor).

		select {
		case r := <-results:
			inflight--
			if r.seq == 0 {
				status = false
				if r.err != nil {
					s.lastStatus = nil // try again at the next check
					s.pubLog.log(s.log, slog.LevelWarn, "fleet: status not published", "err", r.err)
				}
				continue
			}
			if r.err != nil {
				if r.reason >= 0x80 {
					return progressed, s.refused(r)
				}
				s.fail(r.err)
				select {
				case <-s.down:
					return progressed, errConnLost
				default:
				}
				return progressed, fmt.Errorf("fleet: publish seq %d: %w", r.seq, r.err)
			}
			if r.seq == s.refSeq {
				if r.tomb {
					s.mu.Lock()
					s.stats.Refused++
					s.mu.Unlock()
					s.log.Error("fleet: record refused by the broker, published as a tombstone; it stays in the journal",
						"seq", r.seq, "reason", fmt.Sprintf("0x%02x", r.reason), "tries", s.refTries)
				}
				s.refSeq, s.refTries = 0, 0
			}
			acked[r.seq] = true
			progressed = true
			before := cursor
			cursor, order = advance(cursor, order, acked)
			unsaved += s.acked(before, cursor)
			if unsaved >= flushCount {
				if err := s.save(cursor); err != nil {
					return progressed, err
				}
				saved, unsaved = cursor, 0
			} else if cursor > saved && !flushOn {
				flushT.Reset(flushEvery)
				flushOn = true
			}
		case <-flushT.C:
			flushOn = false
			if cursor > saved {
				if err := s.save(cursor); err != nil {
					return progressed, err
				}
				saved, unsaved = cursor, 0
			}
		case <-s.notify:
			idle = false
			publishStatus(false)
		case <-fallback.C:
			idle = false
		case <-check.C:
			publishStatus(false)
		case <-s.down:
			return progressed, errConnLost
		case <-ctx.Done():
			return progressed, ctx.Err()
		}
	}
}

// advance moves the cursor over the acknowledged prefix of order.
func advance(cursor uint64, order []uint64, acked map[uint64]bool) (uint64, []uint64) {
	i := 0
	for i < len(order) && acked[order[i]] {
		cursor = order[i]
		delete(acked, order[i])
		i++
	}
	return cursor, order[i:]
}

// encode builds the event of rec, or its tombstone once the broker has
// refused it refusedTries times in a row.
//
// The choice for a record the broker keeps refusing (too large for its
// limit, a topic ACL gone wrong): retrying it forever would wedge the
// whole stream behind one record, and every later payment would stay
// invisible to the operator; skipping it silently would lose an event.
// So after refusedTries tries (with back-off, about 15 s) its seq is
// published as a tombstone: an Event with Refused set and no content.
// The consumer sees no gap and sees the refusal, the record stays in the
// kiosk's journal for `kioskd journal`, the log says so at error level
// and Stats.Refused counts it. A tombstone the broker refuses as well
// means nothing can be published (not authorized): that is retried, with
// back-off, forever, and shows as lag.
func (s *Shipper) encode(rec *payment.Record) ([]byte, bool, error) {
	ev := Event{Schema: Schema, KioskID: s.cfg.KioskID, Record: *rec}
	payload, err := json.Marshal(&ev)
	if err != nil {
		// A record the journal wrote it can read and encode; one that
		// cannot is a bug that must not wedge the stream either.
		s.log.Error("fleet: record not encodable, published as a tombstone", "seq", rec.Seq, "err", err)
	}
	if err == nil && (rec.Seq != s.refSeq || s.refTries < refusedTries) {
		return payload, false, nil
	}
	ev.Txn, ev.Evidence = nil, nil
	ev.Refused = &Refused{Size: len(payload)}
	if rec.Txn != nil {
		ev.Refused.TxnID = rec.Txn.ID
	}
	if rec.Seq == s.refSeq {
		ev.Refused.Reason = s.refReason
	}
	payload, err = json.Marshal(&ev)
	if err != nil {
		return nil, false, fmt.Errorf("fleet: tombstone of seq %d: %w", rec.Seq, err)
	}
	return payload, true, nil
}

// refused accounts for a PUBACK with a failure reason.
func (s *Shipper) refused(r result) error {
	if r.seq != s.refSeq {
		s.refSeq, s.refTries = r.seq, 0
	}
	s.refTries++
	s.refReason = r.reason
	s.fail(r.err)
	s.pubLog.log(s.log, slog.LevelWarn, "fleet: broker refused a record", "seq", r.seq,
		"reason", fmt.Sprintf("0x%02x", r.reason), "tries", s.refTries, "tombstone", r.tomb)
	return fmt.Errorf("fleet: broker refused seq %d (reason 0x%02x): %w", r.seq, r.reason, r.err)
}

func (s *Shipper) save(cursor uint64) error {
	if err := s.src.SetShipped(cursor); err != nil {
		s.srcLog.log(s.log, slog.LevelError, "fleet: cursor not saved", "seq", cursor, "err", err)
		return fmt.Errorf("fleet: save cursor %d: %w", cursor, err)
	}
	return nil
}

func (s *Shipper) seen(seq uint64) {
	s.mu.Lock()
	s.stats.SeenSeq = max(s.stats.SeenSeq, seq)
	s.mu.Unlock()
}

func (s *Shipper) setShippedSeq(seq uint64) {
	s.mu.Lock()
	s.stats.ShippedSeq = seq
	s.stats.SeenSeq = max(s.stats.SeenSeq, seq)
	s.mu.Unlock()
}

// acked counts the records the cursor moved over and returns how many.
func (s *Shipper) acked(before, after uint64) int {
	if after == before {
		return 0
	}
	n := int(after - before) // seqs have no gaps; a gap only overcounts a flush
	s.mu.Lock()
	s.stats.Shipped += uint64(n)
	s.stats.ShippedSeq = after
	s.mu.Unlock()
	return n
}
