package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Provisioned is what run takes from outside the config file itself: the
// secret read from the file it names, the allowed POS peers, and the
// board profile with the config's overrides.
type Provisioned struct {
	Secret []byte
	Allow  []netip.Prefix
	Board  board.Profile
}

// Provision reads and checks everything run needs beyond the config's
// own keys: the POS secret file, the KPOS key files and the keys they
// make, the KPOS TLS pair, the board profile (as far as it can be
// resolved without touching the hardware). `config check` and `run` both
// call it, so a config that passes the check is one run accepts, and run
// calls it before it opens the journal, binds a socket, arms the
// watchdog or records a start. It has no side effects. Every problem is
// reported at once.
func Provision(cfg *Config) (*Provisioned, error) {
	var errs []error
	p := &Provisioned{}
	var err error
	if p.Secret, err = cfg.POSSecret(); err != nil {
		errs = append(errs, fmt.Errorf("pos: %w", err))
	}
	if p.Allow, err = cfg.AllowPrefixes(); err != nil {
		errs = append(errs, fmt.Errorf("pos.allow: %w", err))
	}
	if p.Board, err = cfg.BoardProfile(); err != nil {
		errs = append(errs, fmt.Errorf("board.kind: %w", err))
	}
	if k := &cfg.KPOS; k.Enabled {
		// run builds the keys again from the same files, after the
		// journal opened, and the receiver loads the TLS pair only when
		// it starts serving: checked here first, a bad file is refused
		// before anything is opened.
		if _, err := k.Keys(); err != nil {
			errs = append(errs, err)
		}
		if k.TLSCert != "" {
			if _, err := tls.LoadX509KeyPair(k.TLSCert, k.TLSKey); err != nil {
				errs = append(errs, fmt.Errorf("kpos.tls_cert, kpos.tls_key: %w", err))
			}
		}
	}
	if cfg.Fleet.Enabled {
		// The password and TLS files, read as the shipper reads them.
		fc := cfg.FleetConfig("", nil)
		if _, err := fc.Load(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", cfg.Source, errors.Join(errs...))
	}
	return p, nil
}

// BoardProfile is the board's default profile with the config's
// overrides applied.
func (c *Config) BoardProfile() (board.Profile, error) {
	p, err := board.Lookup(c.Board.Kind)
	if err != nil {
		return p, err
	}
	b := &c.Board
	for _, o := range []struct {
		dst *string
		v   string
	}{{&p.Relay, b.RelayPin}, {&p.RelaySense, b.RelaySensePin}, {&p.LEDGreen, b.LEDGreen}, {&p.LEDAmber, b.LEDAmber},
		{&p.LEDRed, b.LEDRed}, {&p.PrinterDevice, b.PrinterDevice}, {&p.WatchdogDevice, b.WatchdogDevice}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if b.RelayActiveLow != nil {
		p.RelayActiveLow = *b.RelayActiveLow
	}
	if b.LEDActiveLow != nil {
		p.LEDActiveLow = *b.LEDActiveLow
	}
	if b.PrinterBaud != 0 {
		p.PrinterBaud = b.PrinterBaud
	}
	return p, nil
}

// AllowPrefixes parses pos.allow: addresses or CIDR prefixes.
func (c *Config) AllowPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range c.POS.Allow {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or prefix", a)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}

// POSSecret returns the shared secret, reading secret_file if set.
func (c *Config) POSSecret() ([]byte, error) {
	if c.POS.SecretFile == "" {
		return []byte(c.POS.Secret), nil
	}
	return ReadSecretFile(c.POS.SecretFile)
}

// ReadSecretFile reads a secret, dropping one trailing line ending that
// an editor or `echo` adds.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// IsDevSecret reports the public development key.
func IsDevSecret(secret []byte) bool { return string(secret) == mobypay.DevSecret }
