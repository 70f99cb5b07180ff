package payment

import (
	"context"
	"log/slog"
	"time"
)

// RetainRecords keeps the outbox bounded for as long as ctx lasts: it
// trims at once (a kiosk that was off for months starts with a short
// file) and then every `every`, records older than keep, and with
// shippedOnly only those the fleet shipper has been acknowledged for.
// It runs beside the service, never on its loop: a trim takes the
// journal's writer lock a thousand records at a time, so a payment
// write waits at most one batch. A failing trim is logged and tried
// again next time; it never stops the service.
func RetainRecords(ctx context.Context, j *Journal, keep time.Duration, shippedOnly bool, every time.Duration, log *slog.Logger) {
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
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
