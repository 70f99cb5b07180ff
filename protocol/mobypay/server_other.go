//go:build !linux

package mobypay

import (
	"net"
	"time"
)

// setUserTimeout is Linux-only; elsewhere the aggressive keepalive alone
// probes the old session.
func setUserTimeout(net.Conn, time.Duration) error { return nil }
