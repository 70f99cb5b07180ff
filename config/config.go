// Package config reads kioskd's TOML configuration over the embedded
// default and checks it whole: each package validates its own settings
// (payment, relay, printer, kpos, board, mobypay) and this one maps the
// file onto them, puts the TOML section before each problem and reports
// every problem at once. default.toml is the only place defaults live.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/device/printer"
	"github.com/kioskd/kioskd/device/relay"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/escpos"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

//go:embed default.toml
var defaultConfig []byte

// Default is the embedded default.toml, as `kioskd config default` prints
// it. The caller must not modify it.
func Default() []byte { return defaultConfig }

// Config is kioskd's whole configuration. Every key is validated before
// anything is opened or started.
type Config struct {
	KioskID   string `toml:"kiosk_id"`
	DataDir   string `toml:"data_dir"`
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`

	POS struct {
		Listen          string   `toml:"listen"`
		Secret          string   `toml:"secret"`
		SecretFile      string   `toml:"secret_file"`
		TimestampWindow Duration `toml:"timestamp_window"`
		MaxFrame        int      `toml:"max_frame"`
		Allow           []string `toml:"allow"`
	} `toml:"pos"`

	Payment struct {
		CancelGrace        Duration            `toml:"cancel_grace"`
		ReconnectGrace     Duration            `toml:"reconnect_grace"`
		IPPAutoSelect      string              `toml:"ipp_auto_select"`
		SuccessAfterCancel string              `toml:"success_after_cancel"`
		Timeouts           map[string]Timeouts `toml:"timeouts"`
	} `toml:"payment"`

	KPOS KPOS `toml:"kpos"`

	Printer struct {
		Enabled  bool     `toml:"enabled"`
		Merchant []string `toml:"merchant"`
		Footer   []string `toml:"footer"`
		Width    int      `toml:"width"`
		CodePage string   `toml:"code_page"`
	} `toml:"printer"`

	Relay struct {
		Mode       string   `toml:"mode"` // RelayPulse or RelayPulses
		Pulse      Duration `toml:"pulse"`
		PulseValue string   `toml:"pulse_value"` // RM, as payment.ParseAmount reads it
		PulseOn    Duration `toml:"pulse_on"`
		PulseOff   Duration `toml:"pulse_off"`
		MaxPulses  int      `toml:"max_pulses"`
	} `toml:"relay"`

	Control struct {
		Socket string `toml:"socket"`
	} `toml:"control"`

	Journal struct {
		Keep      Duration `toml:"keep"`
		MinFreeMB int      `toml:"min_free_mb"`
	} `toml:"journal"`

	Fleet Fleet `toml:"fleet"`

	// Update is the [update] section: A/B updates through RAUC
	// (docs/update.md).
	Update struct {
		Rauc    string   `toml:"rauc"`
		Reboot  []string `toml:"reboot"`
		Wait    Duration `toml:"wait"`
		Cmdline string   `toml:"cmdline"`
	} `toml:"update"`

	Buttons []Button `toml:"buttons"` // price buttons, see buttons.go
	MDB     MDB      `toml:"mdb"`

	Board struct {
		Kind string `toml:"kind"`
		// Overrides of the board profile; empty or absent keeps the default.
		RelayPin        string   `toml:"relay_pin"`
		RelayActiveLow  *bool    `toml:"relay_active_low"`
		RelaySensePin   string   `toml:"relay_sense_pin"`
		LEDGreen        string   `toml:"led_green"`
		LEDAmber        string   `toml:"led_amber"`
		LEDRed          string   `toml:"led_red"`
		LEDActiveLow    *bool    `toml:"led_active_low"`
		PrinterDevice   string   `toml:"printer_device"`
		PrinterBaud     int      `toml:"printer_baud"`
		WatchdogDevice  string   `toml:"watchdog_device"`
		WatchdogTimeout Duration `toml:"watchdog_timeout"`
	} `toml:"board"`

	// Source names where the config came from, for logs.
	Source string `toml:"-"`
}

// KPOS is the [kpos] section; Link maps it onto kpos.Config.
type KPOS struct {
	Enabled             bool   `toml:"enabled"`
	HostURL             string `toml:"host_url"`
	MID                 string `toml:"mid"`
	DeviceSN            string `toml:"device_sn"`
	CallerDeviceType    string `toml:"caller_device_type"`
	SourceSystem        string `toml:"source_system"`
	FinexusSourceSystem string `toml:"finexus_source_system"`
	SequencePrefix      string `toml:"sequence_prefix"`
	Currency            string `toml:"currency"`
	Listen              string `toml:"listen"`
	Path                string `toml:"path"`
	TLSCert             string `toml:"tls_cert"`
	TLSKey              string `toml:"tls_key"`
	AllowPlainHTTP      bool   `toml:"allow_plain_http"`
	ContentKey          string `toml:"content_key"`
	ECDHPrivateKey      string `toml:"ecdh_private_key"`
	FinexusECDHPublic   string `toml:"finexus_ecdh_public_key"`
	KDFOtherInfo        string `toml:"kdf_other_info"`
	SigningKey          string `toml:"signing_key"`
	FinexusSigningPub   string `toml:"finexus_signing_public_key"`
	JWEKid              string `toml:"jwe_kid"`
	EPKKid              string `toml:"epk_kid"`
	SerialDevice        string `toml:"serial_device"`
	SerialBaud          int    `toml:"serial_baud"`
	ReplyMTI            string `toml:"reply_mti"`
	CodeBadSignature    string `toml:"code_bad_signature"`
	CodeBadMessage      string `toml:"code_bad_message"`
	CodeUnknownMRN      string `toml:"code_unknown_mrn"`
	CodeBusy            string `toml:"code_busy"`
}

// Timeouts are one mode's [payment.timeouts.MODE].
type Timeouts struct {
	Ack    Duration `toml:"ack"`
	Result Duration `toml:"result"`
	Plan   Duration `toml:"plan"`
}

// Duration reads TOML strings such as "60s" or "2m".
type Duration struct{ time.Duration }

// UnmarshalText parses a time.ParseDuration string, or a whole number
// of days ("90d"), which is how an operator says how long to keep
// records and which Go's durations cannot spell.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return fmt.Errorf("%q: want a whole number of days, such as \"90d\"", s)
		}
		d.Duration = time.Duration(n) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Load reads path, or the embedded default when path is empty, and
// validates it.
func Load(path string) (*Config, error) {
	data, source := defaultConfig, "embedded default"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		source = path
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", source, err)
	}
	cfg.Source = source
	return cfg, nil
}

// Parse reads a config over the embedded default, so a file needs only
// the keys it changes, and validates it. The secret is taken from the
// file as a pair: naming secret_file there drops the default's
// development secret.
func Parse(data []byte) (*Config, error) {
	var cfg Config
	if _, err := toml.NewDecoder(bytes.NewReader(defaultConfig)).Decode(&cfg); err != nil {
		return nil, fmt.Errorf("embedded default: %w", err)
	}
	def := cfg.POS
	cfg.POS.Secret, cfg.POS.SecretFile = "", ""
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, err
	}
	if !md.IsDefined("pos", "secret") && !md.IsDefined("pos", "secret_file") {
		cfg.POS.Secret, cfg.POS.SecretFile = def.Secret, def.SecretFile
	}
	// A misspelt key silently left at its default is how a kiosk ends up
	// on the development secret; refuse unknown keys.
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// validate checks the keys that are kioskd's own and hands every other
// section to the package that owns it.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.KioskID == "" || !printableASCII(c.KioskID) || len(c.KioskID) > 64 {
		bad("kiosk_id %q: want 1 to 64 printable ASCII characters", c.KioskID)
	}
	if c.DataDir == "" {
		bad("data_dir is empty")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format %q: want text or json", c.LogFormat)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}

	pos := mobypay.ServerConfig{Addr: c.POS.Listen, Window: c.POS.TimestampWindow.Duration, MaxFrame: c.POS.MaxFrame}
	errs = append(errs, under("pos", pos.Validate())...)
	switch {
	case c.POS.Secret != "" && c.POS.SecretFile != "":
		bad("pos: set secret or secret_file, not both")
	case c.POS.Secret == "" && c.POS.SecretFile == "":
		bad("pos: no secret or secret_file")
	case c.POS.Secret != "" && !utf8.ValidString(c.POS.Secret):
		bad("pos.secret is not valid UTF-8")
	}
	if _, err := c.AllowPrefixes(); err != nil {
		bad("pos.allow: %v", err)
	}

	errs = append(errs, under("payment", c.PaymentConfig(nil).Validate())...)
	// payment.Config takes a zero grace as its default; in a file a zero
	// is a mistake, and the default is written out in default.toml.
	if d := c.Payment.CancelGrace.Duration; d == 0 {
		bad("payment.cancel_grace 0s: want 1s to 10m")
	}
	if d := c.Payment.ReconnectGrace.Duration; d == 0 {
		bad("payment.reconnect_grace 0s: want 1s to 10m")
	}

	if c.Fleet.Enabled {
		// fleet names its keys fleet.KEY itself, as the operator's tools
		// use the same checks outside a config file.
		fc := c.FleetConfig("", nil)
		if err := fc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.KPOS.Enabled {
		errs = append(errs, under("kpos", c.KPOS.Link().Validate())...)
	}

	cp, err := escpos.ParseCodePage(c.Printer.CodePage)
	if err != nil {
		bad("printer.code_page: %v", err)
	}
	errs = append(errs, under("printer", printer.Layout{Width: c.Printer.Width, CodePage: cp}.Validate())...)

	errs = append(errs, under("relay", relay.Config{Pulse: c.Relay.Pulse.Duration}.Validate())...)
	errs = append(errs, c.validatePulses()...)
	errs = append(errs, c.validateButtons()...)
	errs = append(errs, c.validateMDB()...)

	if k := c.Journal.Keep.Duration; k < 24*time.Hour || k > 10*365*24*time.Hour {
		bad("journal.keep %s: want 1d to 3650d", k)
	}
	if mb := c.Journal.MinFreeMB; mb < 1 || mb > 1<<20 {
		bad("journal.min_free_mb %d: want 1 to 1048576", mb)
	}
	if c.Control.Socket == "" {
		bad("control.socket is empty")
	}
	errs = append(errs, c.validateUpdate()...)

	if p, err := c.BoardProfile(); err != nil {
		bad("board.kind: %v", err)
	} else {
		errs = append(errs, under("board", p.Validate(c.Printer.Enabled))...)
	}
	errs = append(errs, under("board", board.ValidateWatchdogTimeout(c.Board.WatchdogTimeout.Duration))...)
	return errors.Join(errs...)
}

// The [relay] modes.
const (
	RelayPulse  = "pulse"  // one pulse releases one product
	RelayPulses = "pulses" // the amount is given as coin pulses
)

// validatePulses checks [relay]'s mode and coin-pulse keys. They are
// checked in either mode, so that switching mode never meets a bad
// value; the bounds that tie them to other sections apply in pulses
// mode only.
func (c *Config) validatePulses() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	r := &c.Relay
	if r.Mode != RelayPulse && r.Mode != RelayPulses {
		bad("relay.mode %q: want %s or %s", r.Mode, RelayPulse, RelayPulses)
	}
	if v, err := payment.ParseAmount(r.PulseValue); err != nil {
		bad("relay.pulse_value: %v", err)
	} else if v <= 0 {
		bad("relay.pulse_value %q: want more than 0.00", r.PulseValue)
	}
	train := c.train()
	terr := train.Validate()
	errs = append(errs, under("relay", terr)...)
	if r.Mode != RelayPulses {
		return errs
	}
	// The train runs on the payment loop, which the watchdog's probe
	// must reach within watchdog_timeout (machine.probe); half of it is
	// left for the commit after each pulse and the loop's other work.
	if wd := c.Board.WatchdogTimeout.Duration; terr == nil && train.Longest() > wd/2 {
		bad("relay.max_pulses %d: the longest train, %d × (%s + %s) = %s, must end within half of board.watchdog_timeout (%s)",
			train.Max, train.Max, train.On, train.Off, train.Longest(), wd)
	}
	if c.Board.RelaySensePin != "" {
		bad("relay.mode %q: board.relay_sense_pin is set; a drop sensor confirms one product, not a coin credit", r.Mode)
	}
	return errs
}

func (c *Config) train() relay.TrainConfig {
	return relay.TrainConfig{On: c.Relay.PulseOn.Duration, Off: c.Relay.PulseOff.Duration, Max: c.Relay.MaxPulses}
}

// under puts a section before each of the errors a package's Validate
// returned, which name their keys as the section spells them.
func under(section string, err error) []error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s.%w", section, e)
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validateUpdate checks [update]. The commands are not looked up on
// PATH here: a kiosk without RAUC still runs and sells, and `kioskd
// update` says what is missing when it is asked.
func (c *Config) validateUpdate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	u := &c.Update
	if u.Rauc == "" {
		bad("update.rauc is empty: want the rauc command (\"rauc\" or a path)")
	}
	if len(u.Reboot) == 0 || u.Reboot[0] == "" {
		bad("update.reboot is empty: want the command that reboots the board (argv, [\"reboot\"])")
	}
	if w := u.Wait.Duration; w < time.Second || w > 24*time.Hour {
		bad("update.wait %s: want 1s to 24h", w)
	}
	if u.Cmdline == "" {
		bad("update.cmdline is empty: want the kernel command line's path (/proc/cmdline)")
	}
	return errs
}
