package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// Server is the control API the machine's controller and the kioskd CLI
// use. It is served on a unix socket: whoever can open the socket is
// trusted. It lives here, not in payment, so that the service knows
// nothing of HTTP and the wire format has one home beside its types and
// its client.
type Server struct {
	svc *payment.Service
	// Status, when set, is what GET /v1/status answers: the daemon knows
	// more than the service (listen addresses, counters, the board).
	// Unset, the answer is the links and the payment in progress.
	Status func() any
}

// NewServer returns the control API for svc.
func NewServer(svc *payment.Service) *Server { return &Server{svc: svc} }

// Route is one route of the control API: a ServeMux pattern ("METHOD
// /path") and its handler.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes returns the service's routes. The daemon registers them beside
// its own on one mux, and its tests hold the list against the OpenAPI
// document, so a route added here that the document lacks fails a test.
func (s *Server) Routes() []Route {
	return []Route{
		{"POST /v1/payments", s.create},
		{"GET /v1/payments", s.list},
		{"GET /v1/payments/{id}", s.get},
		{"POST /v1/payments/{id}/cancel", s.cancel},
		{"POST /v1/payments/{id}/plan", s.plan},
		{"GET /v1/status", s.status},
		{"GET /v1/reviews", s.reviews},
		{"POST /v1/payments/{id}/settle", s.settle},
		{"GET /v1/events", s.events},
		{"GET /v1/evidence", s.evidence},
		{"GET /v1/quarantine", s.quarantine},
	}
}

// Handler returns the routes on a mux of their own.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.Routes() {
		mux.HandleFunc(r.Pattern, r.Handler)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, payment.ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, payment.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, payment.ErrBusy), errors.Is(err, payment.ErrNotActive), errors.Is(err, payment.ErrTransition),
		errors.Is(err, payment.ErrKeyMismatch), errors.Is(err, payment.ErrDuplicateKey):
		code = http.StatusConflict
	case errors.Is(err, payment.ErrNotReady):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	var pe *payment.PausedError
	if errors.As(err, &pe) {
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: err.Error(), Reason: pe.Reason})
		return
	}
	writeJSON(w, code, Error{Error: err.Error()})
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", payment.ErrBadRequest, err)
	}
	return nil
}

// create answers 201 with a new payment, or 200 with the existing one
// when the Idempotency-Key was used before for the same amount, mode and
// provider (409 if for a different one).
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var key string
	switch vals := r.Header.Values(HeaderIdempotencyKey); {
	case len(vals) > 1:
		writeErr(w, fmt.Errorf("%w: more than one %s", payment.ErrBadRequest, HeaderIdempotencyKey))
		return
	case len(vals) == 1:
		key = vals[0]
		if key == "" {
			writeErr(w, fmt.Errorf("%w: empty %s: want 1 to %d printable ASCII characters", payment.ErrBadRequest, HeaderIdempotencyKey, payment.MaxKeyLen))
			return
		}
		if err := payment.ValidKey(key); err != nil {
			writeErr(w, err)
			return
		}
	}
	var req PayRequest
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	amount, err := payment.ParseAmount(req.Amount)
	if err != nil {
		writeErr(w, fmt.Errorf("%w: %w", payment.ErrBadRequest, err))
		return
	}
	t, existing, err := s.svc.CreateOrGet(r.Context(), payment.CreateRequest{Provider: req.Provider, Mode: req.Mode, Amount: amount, PlanID: req.PlanID, Key: key})
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusCreated
	if existing {
		code = http.StatusOK
	}
	writeJSON(w, code, t)
}

// limit reads ?limit=N (default 50, 0 for all).
func limit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 50, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: limit %q", payment.ErrBadRequest, s)
	}
	return v, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	n, err := limit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	list, err := s.svc.List(n)
	if err != nil {
		writeErr(w, err)
		return
	}
	if list == nil {
		list = []Txn{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.svc.Get(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	if r.URL.Query().Get("evidence") == "" {
		writeJSON(w, http.StatusOK, t)
		return
	}
	ev, err := s.svc.Journal().EvidenceFor(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TxnWithEvidence{t, ev})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	t, err := s.svc.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	var req PlanRequest
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	t, err := s.svc.SelectPlan(r.Context(), r.PathValue("id"), req.PlanID)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// reviews lists the payments an operator must look at and has not
// settled (?all=1: settled too), as payment.Journal.Reviews orders them. A record
// that cannot be decoded appears as a Txn with txn_id its key, state
// "unknown", vend "vend_unknown", "quarantined": true and the reason in
// "review" ("quarantined: record cannot be decoded: ..."); its bytes are
// in GET /v1/quarantine.
func (s *Server) reviews(w http.ResponseWriter, r *http.Request) {
	out, err := s.svc.Journal().Reviews(r.URL.Query().Get("all") != "")
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// evidence lists the messages about unknown transactions, newest first
// (?limit=N, default 50, 0 for all that are kept).
func (s *Server) evidence(w http.ResponseWriter, r *http.Request) {
	n, err := limit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	list, err := s.svc.Journal().UnknownEvidence(n)
	if err != nil {
		writeErr(w, err)
		return
	}
	if list == nil {
		list = []Evidence{}
	}
	writeJSON(w, http.StatusOK, list)
}

// quarantine lists the records that cannot be decoded, byte for byte
// (raw is base64).
func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.Journal().Quarantined()
	if err != nil {
		writeErr(w, err)
		return
	}
	if list == nil {
		list = []Quarantined{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) settle(w http.ResponseWriter, r *http.Request) {
	var req SettleRequest
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if strings.TrimSpace(req.Note) == "" || len(req.Note) > 500 {
		writeErr(w, fmt.Errorf("%w: a note of 1 to 500 characters says how it was settled", payment.ErrBadRequest))
		return
	}
	t, err := s.svc.Journal().Settle(r.PathValue("id"), req.Note, time.Now())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if s.Status != nil {
		writeJSON(w, http.StatusOK, s.Status())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		POS     []POSState `json:"pos"`
		Current *Txn       `json:"current"`
	}{s.svc.POS(), s.svc.Current()})
}

// events streams Event objects as server-sent events. It starts with the
// present state (each link, and the payment in progress) so that a client
// that subscribes before asking for a payment misses nothing.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, errors.New("streaming unsupported"))
		return
	}
	ch, unsub := s.svc.Subscribe()
	defer unsub()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(e Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b)
		fl.Flush()
		return err
	}
	now := time.Now()
	for _, p := range s.svc.POS() {
		send(Event{Kind: "pos", At: now, POS: &p})
	}
	if cur := s.svc.Current(); cur != nil {
		send(Event{Kind: "payment", At: now, Txn: cur})
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return // dropped for falling behind; the client reconnects
			}
			if send(e) != nil {
				return
			}
		}
	}
}
