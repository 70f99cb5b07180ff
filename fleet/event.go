package fleet

import (
	"time"

	"github.com/kioskd/kioskd/payment"
)

// Schema is the version of the payloads below; a consumer refuses (or
// at least flags) a schema it does not know.
const Schema = 1

// JournalTopic and StatusTopic name a kiosk's topics.
func JournalTopic(kioskID string) string { return "kioskd/" + kioskID + "/journal" }
func StatusTopic(kioskID string) string  { return "kioskd/" + kioskID + "/status" }

// Event is one journal record as published on kioskd/<kiosk_id>/journal:
// the Record's own JSON plus the schema and the kiosk, so that a consumer
// can de-duplicate by (kiosk_id, seq) without looking at the topic.
type Event struct {
	Schema  int    `json:"schema"`
	KioskID string `json:"kiosk_id"`
	payment.Record
	// Refused, when set, stands in for a record the broker refused again
	// and again (too large, not authorized): Txn and Evidence are left
	// out, the record itself stays in the kiosk's journal. The seq is
	// then accounted for, and the refusal is visible to the operator.
	Refused *Refused `json:"refused,omitempty"`
}

// Refused says why an Event carries no content.
type Refused struct {
	Reason byte   `json:"reason"` // the PUBACK reason code of the last try
	Size   int    `json:"size"`   // bytes of the full payload
	TxnID  string `json:"txn_id,omitempty"`
}

// UpdateFailed is an update that booted, failed and was rolled back.
type UpdateFailed struct {
	Version string    `json:"version"` // the bundle's, which failed
	At      time.Time `json:"at"`      // when the rollback was seen
	From    string    `json:"from"`    // the version running again
}

// Status is the kiosk's health as published, retained, on
// kioskd/<kiosk_id>/status. The daemon fills what it knows (POS link,
// printer, watchdog, faults, pending reviews); the shipper sets Schema,
// KioskID, Online, Version, UptimeS, ShippedSeq and At. The Will and the
// clean stop publish only {"schema","kiosk_id","online":false}.
type Status struct {
	Schema         int      `json:"schema"`
	KioskID        string   `json:"kiosk_id"`
	Online         bool     `json:"online"`
	Version        string   `json:"version,omitempty"`
	UptimeS        int64    `json:"uptime_s,omitempty"`
	POS            string   `json:"pos,omitempty"`      // e.g. "up", "down"
	Printer        string   `json:"printer,omitempty"`  // e.g. "ok", "paper_out"
	Watchdog       string   `json:"watchdog,omitempty"` // e.g. "fed", "off"
	Faults         []string `json:"faults,omitempty"`
	PendingReviews int      `json:"pending_reviews,omitempty"`
	// DiskFreeMiB is the data partition's free space (nil: not looked
	// at yet): whole MiB, so that a filling card changes the status a
	// few times a day, not every minute.
	DiskFreeMiB *uint64 `json:"disk_free_mib,omitempty"`
	ShippedSeq  uint64  `json:"shipped_seq,omitempty"`
	// UpdateFailed is the last update that was rolled back (absent when
	// there is none): added within schema 1, optional.
	UpdateFailed *UpdateFailed  `json:"update_failed,omitempty"`
	Extra        map[string]any `json:"extra,omitempty"` // anything else the daemon reports
	At           time.Time      `json:"at,omitzero"`
}
