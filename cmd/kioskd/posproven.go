package main

// What the POS server remembers across a restart lives with its owners
// (mobypay keeps the proven host's file, the journal the nonces); what
// stays here is the wiring's part: a failure is logged and the service
// starts anyway, judging by what it has.

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

func loadLastProven(dataDir string) netip.Addr { return mobypay.LoadLastProven(dataDir) }

func saveLastProven(dataDir string, a netip.Addr, log *slog.Logger) {
	if err := mobypay.SaveLastProven(dataDir, a); err != nil {
		log.Warn("last proven POS host not saved", "err", err)
	}
}

func journaledNonces(j *payment.Journal, now time.Time, log *slog.Logger) []mobypay.SeenNonce {
	seen, err := j.SeenNonces(now)
	if err != nil {
		log.Warn("journaled replay nonces unreadable; replays from before the restart are judged by timestamp only", "err", err)
	}
	return seen
}
