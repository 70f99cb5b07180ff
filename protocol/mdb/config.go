package mdb

import (
	"errors"
	"fmt"
	"time"
)

// The two cashless device addresses.
const (
	AddrCashless1 byte = 0x10
	AddrCashless2 byte = 0x60
)

// CurrencyMYR is the ISO 4217 numeric code of the Malaysian ringgit.
const CurrencyMYR = 458

// Optional feature bits of the Peripheral ID and of Expansion Enable
// Options (level 3). The device offers only OptionAlwaysIdle; the others
// are named so that a trace can show what a VMC asked for.
const (
	OptionFTL           uint32 = 1 << 0
	Option32Bit         uint32 = 1 << 1
	OptionMultiCurrency uint32 = 1 << 2
	OptionNegativeVend  uint32 = 1 << 3
	OptionDataEntry     uint32 = 1 << 4
	OptionAlwaysIdle    uint32 = 1 << 5
)

// ErrConfig is what New wraps around every problem it finds in a Config.
var ErrConfig = errors.New("mdb: invalid config")

// Config is the device's identity and its answers to Setup. The zero
// value of each field means its documented default.
type Config struct {
	// Address is AddrCashless1 (10h, the default) or AddrCashless2 (60h).
	Address byte
	// Level is the reader feature level, 1, 2 or 3 (default 3). The
	// device talks at the lower of this and the VMC's level.
	Level uint8
	// Currency is the ISO 4217 numeric code (default 458, MYR), sent as
	// packed BCD with a leading 1 (ringgit: 14 58h), the form the standard
	// makes mandatory at level 3.
	Currency uint16
	// Scale is the money scaling (default factor 1, 2 decimals: one
	// scaled unit is one sen).
	Scale Scale
	// MaxResponse is the Application Maximum Response Time: how long the
	// VMC waits, after ACKing a Vend Request, for Vend Approved or
	// Denied. Whole seconds, 1 to 255 (default 60 s, a card payment's
	// usual worst case).
	MaxResponse time.Duration
	// VendMargin is how long before MaxResponse runs out the device gives
	// up on the payment and answers Vend Denied itself, so that the VMC
	// hears a denial rather than its own timeout (default 2 s). It must
	// be shorter than MaxResponse.
	VendMargin time.Duration
	// Refunds sets misc option b0: the reader can restore funds after a
	// Vend Failure. Off by default: kioskd records a refund owed for the
	// operator, it does not credit the card by itself.
	Refunds bool
	// Multivend sets misc option b1: several vends in one session. Off
	// by default: one card payment, one item.
	Multivend bool
	// NoCashSale clears misc option b3, which is set by default so that
	// the VMC reports cash sales for the audit journal.
	NoCashSale bool
	// NoAlwaysIdle stops the device offering the level 3 "always idle"
	// option, which it offers by default.
	NoAlwaysIdle bool
	// AutoSession makes the device announce Begin Session (funds
	// unknown) by itself whenever it is enabled and idle, for VMCs that
	// will not send a Vend Request outside a session and do not take
	// the always idle option. Off by default.
	AutoSession bool
	// Manufacturer is the three-letter EVA-DTS manufacturer code
	// (default "KSK"); Serial and Model are up to 12 ASCII characters,
	// padded with spaces (defaults "0" and "kioskd"); SoftwareVersion is
	// 0..9999, sent as four BCD digits.
	Manufacturer    string
	Serial          string
	Model           string
	SoftwareVersion uint16
	// Now is the clock (default time.Now); tests give a fake one.
	Now func() time.Time
}

// normalize fills in defaults and returns every problem at once.
func (c Config) normalize() (Config, error) {
	if c.Address == 0 {
		c.Address = AddrCashless1
	}
	if c.Level == 0 {
		c.Level = 3
	}
	if c.Currency == 0 {
		c.Currency = CurrencyMYR
	}
	if c.Scale == (Scale{}) {
		c.Scale = Scale{Factor: 1, Decimals: 2}
	}
	if c.MaxResponse == 0 {
		c.MaxResponse = 60 * time.Second
	}
	if c.VendMargin == 0 {
		c.VendMargin = 2 * time.Second
	}
	if c.Manufacturer == "" {
		c.Manufacturer = "KSK"
	}
	if c.Serial == "" {
		c.Serial = "0"
	}
	if c.Model == "" {
		c.Model = "kioskd"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.Address != AddrCashless1 && c.Address != AddrCashless2 {
		bad("address %#02x: want 10h or 60h", c.Address)
	}
	if c.Level > 3 {
		bad("level %d: want 1, 2 or 3", c.Level)
	}
	if c.Currency > 999 {
		bad("currency %d: an ISO 4217 numeric code has three digits", c.Currency)
	}
	if !c.Scale.valid() {
		bad("scale factor %d, decimals %d: want factor 1..255, decimals 0..4", c.Scale.Factor, c.Scale.Decimals)
	}
	if c.MaxResponse < time.Second || c.MaxResponse > 255*time.Second || c.MaxResponse%time.Second != 0 {
		bad("max response %v: want whole seconds, 1s..255s", c.MaxResponse)
	}
	if c.VendMargin < 0 || c.VendMargin >= c.MaxResponse {
		bad("vend margin %v: must be shorter than max response %v", c.VendMargin, c.MaxResponse)
	}
	if !asciiField(c.Manufacturer, 3) || len(c.Manufacturer) != 3 {
		bad("manufacturer %q: want three ASCII characters", c.Manufacturer)
	}
	if !asciiField(c.Serial, 12) {
		bad("serial %q: want up to 12 ASCII characters", c.Serial)
	}
	if !asciiField(c.Model, 12) {
		bad("model %q: want up to 12 ASCII characters", c.Model)
	}
	if c.SoftwareVersion > 9999 {
		bad("software version %d: want 0..9999 (four BCD digits)", c.SoftwareVersion)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

func asciiField(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// bcd2 packs v (0..9999) into two bytes of BCD.
func bcd2(v uint16) (byte, byte) {
	d := func(n uint16) byte { return byte(n % 10) }
	return d(v/1000)<<4 | d(v/100), d(v/10)<<4 | d(v)
}

// miscOptions is byte Z8 of Reader Config Data.
func (c *Config) miscOptions() byte {
	var m byte
	if c.Refunds {
		m |= 1 << 0
	}
	if c.Multivend {
		m |= 1 << 1
	}
	// b2, the reader's own display: kioskd has none on the bus side.
	if !c.NoCashSale {
		m |= 1 << 3
	}
	return m
}

// offered is the optional feature bits the device announces.
func (c *Config) offered() uint32 {
	if c.Level < 3 || c.NoAlwaysIdle {
		return 0
	}
	return OptionAlwaysIdle
}
