package machine

import (
	"context"
	"log/slog"
	"time"
)

// CrashBackoff records this start and, in a crash loop, waits with the
// fault pattern on the LEDs before anything is started. It reports
// whether the service was asked to stop meanwhile.
//
// Open has armed the watchdog by then, so the wait feeds it, from the
// same loop that waits: a kioskd that is alive and holding off keeps the
// board up (an unfed wait reset the board in every back-off, each reset
// adding an unclean start, forever), while a back-off that hangs still
// stops the feeding and the board resets. Not arming the watchdog until
// the wait is over would leave a hang here unwatched. Asked to stop
// while waiting, it disarms the watchdog as any clean stop does; the
// supervisor that would otherwise do it never ran.
func (m *Machine) CrashBackoff(ctx context.Context, guard CrashGuard, log *slog.Logger) bool {
	n, delay, err := guard.begin(time.Now())
	if err != nil {
		log.Warn("restart record unusable; starting anyway", "err", err)
		return false
	}
	if delay == 0 {
		return false
	}
	every := m.wdDev.Timeout() / 3
	if every <= 0 {
		every = time.Second
	}
	log.Error("crash loop: waiting before starting", "unclean_starts", n, "window", guard.window, "wait", delay, "watchdog_feed_every", every)
	m.leds.SetFault("crash-loop", true)
	defer m.leds.SetFault("crash-loop", false)
	lctx, cancel := context.WithCancel(ctx)
	ledsDone := make(chan struct{})
	go func() { defer close(ledsDone); m.leds.Run(lctx) }()
	defer func() { cancel(); <-ledsDone }()

	var feedErr error
	feed := func() {
		err := m.wdDev.Feed()
		switch {
		case err != nil && feedErr == nil:
			log.Warn("watchdog feed failed during the crash-loop wait", "err", err)
		case err == nil && feedErr != nil:
			log.Info("watchdog feed recovered")
		}
		feedErr = err
	}
	feed()
	feeder := time.NewTicker(every)
	defer feeder.Stop()
	wait := time.NewTimer(delay)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.wdDev.Close(); err != nil {
				log.Error("watchdog disarm failed", "err", err)
			} else {
				log.Info("watchdog disarmed")
			}
			return true
		case <-wait.C:
			return false
		case <-feeder.C:
			feed()
		}
	}
}

// RefusalBackoff holds off the exit of a kioskd whose board cannot be
// opened (a pin missing from the device tree, no watchdog), past the
// crash guard's threshold: init would start it again every second and
// the console fill with the same refusal. Nothing is open to feed or
// keep safe; the start counts as an unclean one, as it is.
func RefusalBackoff(ctx context.Context, guard CrashGuard, cause error, log *slog.Logger) {
	n, delay, err := guard.begin(time.Now())
	if err != nil || delay == 0 {
		return
	}
	log.Error("the board cannot be opened: waiting before exiting, so that init does not restart kioskd every second",
		"unclean_starts", n, "window", guard.window, "wait", delay, "err", cause)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
