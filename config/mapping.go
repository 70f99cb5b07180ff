package config

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/kioskd/kioskd/fleet"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/mdb"
	"github.com/kioskd/kioskd/protocol/qibixx"
)

// vendSlack is what a vend may take beyond the relay pulse (the drop
// sensor's wait and the relay's own switching) before the service calls
// it stuck.
const vendSlack = 5 * time.Second

// PaymentConfig maps [payment] (and the relay pulse, which bounds a vend;
// in pulses mode the pulse value and the longest train) onto the payment
// service's config.
func (c *Config) PaymentConfig(log *slog.Logger) payment.Config {
	pc := payment.Config{
		VendTimeout:        c.Relay.Pulse.Duration + vendSlack,
		Timeouts:           map[string]payment.Timeouts{},
		CancelGrace:        c.Payment.CancelGrace.Duration,
		ReconnectGrace:     c.Payment.ReconnectGrace.Duration,
		IPPAutoSelect:      payment.IPPAutoSelect(c.Payment.IPPAutoSelect),
		SuccessAfterCancel: payment.SuccessAfterCancel(c.Payment.SuccessAfterCancel),
		AsyncVendTimeout:   c.MDB.VendTimeout.Duration,
		Log:                log,
	}
	for mode, t := range c.Payment.Timeouts {
		pc.Timeouts[mode] = payment.Timeouts{Ack: t.Ack.Duration, Result: t.Result.Duration, Plan: t.Plan.Duration}
	}
	if c.Relay.Mode == RelayPulses {
		// A bad value is validate's to report; here it maps to none.
		pc.PulseValue, _ = payment.ParseAmount(c.Relay.PulseValue)
		pc.MaxPulses = c.Relay.MaxPulses
		pc.VendTimeout = c.train().Longest() + vendSlack
	}
	return pc
}

// MachineConfig maps [relay], [printer], the watchdog timeout,
// the free-space warning of [journal] and the kiosk's identity onto the
// machine adapter's config: the machine package takes plain values and
// never sees the TOML shape.
func (c *Config) MachineConfig() machine.Config {
	return machine.Config{
		KioskID:         c.KioskID,
		DataDir:         c.DataDir,
		MinFree:         uint64(c.Journal.MinFreeMB) << 20,
		Pulse:           c.Relay.Pulse.Duration,
		Pulses:          c.Relay.Mode == RelayPulses,
		PulseOn:         c.Relay.PulseOn.Duration,
		PulseOff:        c.Relay.PulseOff.Duration,
		WatchdogTimeout: c.Board.WatchdogTimeout.Duration,
		Buttons:         c.machineButtons(),
		Printer: machine.PrinterConfig{
			Enabled:  c.Printer.Enabled,
			Merchant: c.Printer.Merchant,
			Footer:   c.Printer.Footer,
			Width:    c.Printer.Width,
			CodePage: c.Printer.CodePage,
		},
	}
}

// MDBConfig maps [mdb] onto the cashless device's config and the
// adapter's (which provider and mode pay a Vend Request). The transport
// and its device are c.MDB.Transport and c.MDB.Device as they stand.
func (c *Config) MDBConfig() (mdb.Config, machine.MDBConfig) {
	m := &c.MDB
	dc := mdb.Config{
		Address:      byte(m.Address),
		Level:        uint8(m.Level),
		Currency:     uint16(m.Currency),
		Scale:        mdb.Scale{Factor: uint8(m.ScaleFactor), Decimals: uint8(m.DecimalPlaces)},
		MaxResponse:  m.MaxResponseTime.Duration,
		VendMargin:   m.VendMargin.Duration,
		NoCashSale:   !m.CashSale,
		NoAlwaysIdle: !m.AlwaysIdle,
		AutoSession:  m.AutoSession,
		Serial:       c.KioskID,
	}
	if len(dc.Serial) > 12 {
		// The Peripheral ID's serial field holds 12 characters; the
		// kiosk id's end is what tells kiosks apart.
		dc.Serial = dc.Serial[len(dc.Serial)-12:]
	}
	return dc, machine.MDBConfig{Provider: m.Provider, Mode: m.Mode}
}

// QibixxConfig maps [mdb] onto a Qibixx board's reader (transport
// qibixx): the board's address, currency and always idle, the decimals
// its amounts are written with, and the same vend deadline as the
// word-level device's.
func (c *Config) QibixxConfig() qibixx.Config {
	m := &c.MDB
	return qibixx.Config{
		Address: byte(m.Address), Currency: uint16(m.Currency),
		Scale:      mdb.Scale{Factor: uint8(m.ScaleFactor), Decimals: uint8(m.DecimalPlaces)},
		AlwaysIdle: m.AlwaysIdle, MaxResponse: m.MaxResponseTime.Duration, VendMargin: m.VendMargin.Duration,
	}
}

// Link maps [kpos] onto the protocol's config: the host, the receivers
// and the key files.
func (k *KPOS) Link() kpos.Config {
	return kpos.Config{
		HostURL: k.HostURL, MID: k.MID, SourceSystem: k.SourceSystem, FinexusSourceSystem: k.FinexusSourceSystem,
		Listen: k.Listen, Path: k.Path, TLSCert: k.TLSCert, TLSKey: k.TLSKey, AllowPlainHTTP: k.AllowPlainHTTP,
		ContentKey: k.ContentKey, ECDHPrivateKey: k.ECDHPrivateKey, FinexusECDHPublic: k.FinexusECDHPublic,
		KDFOtherInfo: k.KDFOtherInfo, SigningKey: k.SigningKey, FinexusSigningPub: k.FinexusSigningPub,
		JWEKid: k.JWEKid, EPKKid: k.EPKKid, SerialDevice: k.SerialDevice, SerialBaud: k.SerialBaud, ReplyMTI: k.ReplyMTI,
		Codes: kpos.Codes{BadSignature: k.CodeBadSignature, BadMessage: k.CodeBadMessage, UnknownMRN: k.CodeUnknownMRN, Busy: k.CodeBusy},
	}
}

// Keys reads the key files [kpos] names; an error names the key.
func (k *KPOS) Keys() (*kpos.Keys, error) {
	keys, err := k.Link().LoadKeys()
	if err != nil {
		return nil, fmt.Errorf("kpos.%w", err)
	}
	return keys, nil
}

// Provider maps [kpos] onto the payment provider's config; version is
// kioskd's, sent as the caller device version.
func (k *KPOS) Provider(version string) payment.KPOSConfig {
	return payment.KPOSConfig{MID: k.MID, DeviceSN: k.DeviceSN, CallerDeviceType: k.CallerDeviceType, CallerDeviceVer: version,
		SequencePrefix: k.SequencePrefix, Currency: k.Currency}
}

// Fleet is the [fleet] section: the operator's MQTT broker that the
// journal and the kiosk's status are shipped to (docs/fleet.md).
type Fleet struct {
	Enabled      bool     `toml:"enabled"`
	Broker       string   `toml:"broker"`
	CAFile       string   `toml:"ca_file"`
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`
	Username     string   `toml:"username"`
	PasswordFile string   `toml:"password_file"`
	StatusEvery  Duration `toml:"status_every"`
}

// FleetConfig maps [fleet] and the kiosk's identity onto the shipper's
// config; version is the firmware's, for the status it publishes.
func (c *Config) FleetConfig(version string, log *slog.Logger) fleet.Config {
	f := &c.Fleet
	return fleet.Config{Broker: f.Broker, CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile,
		Username: f.Username, PasswordFile: f.PasswordFile, KioskID: c.KioskID, Version: version,
		StatusEvery: f.StatusEvery.Duration, Log: log}
}
