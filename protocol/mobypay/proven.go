package mobypay

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/kioskd/kioskd/internal/atomicfile"
)

// LastProvenFile keeps, in the kiosk's data directory, the host of the
// last POS session that proved itself (sent a correctly signed message):
// ServerConfig.LastProven across a restart, so that the real POS still
// displaces a silent squatter from another host that connected first.
const LastProvenFile = "pos-last-proven"

// LoadLastProven reads the host SaveLastProven kept in dir. A missing or
// unreadable file is the zero Addr: no host is remembered, and the first
// session to prove itself becomes the one.
func LoadLastProven(dir string) netip.Addr {
	b, err := os.ReadFile(filepath.Join(dir, LastProvenFile))
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// SaveLastProven replaces the file in dir durably (written aside,
// synced, renamed over), so that a power cut leaves the old host or the
// new one, never half a line. It suits ServerConfig.OnProven, which the
// server calls off the session goroutines.
func SaveLastProven(dir string, a netip.Addr) error {
	if err := atomicfile.Write(filepath.Join(dir, LastProvenFile), []byte(a.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("mobypay: last proven host: %w", err)
	}
	return nil
}
