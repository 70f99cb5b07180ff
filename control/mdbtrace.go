package control

// GET /v1/mdb/trace: the MDB reader's bus trace as it happens, NDJSON.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// MDBExchange is one line of GET /v1/mdb/trace: what the VMC sent and
// what the reader answered. Unit and Reply are the words in hex, three
// digits each with the mode bit as the leading 1 ("112" is a marked 12h),
// as the decoded text's own word lists show them.
type MDBExchange struct {
	Time      time.Time `json:"time"` // when the unit's last word was read
	Unit      []string  `json:"unit"`
	Reply     []string  `json:"reply"`      // empty: the reader stayed silent
	LatencyUS int64     `json:"latency_us"` // to the reply written; 0 for silence
	// Gap is set when the unit was cut by the inter-byte gap (or the
	// next marked word) rather than found complete.
	Gap  bool   `json:"gap"`
	Text string `json:"text"` // "POLL -> VEND APPROVED 150"
}

// MDBTraceDropped is the line of GET /v1/mdb/trace that stands for
// exchanges this stream lost: it fell behind the bus by more than the
// daemon keeps. The bus loop never waits for a stream.
type MDBTraceDropped struct {
	Dropped uint64 `json:"dropped"`
}

// MDBTraceLine is one line of the trace as the client reads it: an
// exchange, or (Dropped > 0) the count of exchanges lost before it.
type MDBTraceLine struct {
	MDBExchange
	Dropped uint64 `json:"dropped,omitempty"`
}

// MDBTraceSource is the daemon's side of GET /v1/mdb/trace: its MDB
// reader, which keeps the last exchanges.
type MDBTraceSource interface {
	// OpenMDBTrace starts a reader at the last n exchanges held (all
	// that are held, if fewer).
	OpenMDBTrace(last int) (MDBTraceReader, error)
}

// MDBTraceReader reads the trace from where it started.
type MDBTraceReader interface {
	// Ready receives when Next may have exchanges.
	Ready() <-chan struct{}
	// Next appends to dst exchanges not yet read, oldest first, at most
	// cap(dst)-len(dst) of them, and says how many were lost before them.
	Next(dst []MDBExchange) ([]MDBExchange, uint64)
	Close()
}

// MaxMDBTraceStreams is how many trace streams may be open at once; the
// daemon's ring has a reader slot for each.
const MaxMDBTraceStreams = 4

// DefaultMDBTraceLast is how many held exchanges a trace starts with
// when ?last is not given.
const DefaultMDBTraceLast = 50

// ErrMDBOff is the answer of GET /v1/mdb/trace with [mdb] off.
var ErrMDBOff = fmt.Errorf("%w: the MDB reader is off ([mdb] enabled = false)", payment.ErrNotFound)

// mdbTraceWriteTimeout bounds each write to a stream, so that a client
// that stops reading gives its slot back instead of holding it forever.
const mdbTraceWriteTimeout = 10 * time.Second

// MDBTraceHandler serves GET /v1/mdb/trace from src (nil: [mdb] is off,
// 404). stop ends every stream: the daemon closes it when it shuts the
// control API down, since http.Server.Shutdown waits for handlers but
// does not end them.
func MDBTraceHandler(src MDBTraceSource, stop <-chan struct{}) http.HandlerFunc {
	slots := make(chan struct{}, MaxMDBTraceStreams)
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		last := DefaultMDBTraceLast
		if s := q.Get("last"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				writeErr(w, fmt.Errorf("%w: last %q: want a count of 0 or more", payment.ErrBadRequest, s))
				return
			}
			last = v
		}
		follow := true
		if s := q.Get("follow"); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				writeErr(w, fmt.Errorf("%w: follow %q: want 1 or 0", payment.ErrBadRequest, s))
				return
			}
			follow = v
		}
		if src == nil {
			writeErr(w, ErrMDBOff)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			writeJSON(w, http.StatusTooManyRequests, Error{Error: fmt.Sprintf("mdb trace: %d streams open already, the most there may be", MaxMDBTraceStreams)})
			return
		}
		rd, err := src.OpenMDBTrace(last)
		if errors.Is(err, payment.ErrNotFound) {
			writeErr(w, err) // no bus of its own to trace (an interface board)
			return
		}
		if err != nil {
			writeJSON(w, http.StatusTooManyRequests, Error{Error: "mdb trace: " + err.Error()})
			return
		}
		defer rd.Close()
		serveMDBTrace(w, r, rd, last, follow, stop)
	}
}

func serveMDBTrace(w http.ResponseWriter, r *http.Request, rd MDBTraceReader, last int, follow bool, stop <-chan struct{}) {
	rc := http.NewResponseController(w)
	// The deadline stays on the connection after the handler: cleared,
	// so that a request that reuses the connection is not cut by it.
	defer rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// The answer goes out at once, so that a client knows its stream is
	// open before the bus says anything.
	if rc.Flush() != nil {
		return
	}
	enc := json.NewEncoder(w)
	buf := make([]MDBExchange, 0, 32)
	// Without follow the stream ends once it caught up, after no more
	// than the last exchanges asked for: a busy bus cannot keep it open.
	left := last
	for {
		var dropped uint64
		buf, dropped = rd.Next(buf[:0])
		if !follow {
			buf = buf[:min(len(buf), left)]
			left -= len(buf)
		}
		rc.SetWriteDeadline(time.Now().Add(mdbTraceWriteTimeout))
		if dropped > 0 {
			if enc.Encode(MDBTraceDropped{dropped}) != nil {
				return
			}
		}
		for i := range buf {
			if enc.Encode(&buf[i]) != nil {
				return
			}
		}
		if dropped > 0 || len(buf) > 0 {
			if rc.Flush() != nil {
				return
			}
		}
		more := len(buf) == cap(buf) && (follow || left > 0)
		if !more && !follow {
			return // caught up, or as many as asked for
		}
		// A full batch means more may be waiting already; the stop and
		// the client are still looked at before reading on.
		select {
		case <-stop:
			return
		case <-r.Context().Done():
			return
		default:
		}
		if more {
			continue
		}
		select {
		case <-rd.Ready():
		case <-stop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// MDBTraceOptions are the query of GET /v1/mdb/trace.
type MDBTraceOptions struct {
	Last   int  // held exchanges to start with (the daemon keeps 1024)
	Follow bool // then go on with the live trace
}

// MDBTrace reads GET /v1/mdb/trace, calling fn with each line, until the
// daemon ends the stream (nil: without Follow, after the held exchanges;
// with it, the daemon stopping), ctx ends (ctx's error) or fn returns an
// error (that error). The refusal with [mdb] off is an *APIError with
// Code 404.
func (c *Client) MDBTrace(ctx context.Context, o MDBTraceOptions, fn func(MDBTraceLine) error) error {
	follow := "0"
	if o.Follow {
		follow = "1"
	}
	path := "/v1/mdb/trace?last=" + strconv.Itoa(max(o.Last, 0)) + "&follow=" + follow
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &NoAnswerError{Socket: c.socket, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e Error
		json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = "GET /v1/mdb/trace: " + resp.Status
		}
		return &APIError{resp.StatusCode, e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4<<10), 64<<10)
	for sc.Scan() {
		var l MDBTraceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return &DecodeError{What: "a line of GET /v1/mdb/trace", Raw: append([]byte(nil), sc.Bytes()...), Err: err}
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return &NoAnswerError{Socket: c.socket, MidAnswer: true, Err: err}
	}
	return nil
}
