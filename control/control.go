// Package control holds the shapes of kioskd's local control API (HTTP
// and JSON over a unix socket): one Go type per request and response
// body, so that the daemon, its CLI and the OpenAPI document in
// docs/control-api.json describe the same wire format. Server (server.go)
// serves it for a payment.Service; Client (client.go) speaks it.
//
// The payment types a route answers with (Txn, Event, Evidence,
// Quarantined) are the payment package's own, aliased here: they are what
// the journal stores, and a second copy could drift from it. The wire
// format is the one the daemon has always spoken; field names and JSON
// types do not change with this package.
package control

import (
	"time"

	"github.com/kioskd/kioskd/payment"
)

// HeaderIdempotencyKey carries the controller's idempotency key (its
// order id) on POST /v1/payments: 1 to 64 printable ASCII characters.
const HeaderIdempotencyKey = "Idempotency-Key"

// The payment types as they are on the wire.
type (
	// Txn is one payment: the answer of every route that acts on one.
	Txn = payment.Txn
	// Plan is an IPP plan the terminal offered.
	Plan = payment.Plan
	// Event is one item of GET /v1/events (text/event-stream): the
	// event's name is its Kind, its data the Event as JSON.
	Event = payment.Event
	// POSState is one terminal link, in Status and in "pos" events.
	POSState = payment.POSState
	// Evidence is one journaled message (GET /v1/evidence, and the
	// messages of GET /v1/payments/{id}?evidence=1).
	Evidence = payment.Evidence
	// Quarantined is one journal record that cannot be decoded (GET
	// /v1/quarantine).
	Quarantined = payment.Quarantined
)

// PayRequest is the body of POST /v1/payments.
type PayRequest struct {
	Amount   string `json:"amount"` // RM as a decimal string, "12.50"
	Mode     string `json:"mode"`
	Provider string `json:"provider,omitempty"`
	PlanID   string `json:"plan_id,omitempty"`
}

// TxnWithEvidence is GET /v1/payments/{id}?evidence=1: the payment and
// every message journaled about it.
type TxnWithEvidence struct {
	Txn
	Messages []Evidence `json:"messages"`
}

// PlanRequest is the body of POST /v1/payments/{id}/plan.
type PlanRequest struct {
	PlanID string `json:"plan_id"`
}

// SettleRequest is the body of POST /v1/payments/{id}/settle: how the
// operator settled the payment, 1 to 500 characters.
type SettleRequest struct {
	Note string `json:"note"`
}

// Error is the body of every refusal (4xx, 5xx) the daemon writes itself.
type Error struct {
	Error string `json:"error"`
	// Reason is why new payments are refused for now (503), e.g.
	// "updating: installing /data/update.raucb"; absent otherwise.
	Reason string `json:"reason,omitempty"`
}

// Check is one result of POST /v1/selftest.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// PairPrinted is the answer of POST /v1/pair/print: the addresses the
// slip tells the POS to connect to.
type PairPrinted struct {
	Printed []string `json:"printed"`
}

// Status is GET /v1/status.
type Status struct {
	POS     []POSState `json:"pos"`
	Current *Txn       `json:"current"` // the payment in progress, or null

	KioskID      string   `json:"kiosk_id"`
	Version      string   `json:"version"`
	Board        string   `json:"board"`
	POSListen    string   `json:"pos_listen"`
	POSConnectTo []string `json:"pos_connect_to"`
	POSStats     POSStats `json:"pos_stats"`
	UptimeS      int64    `json:"uptime_s"`
	KPOSListen   string   `json:"kpos_listen"` // "" when KPOS is off
	Hardware     Hardware `json:"hardware"`
	Fleet        *Fleet   `json:"fleet"` // nil when [fleet] is off
	// MDB is the cashless reader; absent when [mdb] is off. It is not
	// part of Hardware: the reader is a way of selling, beside the
	// board's devices rather than one of them.
	MDB *MDBStatus `json:"mdb,omitempty"`
	// Slot is the RAUC slot booted ("" when not booted through RAUC),
	// Update the update's state and the last one rolled back.
	Slot   string `json:"slot"`
	Update Update `json:"update"`
}

