package kpos

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Codes answer notifications that cannot be taken. The documentation
// defines none for this [U]; these follow the KP = Appendix 2 pattern and
// are configurable.
type Codes struct {
	BadSignature string // signature missing or wrong, or not decryptable
	BadMessage   string // not 0025, or fields invalid
	UnknownMRN   string // no such payment here
	Busy         string // we could not record it; try again
}

// DefaultCodes: KP009 (invalid signature, by Appendix 2's pattern),
// KP001 (invalid message), KP049 (invalid transaction), KA099 (exception).
var DefaultCodes = Codes{BadSignature: "KP009", BadMessage: "KP001", UnknownMRN: "KP049", Busy: "KA099"}

// NotificationFunc records a verified notification and returns the
// resultCode to answer with. It must return only once the outcome is
// durable; an error makes the receiver answer Busy with HTTP 503 so that
// KPOS retries.
type NotificationFunc func(ctx context.Context, n Notification, plaintext []byte) (resultCode string, err error)

// ReceiverConfig configures the 0025 receiver.
type ReceiverConfig struct {
	Keys *Keys
	// SourceSystem, when set, must equal the notification's sourceSystem
	// header. Its value is assigned by Finexus [U].
	SourceSystem string
	// OurSourceSystem is sent in our answers' sourceSystem header.
	OurSourceSystem string
	// ReplyMTI is the MTI of our answers: 0026 by the serial twin [U].
	ReplyMTI string
	Codes    Codes
	Log      *slog.Logger
}

// Receiver is the http.Handler for KPOS payment notifications.
type Receiver struct {
	cfg ReceiverConfig
	h   NotificationFunc
	log *slog.Logger
}

// NewReceiver returns the handler.
func NewReceiver(cfg ReceiverConfig, h NotificationFunc) *Receiver {
	if cfg.Codes == (Codes{}) {
		cfg.Codes = DefaultCodes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplyMTI == "" {
		cfg.ReplyMTI = MTINotificationOK
	}
	return &Receiver{cfg: cfg, h: h, log: cfg.Log.With("component", "kpos")}
}

// ServeHTTP verifies the signature over the exact body, decrypts, checks
// and records the notification, and answers with a signed 0026 whose
// resultCode says whether it was taken. Every refusal is one log line.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	log := rc.log.With("peer", r.RemoteAddr)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		log.Warn("kpos notification refused: body too large or unreadable", "err", err)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			rc.reply(w, http.StatusRequestEntityTooLarge, rc.cfg.Codes.BadMessage)
			return
		}
		rc.reply(w, http.StatusBadRequest, rc.cfg.Codes.BadMessage)
		return
	}
	if rc.cfg.SourceSystem != "" && r.Header.Get("sourceSystem") != rc.cfg.SourceSystem {
		log.Warn("kpos notification refused: wrong sourceSystem", "source_system", truncate(r.Header.Get("sourceSystem"), 40))
		rc.reply(w, http.StatusForbidden, rc.cfg.Codes.BadSignature)
		return
	}
	mti, plain, err := rc.cfg.Keys.Open(body, r.Header.Get("Signature"))
	if err != nil {
		code, status := rc.cfg.Codes.BadMessage, http.StatusBadRequest
		if errors.Is(err, ErrSignature) || errors.Is(err, ErrDecrypt) {
			code, status = rc.cfg.Codes.BadSignature, http.StatusUnauthorized
		}
		log.Warn("kpos notification refused", "reason", err.Error(), "bytes", len(body))
		rc.reply(w, status, code)
		return
	}
	if mti != MTINotification {
		log.Warn("kpos notification refused: wrong message type", "mti", mti)
		rc.reply(w, http.StatusBadRequest, rc.cfg.Codes.BadMessage)
		return
	}
	n, err := ParseNotification(plain)
	if err != nil {
		log.Warn("kpos notification refused: signed but invalid", "reason", err.Error())
		rc.reply(w, http.StatusBadRequest, rc.cfg.Codes.BadMessage)
		return
	}
	code, err := rc.h(r.Context(), n, plain)
	if err != nil {
		log.Error("kpos notification not recorded; asking KPOS to retry", "mrn", n.MRN, "err", err)
		rc.reply(w, http.StatusServiceUnavailable, rc.cfg.Codes.Busy)
		return
	}
	log.Info("kpos notification", "mrn", n.MRN, "result_code", n.ResultCode, "outcome", n.Outcome().String(), "answer", code)
	rc.reply(w, http.StatusOK, code)
}

// reply writes a signed 0026. If even that fails (no key), the status
// line alone carries the refusal.
func (rc *Receiver) reply(w http.ResponseWriter, status int, code string) {
	plain, _ := json.Marshal(Reply{ResultCode: code})
	body, sig, err := rc.cfg.Keys.Seal(rc.cfg.ReplyMTI, plain)
	if err != nil {
		rc.log.Error("kpos answer not signed", "err", err)
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Signature", sig)
	if rc.cfg.OurSourceSystem != "" {
		w.Header().Set("sourceSystem", rc.cfg.OurSourceSystem)
	}
	w.WriteHeader(status)
	w.Write(body)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
