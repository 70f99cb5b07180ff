package control

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Listen opens the control socket (mode 0660). A socket file left
// by a crash is removed; one that still answers belongs to a running
// kioskd, and starting a second one is refused.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another kioskd is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// ConnectAddrs lists the addresses a POS should connect to: the listen
// address itself, or every non-loopback address when listening on all.
func ConnectAddrs(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return []string{a.String()}
	}
	port := strconv.Itoa(ta.Port)
	if !ta.IP.IsUnspecified() {
		return []string{net.JoinHostPort(ta.IP.String(), port)}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			out = append(out, net.JoinHostPort(ipn.IP.String(), port))
		}
	}
	if len(out) == 0 {
		out = append(out, net.JoinHostPort("127.0.0.1", port))
	}
	return out
}

// POSStatsOf copies the POS server's counters into status.
func POSStatsOf(s *mobypay.Stats) POSStats {
	return POSStats{
		Sessions: s.Sessions.Load(), Replaced: s.Replaced.Load(), Rejected: s.Rejected.Load(),
		Received: s.Received.Load(), Late: s.Late.Load(), Malformed: s.Malformed.Load(),
		BadSignature: s.BadSig.Load(), Replayed: s.Replayed.Load(), Oversize: s.Oversize.Load(),
		Undecoded: s.Undecoded.Load(), Pending: s.Pending.Load(), Promoted: s.Promoted.Load(),
		Displaced: s.Displaced.Load(), NoNonce: s.NoNonce.Load(), Pings: s.Pings.Load(),
	}
}

// Mux registers every route of the control API on one mux and
// returns their patterns with it: the one list that docs/control-api.json
// is tested against, in both directions.
func Mux(routes []Route) (*http.ServeMux, []string) {
	mux := http.NewServeMux()
	patterns := make([]string, 0, len(routes))
	for _, r := range routes {
		mux.HandleFunc(r.Pattern, r.Handler)
		patterns = append(patterns, r.Pattern)
	}
	return mux, patterns
}