// MDBStatus is the MDB cashless reader ([mdb]): its bus, the device's
// state as the VMC drove it, and how fast it has answered. Latencies are
// integer nanoseconds, as the watchdog's durations are; the quantiles
// are the upper bounds of the loop's histogram buckets, so they read a
// little high, never low.
type MDBStatus struct {
	Device    string        `json:"device"`
	Transport string        `json:"transport"` // "stream", "uart" or "qibixx" (the board answers the bus: Replies counts its lines, no latency)
	State     string        `json:"state"`     // "inactive", "disabled", "enabled", "session-idle", "vend"
	Replies   uint64        `json:"replies"`   // since the bus was last (re)opened
	Late      uint64        `json:"late"`      // replies later than the standard's 5 ms
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
	// Connects, Drops and FramingErrors are the stream transport's
	// (Connects and Drops count only over TCP); zero on a UART.
	Connects      uint64 `json:"connects"`
	Drops         uint64 `json:"drops"`
	FramingErrors uint64 `json:"framing_errors"`
}

// Fleet is the fleet shipper's state: whether the kiosk's journal is
// reaching the operator's broker, and how far behind it is.
type Fleet struct {
	Broker      string    `json:"broker"`
	Connected   bool      `json:"connected"`
	ShippedSeq  uint64    `json:"shipped_seq"`
	SeenSeq     uint64    `json:"seen_seq"`
	Lag         uint64    `json:"lag"`
	Refused     uint64    `json:"refused"`
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at"`
}

// POSStats counts what the POS server saw since start.
type POSStats struct {
	Sessions     int64 `json:"sessions"`
	Replaced     int64 `json:"replaced"`
	Rejected     int64 `json:"rejected"`
	Received     int64 `json:"received"`
	Late         int64 `json:"late"`
	Malformed    int64 `json:"malformed"`
	BadSignature int64 `json:"bad_signature"`
	Replayed     int64 `json:"replayed"`
	Oversize     int64 `json:"oversize"`
	Undecoded    int64 `json:"undecoded"`
	Pending      int64 `json:"pending"`
	Promoted     int64 `json:"promoted"`
	Displaced    int64 `json:"displaced"`
	NoNonce      int64 `json:"no_nonce"`
	Pings        int64 `json:"pings"`
}

// Hardware is the board section of Status. It mirrors the device
// packages' own states field for field instead of importing them: control
// is imported by clients (a controller's Go program, the CLI) that must
// not link GPIO and serial drivers. cmd/kioskd fills it; the relay's
// state converts directly, so a change there fails to compile there.
type Hardware struct {
	Board    string            `json:"board"`
	Relay    Relay             `json:"relay"`
	LEDs     LEDs              `json:"leds"`
	Pins     map[string]bool   `json:"pins,omitempty"` // sim board only
	Watchdog Watchdog          `json:"watchdog"`
	Printer  *Printer          `json:"printer,omitempty"` // nil: disabled or not found
	Faults   map[string]string `json:"faults,omitempty"`
	Disk     *Disk             `json:"disk,omitempty"` // nil before the first look, or with the watch off
	Buttons  []Button          `json:"buttons,omitempty"`
}

// Disk is the data partition (the journal's) as the machine last saw
// it; below WarnBelowBytes free the "disk" fault is raised.
type Disk struct {
	Dir            string    `json:"dir"`
	FreeBytes      uint64    `json:"free_bytes"` // what kioskd, unprivileged, may still use
	TotalBytes     uint64    `json:"total_bytes"`
	WarnBelowBytes uint64    `json:"warn_below_bytes"`
	CheckedAt      time.Time `json:"checked_at"`
}

// Relay is the vend relay.
type Relay struct {
	On        bool      `json:"on"`
	Pulses    int       `json:"pulses"`
	LastPulse time.Time `json:"last_pulse,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// LEDs is the LED panel: its pattern and the levels last written.
type LEDs struct {
	Pattern   string   `json:"pattern"`
	Green     bool     `json:"green"`
	Amber     bool     `json:"amber"`
	Red       bool     `json:"red"`
	Faults    []string `json:"faults,omitempty"`
	LastError string   `json:"last_error,omitempty"`
}

// Watchdog is the watchdog supervisor. Its fields have no JSON tags
// because the supervisor's status never had any: the wire names are the
// Go names, and durations are integer nanoseconds.
type Watchdog struct {
	Running     bool
	Feeding     bool
	Stalled     string
	Device      string
	Timeout     time.Duration
	Interval    time.Duration
	Feeds       uint64
	LastFeedAge time.Duration
	FeedError   string
	Heartbeats  []Heartbeat // null before the loops register
}

// Heartbeat is one loop the watchdog judges.
type Heartbeat struct {
	Name       string
	MaxSilence time.Duration
	Age        time.Duration
	Healthy    bool
	Stopped    bool
}

// Printer is the receipt printer.
type Printer struct {
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Printed   uint64    `json:"printed"`
	Failed    uint64    `json:"failed"`
	Dropped   uint64    `json:"dropped"`
	Queue     int       `json:"queue"`
}
