package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API is the control API the machine's controller and the kioskd CLI use.
// It is served on a unix socket: whoever can open the socket is trusted.
type API struct {
	svc *Service
	// Status, when set, is what GET /v1/status answers: the daemon knows
	// more than the service (listen addresses, counters, the board).
	// Unset, the answer is the links and the payment in progress.
	Status func() any
}

// NewAPI returns the control API for svc.
func NewAPI(svc *Service) *API { return &API{svc: svc} }

// PaymentRequest is the body of POST /v1/payments.
type PaymentRequest struct {
	Amount   string `json:"amount"` // RM as a decimal string, "12.50"
	Mode     string `json:"mode"`
	Provider string `json:"provider,omitempty"`
	PlanID   string `json:"plan_id,omitempty"`
}

// Route is one route of the control API: a ServeMux pattern ("METHOD
// /path") and its handler.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes returns the service's routes. The daemon registers them beside
// its own on one mux, and its tests hold the list against the OpenAPI
// document, so a route added here that the document lacks fails a test.
func (a *API) Routes() []Route {
	return []Route{
		{"POST /v1/payments", a.create},
		{"GET /v1/payments", a.list},
		{"GET /v1/payments/{id}", a.get},
		{"POST /v1/payments/{id}/cancel", a.cancel},
		{"POST /v1/payments/{id}/plan", a.plan},
		{"GET /v1/status", a.status},
		{"GET /v1/reviews", a.reviews},
		{"POST /v1/payments/{id}/settle", a.settle},
		{"GET /v1/events", a.events},
		{"GET /v1/evidence", a.evidence},
		{"GET /v1/quarantine", a.quarantine},
	}
}

// Handler returns the routes on a mux of their own.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range a.Routes() {
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
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBusy), errors.Is(err, ErrNotActive), errors.Is(err, ErrTransition),
		errors.Is(err, ErrKeyMismatch), errors.Is(err, ErrDuplicateKey):
		code = http.StatusConflict
	case errors.Is(err, ErrNotReady):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	return nil
}

// HeaderIdempotencyKey carries the controller's idempotency key (its order
// id) on POST /v1/payments: 1 to 64 printable ASCII characters.
const HeaderIdempotencyKey = "Idempotency-Key"

// create answers 201 with a new payment, or 200 with the existing one
// when the Idempotency-Key was used before for the same amount, mode and
// provider (409 if for a different one).
func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var key string
	switch vals := r.Header.Values(HeaderIdempotencyKey); {
	case len(vals) > 1:
		writeErr(w, fmt.Errorf("%w: more than one %s", ErrBadRequest, HeaderIdempotencyKey))
		return
	case len(vals) == 1:
		key = vals[0]
		if key == "" {
			writeErr(w, fmt.Errorf("%w: empty %s: want 1 to %d printable ASCII characters", ErrBadRequest, HeaderIdempotencyKey, MaxKeyLen))
			return
		}
		if err := ValidKey(key); err != nil {
			writeErr(w, err)
			return
		}
	}
	var req PaymentRequest
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	amount, err := ParseAmount(req.Amount)
	if err != nil {
		writeErr(w, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	t, existing, err := a.svc.CreateOrGet(r.Context(), CreateRequest{Provider: req.Provider, Mode: req.Mode, Amount: amount, PlanID: req.PlanID, Key: key})
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
		return 0, fmt.Errorf("%w: limit %q", ErrBadRequest, s)
	}
	return v, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	n, err := limit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	list, err := a.svc.Journal().List(n)
	if err != nil {
		writeErr(w, err)
		return
	}
	if list == nil {
		list = []Txn{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.svc.Journal().Get(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	if r.URL.Query().Get("evidence") == "" {
		writeJSON(w, http.StatusOK, t)
		return
	}
	ev, err := a.svc.Journal().EvidenceFor(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Txn
		Messages []Evidence `json:"messages"`
	}{t, ev})
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *API) plan(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PlanID string `json:"plan_id"`
	}
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	t, err := a.svc.SelectPlan(r.Context(), r.PathValue("id"), req.PlanID)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// reviews lists the payments an operator must look at and has not
// settled (?all=1: settled too), as Journal.Reviews orders them. A record
// that cannot be decoded appears as a Txn with txn_id its key, state
// "unknown", vend "vend_unknown", "quarantined": true and the reason in
// "review" ("quarantined: record cannot be decoded: ..."); its bytes are
// in GET /v1/quarantine.
func (a *API) reviews(w http.ResponseWriter, r *http.Request) {
	out, err := a.svc.Journal().Reviews(r.URL.Query().Get("all") != "")
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// evidence lists the messages about unknown transactions, newest first
// (?limit=N, default 50, 0 for all that are kept).
func (a *API) evidence(w http.ResponseWriter, r *http.Request) {
	n, err := limit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	list, err := a.svc.Journal().UnknownEvidence(n)
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
func (a *API) quarantine(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Journal().Quarantined()
	if err != nil {
		writeErr(w, err)
		return
	}
	if list == nil {
		list = []Quarantined{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) settle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Note string `json:"note"`
	}
	if err := decode(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if strings.TrimSpace(req.Note) == "" || len(req.Note) > 500 {
		writeErr(w, fmt.Errorf("%w: a note of 1 to 500 characters says how it was settled", ErrBadRequest))
		return
	}
	t, err := a.svc.Journal().Settle(r.PathValue("id"), req.Note, time.Now())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	if a.Status != nil {
		writeJSON(w, http.StatusOK, a.Status())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		POS     []POSState `json:"pos"`
		Current *Txn       `json:"current"`
	}{a.svc.POS(), a.svc.Current()})
}

// events streams Event objects as server-sent events. It starts with the
// present state (each link, and the payment in progress) so that a client
// that subscribes before asking for a payment misses nothing.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, errors.New("streaming unsupported"))
		return
	}
	ch, unsub := a.svc.Subscribe()
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
	for _, p := range a.svc.POS() {
		send(Event{Kind: "pos", At: now, POS: &p})
	}
	if cur := a.svc.Current(); cur != nil {
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
