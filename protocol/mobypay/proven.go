package mobypay

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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
	path := filepath.Join(dir, LastProvenFile)
	tmp := path + ".tmp"
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(a.String() + "\n"); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}()
	if err != nil {
		return fmt.Errorf("mobypay: last proven host: %w", err)
	}
	return nil
}
