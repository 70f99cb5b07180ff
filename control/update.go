package control

// The update and health routes: A/B updates through RAUC (docs/update.md)
// and the health gate's question, "is this boot good?".

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kioskd/kioskd/payment"
)

// The update states, in the order an update goes through them.
const (
	UpdateIdle       = "idle"       // no update since start (or the last one abandoned or failed: see Reason)
	UpdateWaiting    = "waiting"    // not selling; waiting for the payment in progress to end
	UpdateInstalling = "installing" // rauc install is running
	UpdateRebooting  = "rebooting"  // installed; the reboot command is running
	UpdateFailed     = "failed"     // abandoned or failed; selling again; Reason says why
)

// Errors of POST /v1/update.
var (
	// ErrUpdateRunning refuses a second update while one runs (409).
	ErrUpdateRunning = errors.New("update: an update is already running")
	// ErrUpdateRefused refuses a bundle that failed before (409).
	ErrUpdateRefused = errors.New("update: refused")
)

// UpdateRequest is the body of POST /v1/update.
type UpdateRequest struct {
	Bundle string `json:"bundle"`         // an absolute path on the kiosk
	Wait   string `json:"wait,omitempty"` // Go duration: how long to wait for the payment in progress; default [update] wait
	// Force installs a bundle whose version failed and was rolled back
	// before.
	Force bool `json:"force,omitempty"`
}

// Update is the update's state: in Status, and the answer of POST
// /v1/update (the update as it started).
type Update struct {
	State         string    `json:"state"`
	Reason        string    `json:"reason,omitempty"` // why it waits, what it runs, why it failed
	Bundle        string    `json:"bundle,omitempty"`
	BundleVersion string    `json:"bundle_version,omitempty"` // the manifest's version, "" when rauc info did not say
	StartedAt     time.Time `json:"started_at,omitzero"`      // tells one attempt from the next
	// LastFailed is the last update that booted, failed and was rolled
	// back; nil when there is none.
	LastFailed *UpdateFailure `json:"last_failed,omitempty"`
}

// UpdateFailure is a durable record of an update that was rolled back:
// the kiosk came back on the version and slot it updated from.
type UpdateFailure struct {
	Version  string    `json:"version"` // the bundle's version, the one that failed
	At       time.Time `json:"at"`      // when the rollback was seen (the first start after it)
	From     string    `json:"from"`    // the version that is running again
	FromSlot string    `json:"from_slot,omitempty"`
}

// Updater runs updates for the update route.
type Updater interface {
	// Start begins an update and returns its state as it started, or
	// ErrUpdateRunning, ErrUpdateRefused or an ErrBadRequest.
	Start(req UpdateRequest) (Update, error)
}

// UpdateHandler is POST /v1/update: 202 with the update as it started
// (follow it in GET /v1/status), 400 for a bad request, 409 while an
// update runs or for a version that failed before (without force).
func UpdateHandler(u Updater) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req UpdateRequest
		if err := decode(w, r, &req); err != nil {
			writeErr(w, err)
			return
		}
		st, err := u.Start(req)
		switch {
		case errors.Is(err, ErrUpdateRunning), errors.Is(err, ErrUpdateRefused):
			writeJSON(w, http.StatusConflict, Error{Error: err.Error()})
		case err != nil:
			writeErr(w, err)
		default:
			writeJSON(w, http.StatusAccepted, st)
		}
	}
}

// Health is GET /v1/health: whether this boot is good, for the health
// gate that marks a RAUC slot good. It asks nothing of a POS.
type Health struct {
	Healthy bool    `json:"healthy"`
	UpS     int64   `json:"up_s"`
	MinUpS  int64   `json:"min_up_s"`
	Version string  `json:"version"`
	Slot    string  `json:"slot"` // "" when not booted through RAUC
	Checks  []Check `json:"checks"`
	// Busy is a payment in progress or a vend under way: a reboot now
	// would interrupt it.
	Busy bool `json:"busy"`
}

// DefaultMinUp is how long kioskd must have been up to be healthy when
// ?min_up= is not given.
const DefaultMinUp = 60 * time.Second

// HealthHandler is GET /v1/health?min_up=D (a Go duration, default
// DefaultMinUp). It answers 200 whether healthy or not: the answer is
// the verdict, and the checks say why.
func HealthHandler(health func(minUp time.Duration) Health) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		minUp := DefaultMinUp
		if s := r.URL.Query().Get("min_up"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				writeErr(w, fmt.Errorf("%w: min_up %q: want a duration, 0s or more", payment.ErrBadRequest, s))
				return
			}
			minUp = d
		}
		writeJSON(w, http.StatusOK, health(minUp))
	}
}

// UpdateDone reports whether an update has come to where its client
// stops following it: rebooting (installed) or failed.
func UpdateDone(u Update) bool {
	return u.State == UpdateRebooting || u.State == UpdateFailed
}

// UpdateAndWait asks for an update and follows it in GET /v1/status,
// every poll, until it reboots or fails; progress, when set, is called
// on each change of state or reason. It returns the last state seen. A
// daemon that goes away once the update is rebooting is the reboot, not
// an error.
func (c *Client) UpdateAndWait(ctx context.Context, req UpdateRequest, poll time.Duration, progress func(Update)) (Update, error) {
	u, err := c.Update(ctx, req)
	if err != nil {
		return u, err
	}
	if progress != nil {
		progress(u)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	last := u
	for !UpdateDone(last) {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
		st, err := c.Status(ctx)
		if err != nil {
			return last, err
		}
		cur := st.Update
		if !cur.StartedAt.Equal(u.StartedAt) {
			// Another update since ours (ours ended and was replaced):
			// what ours came to is no longer on record.
			return last, fmt.Errorf("update: the daemon is on another update (%s, %s) since ours", cur.State, cur.Bundle)
		}
		if progress != nil && (cur.State != last.State || cur.Reason != last.Reason) {
			progress(cur)
		}
		last = cur
	}
	return last, nil
}
