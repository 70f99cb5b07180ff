package payment

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Retain keeps the journal bounded for as long as ctx lasts: at once (a
// kiosk that was off for months starts with a short file) and then every
// `every`, it trims the outbox (TrimRecords) and prunes the payments
// (PrunePayments) older than keep, with shippedOnly only what the fleet
// shipper has been acknowledged for. It runs beside the service, never
// on its loop: both work in short transactions, so a payment write waits
// at most one batch. A failing run is logged and tried again next time;
// it never stops the service.
func Retain(ctx context.Context, j *Journal, keep time.Duration, shippedOnly bool, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := j.TrimRecords(time.Now(), keep, shippedOnly)
		switch {
		case err != nil:
			log.Warn("journal outbox not trimmed; trying again later", "err", err, "retry_in", every)
		case n > 0:
			log.Info("journal outbox trimmed", "records", n, "keep", keep, "shipped_only", shippedOnly)
		}
		n, err = j.PrunePayments(time.Now(), keep, shippedOnly)
		switch {
		case errors.Is(err, ErrPruneHeld):
			log.Warn("old payments kept until an unreadable record is shipped", "err", err, "retry_in", every)
		case err != nil:
			log.Warn("old payments not pruned; trying again later", "pruned", n, "err", err, "retry_in", every)
		case n > 0:
			log.Info("old payments pruned", "payments", n, "keep", keep, "shipped_only", shippedOnly)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
