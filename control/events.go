package control

// GET /v1/events, the server-sent event stream.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// StreamItem is one event from the daemon's stream or, with Err set, one
// that cannot be decoded; Kind and TxnID say what it was about either
// way (as far as can be told).
type StreamItem struct {
	Event Event
	Kind  string
	TxnID string
	Err   error
}

// Stream is an open GET /v1/events. C closes when the stream ends; Err
// then says why (nil: the daemon closed it).
type Stream struct {
	C      <-chan StreamItem
	ended  chan struct{}
	cancel context.CancelFunc
	err    error
}

// Close stops the stream; a nil stream is fine.
func (s *Stream) Close() {
	if s != nil {
		s.cancel()
	}
}

// Dead reports a stream that has ended.
func (s *Stream) Dead() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// Err says why the stream ended, once C is closed.
func (s *Stream) Err() error {
	<-s.ended
	return s.err
}

// Events opens the event stream, which lives until ctx ends or it is
// closed. The daemon answers it at once (with the present state): no
// answer within FirstAnswer, or before wait ends, is a *NoAnswerError.
func (c *Client) Events(ctx, wait context.Context) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	timer := time.AfterFunc(c.FirstAnswer, cancel)
	stop := context.AfterFunc(wait, cancel)
	resp, err := c.hc.Do(req)
	late := !timer.Stop()
	if !stop() {
		late = true
	}
	if late {
		if err == nil {
			resp.Body.Close()
		}
		err = errors.New("no answer to GET /v1/events in time")
	}
	if err != nil {
		cancel()
		return nil, &NoAnswerError{Socket: c.socket, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, &APIError{resp.StatusCode, "event stream: " + resp.Status}
	}
	ch := make(chan StreamItem, 16)
	s := &Stream{C: ch, ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(ch)
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		kind := ""
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				kind = ""
				continue
			}
			if k, ok := strings.CutPrefix(line, "event:"); ok {
				kind = strings.TrimSpace(k)
				continue
			}
			data, ok := strings.CutPrefix(line, "data:")
			if !ok {
				continue // a comment (keep-alive) or a field we do not use
			}
			select {
			case ch <- decodeEvent(kind, strings.TrimPrefix(data, " ")):
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() == nil {
			s.err = sc.Err()
		}
	}()
	return s, nil
}

// decodeEvent decodes one event's data. One that cannot be decoded still
// names its kind and payment where it can, so that it can be reported.
func decodeEvent(kind, data string) StreamItem {
	it := StreamItem{Kind: kind}
	if err := json.Unmarshal([]byte(data), &it.Event); err != nil {
		var head struct {
			Kind string `json:"kind"`
			Txn  struct {
				ID string `json:"txn_id"`
			} `json:"txn"`
		}
		json.Unmarshal([]byte(data), &head)
		it.Event, it.Err, it.TxnID = Event{}, err, head.Txn.ID
		if it.Kind == "" {
			it.Kind = head.Kind
		}
		return it
	}
	if it.Kind == "" {
		it.Kind = it.Event.Kind
	}
	if it.Event.Txn != nil {
		it.TxnID = it.Event.Txn.ID
	}
	return it
}

// Follow is the stream's decodable events, for a caller waiting for one
// of them. It ends at the first event it cannot decode, so that such a
// caller fails instead of waiting for an event it would never see.
func (c *Client) Follow(ctx context.Context) (<-chan Event, error) {
	s, err := c.Events(ctx, ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 16)
	go func() {
		defer close(ch)
		defer s.Close()
		for it := range s.C {
			if it.Err != nil {
				return
			}
			select {
			case ch <- it.Event:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
