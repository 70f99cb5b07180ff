package possim

import "slices"

// Behaviour is how the simulated POS answers the kiosk. Its values are the
// names `kioskd possim -behaviour` takes, so they must not change.
type Behaviour string

// The behaviours; behaviours describes each.
const (
	Approve     Behaviour = "approve"
	Decline     Behaviour = "decline"
	IPP         Behaviour = "ipp"
	Slow        Behaviour = "slow"
	Drop        Behaviour = "drop"
	Error       Behaviour = "error"
	Silent      Behaviour = "silent"
	AckOnly     Behaviour = "ackonly"
	BadSig      Behaviour = "badsig"
	Replay      Behaviour = "replay"
	Stale       Behaviour = "stale"
	WrongAmount Behaviour = "wrongamount"
	WrongTxn    Behaviour = "wrongtxn"
	Split       Behaviour = "split"
	Merged      Behaviour = "merged"
	Approved    Behaviour = "approved"
	CancelLate  Behaviour = "cancel-late"
)

// behaviours maps each behaviour to its one-line description; a behaviour
// is known if it is here.
var behaviours = map[Behaviour]string{
	Approve:     "ack processing, then success (IPP flow when payment_mode is ipp)",
	Decline:     "ack processing, then failed USER_ABORT",
	IPP:         "ack, ipp_plans (2 plans), wait for ipp_plan_selection, ack plan_received, success with plan_id",
	Slow:        "ack processing, wait -delay, then success",
	Drop:        "ack processing, then close the connection; after reconnecting send an error for the txn",
	Error:       "answer the request with an error message",
	Silent:      "never answer anything",
	AckOnly:     "ack processing, never a result",
	BadSig:      "ack, then a success whose signature is over the wire bytes, not the canonical payload",
	Replay:      "ack, then the same success frame twice, byte for byte",
	Stale:       "ack, then a correctly signed success stamped 2 minutes ago",
	WrongAmount: "ack, then success for the amount plus RM 1.00",
	WrongTxn:    "ack, then success for another txn_id",
	Split:       "like approve, every frame written in 7-byte pieces",
	Merged:      "like approve, ack and result in one write",
	Approved:    `like approve, with status "approved" instead of "success"`,
	CancelLate:  "ack processing, no result until cancel_transaction, then ack received and success anyway",
}

// Behaviours returns every behaviour, sorted by name.
func Behaviours() []Behaviour {
	names := make([]Behaviour, 0, len(behaviours))
	for n := range behaviours {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Help describes b in one line, or returns "" if b is no behaviour.
func (b Behaviour) Help() string { return behaviours[b] }
