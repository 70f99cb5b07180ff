// Package watchdog drives the Linux hardware watchdog (/dev/watchdog) and
// feeds it only while the service's critical loops report heartbeats, so a
// hung kioskd is reset by the board rather than left taking money it cannot
// vend for.
//
// Opening the device arms it. From then on the board resets unless the
// device is fed within its timeout, or is closed with the magic close that
// Device.Close performs. A crash closes the descriptor without the magic
// byte, so the reset follows, which is the point.
//
// The Supervisor feeds at a third of the timeout while every registered
// Heartbeat is fresh. When one goes silent for longer than its limit the
// supervisor logs which loop stalled, stops feeding for good and lets the
// hardware reset the board. With NOTIFY_SOCKET set it also tells systemd
// READY=1 and WATCHDOG=1 (see Notifier).
//
// Fake is an in-memory Device for tests and the simulated board.
package watchdog

import "time"

// Device is an open, armed watchdog.
type Device interface {
	// Feed restarts the countdown.
	Feed() error
	// Timeout is the countdown as the driver set it, which may differ from
	// the one asked for: drivers round and cap it (the Raspberry Pi's near
	// 15 s).
	Timeout() time.Duration
	// Close disarms the watchdog with the magic close, so that a clean
	// stop does not reset the board. Feed fails after Close.
	Close() error
}

// identifier is implemented by devices that can name their driver, for
// status output.
type identifier interface {
	Identity() string
}
