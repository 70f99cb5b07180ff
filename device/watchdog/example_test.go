package watchdog_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/kioskd/kioskd/device/watchdog"
)

// How cmd/kioskd wires the watchdog. Not run (it has no Output): opening
// the board's device arms a reset.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	const path = "/dev/watchdog" // from the board profile

	dev, err := watchdog.Open(path, 15*time.Second)
	if errors.Is(err, os.ErrNotExist) {
		// A development machine: supervise anyway, so that status and
		// systemd's watchdog still see stalled loops.
		log.Warn("no hardware watchdog; running without one", "path", path)
		dev = watchdog.NewFake(15 * time.Second)
	} else if err != nil {
		log.Error("watchdog", "err", err)
		return
	}
	notify, err := watchdog.NotifierFromEnv()
	if err != nil {
		log.Warn("systemd notification off", "err", err)
	}
	sup := watchdog.NewSupervisor(dev, log, watchdog.WithNotifier(notify))
	payment := sup.Register("payment", 10*time.Second)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range tick.C { // in the loop's own select, beside its work
			payment.Beat()
		}
	}()
	go sup.Run(ctx) // after the listeners are up
	if err := sup.Ready(); err != nil {
		log.Warn("systemd notify", "err", err)
	}
}
