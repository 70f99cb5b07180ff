package main

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// The host of the last POS session that proved itself (sent a correctly
// signed message) is kept in data_dir/pos-last-proven, so that after a
// restart the real POS still displaces a silent squatter from another
// host that connected first.
const lastProvenFile = "pos-last-proven"

func loadLastProven(dataDir string) netip.Addr {
	b, err := os.ReadFile(filepath.Join(dataDir, lastProvenFile))
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// saveLastProven writes the address durably. The server calls it off the
// session goroutine, one call at a time, never on the payment path.
func saveLastProven(dataDir string, a netip.Addr, log *slog.Logger) {
	if err := writeFileSync(filepath.Join(dataDir, lastProvenFile), []byte(a.String()+"\n")); err != nil {
		log.Warn("last proven POS host not saved", "err", err)
	}
}

// journaledNonces loads the replay nonces journaled before this start, so
// a message replayed across a restart is refused as a replay.
func journaledNonces(j *payment.Journal, now time.Time, log *slog.Logger) []mobypay.SeenNonce {
	m, err := j.Nonces(now)
	if err != nil {
		log.Warn("journaled replay nonces unreadable; replays from before the restart are judged by timestamp only", "err", err)
		return nil
	}
	out := make([]mobypay.SeenNonce, 0, len(m))
	for n, forget := range m {
		out = append(out, mobypay.SeenNonce{Nonce: n, Forget: forget})
	}
	return out
}
