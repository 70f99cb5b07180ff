package config

// The [mdb] section: kioskd as the MDB cashless reader of a vending
// machine (docs/operations.md, "Vending machines (MDB)").

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/qibixx"
)

// MDB is the [mdb] section; MDBConfig maps it onto the device and the
// adapter.
type MDB struct {
	Enabled bool `toml:"enabled"`
	// Address is the cashless device address, 0x10 (cashless #1) or 0x60.
	Address int `toml:"address"`
	// Transport is MDBTransportUART (the Pi's PL011, 9th bit by
	// mark/space parity), MDBTransportStream (two bytes per word over
	// a byte stream: simulators, bus tools) or MDBTransportQibixx (a
	// Qibixx board in cashless slave mode, which runs the bus itself);
	// Device is the serial device, or for a stream or a Qibixx board a
	// tty path or tcp://host:port.
	Transport string `toml:"transport"`
	Device    string `toml:"device"`
	// Gap is the pause between two words that ends a block before it is
	// complete (docs/mdb.md, "Cutting the bus into blocks").
	Gap Duration `toml:"gap"`
	// Provider and Mode pay each Vend Request.
	Provider string `toml:"provider"`
	Mode     string `toml:"mode"`
	// Level is the reader's feature level, 1 to 3.
	Level int `toml:"level"`
	// MaxResponseTime is what Reader Config Data tells the VMC to wait
	// for a vend's approval; VendMargin is how much earlier the reader
	// denies the vend itself; VendTimeout bounds the VMC's dispensing,
	// from Vend Approved to Vend Success or Failure.
	MaxResponseTime Duration `toml:"max_response_time"`
	VendMargin      Duration `toml:"vend_margin"`
	VendTimeout     Duration `toml:"vend_timeout"`
	// Currency is the ISO 4217 numeric code; ScaleFactor and
	// DecimalPlaces the money scaling the VMC's prices are in.
	Currency      int  `toml:"currency"`
	ScaleFactor   int  `toml:"scale_factor"`
	DecimalPlaces int  `toml:"decimal_places"`
	AlwaysIdle    bool `toml:"always_idle"`
	AutoSession   bool `toml:"auto_session"`
	CashSale      bool `toml:"cash_sale"`
}

// The [mdb] transports.
const (
	MDBTransportUART   = "uart"
	MDBTransportStream = "stream"
	MDBTransportQibixx = "qibixx"
)

// validateMDB checks [mdb]. Its own keys are checked enabled or not, so
// that turning it on never meets a bad value; what ties it to other
// sections (the provider's) only when enabled.
func (c *Config) validateMDB() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	m := &c.MDB
	if m.Address != int(mdb.AddrCashless1) && m.Address != int(mdb.AddrCashless2) {
		bad("mdb.address %#x: want 0x10 (cashless #1) or 0x60 (cashless #2)", m.Address)
	}
	switch m.Transport {
	case MDBTransportUART:
		if !filepath.IsAbs(m.Device) {
			bad("mdb.device %q: want the UART's device path, such as /dev/ttyAMA0", m.Device)
		}
	case MDBTransportStream, MDBTransportQibixx:
		if hostport, ok := strings.CutPrefix(m.Device, "tcp://"); ok {
			if i := strings.LastIndexByte(hostport, ':'); i <= 0 || i == len(hostport)-1 {
				bad("mdb.device %q: want tcp://host:port", m.Device)
			}
		} else if !filepath.IsAbs(m.Device) {
			bad("mdb.device %q: want tcp://host:port or a tty's path", m.Device)
		}
	default:
		bad("mdb.transport %q: want %s, %s or %s", m.Transport, MDBTransportUART, MDBTransportStream, MDBTransportQibixx)
	}
	if m.Transport == MDBTransportQibixx {
		// The board's pages do not say whether the amounts it writes are
		// before or after the scale factor: with 1 both read the same.
		if m.ScaleFactor != 1 {
			bad("mdb.scale_factor %d: transport qibixx takes 1 only (docs/mdb.md, Transport B)", m.ScaleFactor)
		}
		if m.AutoSession {
			bad("mdb.auto_session: not supported with transport qibixx; set always_idle")
		}
	}
	if g := m.Gap.Duration; g < time.Millisecond || g > time.Second {
		bad("mdb.gap %s: want 1ms to 1s", g)
	}
	switch m.Provider {
	case "mobypay":
	case "kpos":
		if m.Enabled && !c.KPOS.Enabled {
			bad("mdb.provider %q: kpos.enabled is false", m.Provider)
		}
	default:
		bad("mdb.provider %q: want mobypay or kpos", m.Provider)
	}
	if !mobypay.ValidMode(m.Mode) || m.Mode == mobypay.ModeIPP {
		// IPP waits for the customer to pick a plan: longer than any VMC
		// waits for an approval.
		bad("mdb.mode %q: want card, bnpl or duitnow_qr", m.Mode)
	}
	if m.Level < 1 || m.Level > 3 {
		bad("mdb.level %d: want 1, 2 or 3", m.Level)
	}
	mr := m.MaxResponseTime.Duration
	if mr < time.Second || mr > 255*time.Second || mr%time.Second != 0 {
		bad("mdb.max_response_time %s: want whole seconds, 1s to 255s", mr)
	}
	if vm := m.VendMargin.Duration; vm < 0 || vm >= mr {
		bad("mdb.vend_margin %s: want 0s or more, shorter than max_response_time (%s)", vm, mr)
	}
	if vt := m.VendTimeout.Duration; vt < 5*time.Second || vt > 10*time.Minute {
		bad("mdb.vend_timeout %s: want 5s to 10m", vt)
	}
	if m.Currency < 1 || m.Currency > 999 {
		bad("mdb.currency %d: want an ISO 4217 numeric code, 1 to 999 (458: ringgit)", m.Currency)
	}
	if m.ScaleFactor < 1 || m.ScaleFactor > 255 {
		bad("mdb.scale_factor %d: want 1 to 255", m.ScaleFactor)
	}
	if m.DecimalPlaces < 0 || m.DecimalPlaces > 4 {
		bad("mdb.decimal_places %d: want 0 to 4", m.DecimalPlaces)
	}
	if len(errs) == 0 {
		// Whatever else the device refuses (it checks its whole config).
		dc, _ := c.MDBConfig()
		if _, err := mdb.New(dc); err != nil {
			bad("mdb: %v", err)
		}
		if m.Transport == MDBTransportQibixx {
			if _, err := qibixx.New(c.QibixxConfig()); err != nil {
				bad("mdb: %v", err)
			}
		}
	}
	return errs
}
