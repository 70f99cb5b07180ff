package main

import (
	"bytes"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/protocol/escpos"
	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

//go:embed default.toml
var defaultConfig []byte

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
		TimestampWindow duration `toml:"timestamp_window"`
		MaxFrame        int      `toml:"max_frame"`
		Allow           []string `toml:"allow"`
	} `toml:"pos"`

	Payment struct {
		CancelGrace        duration                `toml:"cancel_grace"`
		ReconnectGrace     duration                `toml:"reconnect_grace"`
		IPPAutoSelect      string                  `toml:"ipp_auto_select"`
		SuccessAfterCancel string                  `toml:"success_after_cancel"`
		Timeouts           map[string]modeTimeouts `toml:"timeouts"`
	} `toml:"payment"`

	KPOS kposConfig `toml:"kpos"`

	Printer struct {
		Enabled  bool     `toml:"enabled"`
		Merchant []string `toml:"merchant"`
		Footer   []string `toml:"footer"`
		Width    int      `toml:"width"`
		CodePage string   `toml:"code_page"`
	} `toml:"printer"`

	Relay struct {
		Pulse duration `toml:"pulse"`
	} `toml:"relay"`

	Control struct {
		Socket string `toml:"socket"`
	} `toml:"control"`

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
		WatchdogTimeout duration `toml:"watchdog_timeout"`
	} `toml:"board"`

	// Source names where the config came from, for logs.
	Source string `toml:"-"`
}

type kposConfig struct {
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

type modeTimeouts struct {
	Ack    duration `toml:"ack"`
	Result duration `toml:"result"`
	Plan   duration `toml:"plan"`
}

// duration reads TOML strings such as "60s" or "2m".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// loadConfig reads path, or the embedded default when path is empty, and
// validates it.
func loadConfig(path string) (*Config, error) {
	data, source := defaultConfig, "embedded default"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		source = path
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", source, err)
	}
	cfg.Source = source
	return cfg, nil
}

// parseConfig reads a config over the embedded default, so a file needs
// only the keys it changes. The secret is taken from the file as a pair:
// naming secret_file there drops the default's development secret.
func parseConfig(data []byte) (*Config, error) {
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
	if _, _, err := net.SplitHostPort(c.POS.Listen); err != nil {
		bad("pos.listen %q: %v", c.POS.Listen, err)
	}
	switch {
	case c.POS.Secret != "" && c.POS.SecretFile != "":
		bad("pos: set secret or secret_file, not both")
	case c.POS.Secret == "" && c.POS.SecretFile == "":
		bad("pos: no secret or secret_file")
	case c.POS.Secret != "" && !utf8.ValidString(c.POS.Secret):
		bad("pos.secret is not valid UTF-8")
	}
	if w := c.POS.TimestampWindow.Duration; w < time.Second || w > 10*time.Minute {
		bad("pos.timestamp_window %s: want 1s to 10m", w)
	}
	if c.POS.MaxFrame < 1024 || c.POS.MaxFrame > 1<<20 {
		bad("pos.max_frame %d: want 1024 to 1048576", c.POS.MaxFrame)
	}
	if _, err := c.allowPrefixes(); err != nil {
		bad("pos.allow: %v", err)
	}
	// Each package checks its own config; errors come back by key.
	for _, err := range unjoin(paymentConfig(c, nil).Validate()) {
		bad("payment.%v", err)
	}
	if d := c.Payment.CancelGrace.Duration; d == 0 {
		bad("payment.cancel_grace 0s: want 1s to 10m")
	}
	if d := c.Payment.ReconnectGrace.Duration; d == 0 {
		bad("payment.reconnect_grace 0s: want 1s to 10m")
	}
	if c.KPOS.Enabled {
		k := &c.KPOS
		if k.HostURL == "" || k.MID == "" {
			bad("kpos: host_url and mid are required when enabled")
		}
		if _, _, err := net.SplitHostPort(k.Listen); err != nil {
			bad("kpos.listen %q: %v", k.Listen, err)
		}
		if !strings.HasPrefix(k.Path, "/") {
			bad("kpos.path %q: must start with /", k.Path)
		}
		if (k.TLSCert == "") != (k.TLSKey == "") {
			bad("kpos: set both tls_cert and tls_key, or neither")
		}
		if k.TLSCert == "" && !k.AllowPlainHTTP {
			bad("kpos: no tls_cert; set allow_plain_http = true to receive notifications over plain HTTP")
		}
		if (k.ContentKey == "") == (k.ECDHPrivateKey == "" || k.FinexusECDHPublic == "") {
			bad("kpos: set content_key, or both ecdh_private_key and finexus_ecdh_public_key")
		}
		if _, err := kpos.ParseOtherInfo(k.KDFOtherInfo); err != nil {
			bad("kpos.kdf_other_info: %v", err)
		}
		if k.SerialDevice != "" && (k.SerialBaud < 1200 || k.SerialBaud > 921600) {
			bad("kpos.serial_baud %d: want 1200 to 921600", k.SerialBaud)
		}
		if !kpos.ValidMTI(k.ReplyMTI) {
			bad("kpos.reply_mti %q: want 4 digits", k.ReplyMTI)
		}
		for name, code := range map[string]string{"code_bad_signature": k.CodeBadSignature, "code_bad_message": k.CodeBadMessage, "code_unknown_mrn": k.CodeUnknownMRN, "code_busy": k.CodeBusy} {
			if len(code) != 5 || code == kpos.ResultSuccess {
				bad("kpos.%s %q: want 5 characters, not 00000", name, code)
			}
		}
		if k.SigningKey == "" || k.FinexusSigningPub == "" {
			bad("kpos: signing_key and finexus_signing_public_key are required")
		}
	}
	if w := c.Printer.Width; w < 24 || w > 64 {
		bad("printer.width %d: want 24 to 64", w)
	}
	if _, err := escpos.ParseCodePage(c.Printer.CodePage); err != nil {
		bad("printer.code_page: %v", err)
	}
	if p := c.Relay.Pulse.Duration; p < 10*time.Millisecond || p > 30*time.Second {
		bad("relay.pulse %s: want 10ms to 30s", p)
	}
	if c.Control.Socket == "" {
		bad("control.socket is empty")
	}
	if p, err := c.boardProfile(); err != nil {
		bad("board.kind: %v", err)
	} else {
		errs = append(errs, pinClashes(p)...)
		if p.Kind == "generic" {
			errs = append(errs, c.genericBoard(p)...)
		}
	}
	if w := c.Board.WatchdogTimeout.Duration; w < 2*time.Second || w > time.Minute {
		bad("board.watchdog_timeout %s: want 2s to 1m (the Pi caps it near 15s)", w)
	}
	if b := c.Board.PrinterBaud; b != 0 && (b < 1200 || b > 921600) {
		bad("board.printer_baud %d: want 1200 to 921600", b)
	}
	return errors.Join(errs...)
}

// unjoin lists the errors an errors.Join made, or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// boardProfile is the board's default profile with the config's
// overrides applied.
func (c *Config) boardProfile() (board.Profile, error) {
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

// boardPins are the profile's pins by their [board] key.
func boardPins(p board.Profile) []struct{ role, pin string } {
	return []struct{ role, pin string }{{"relay_pin", p.Relay}, {"relay_sense_pin", p.RelaySense},
		{"led_green", p.LEDGreen}, {"led_amber", p.LEDAmber}, {"led_red", p.LEDRed}}
}

// pinClashes reports a pin given two roles (relay, drop sensor, LEDs):
// periph would happily drive an LED pattern onto the relay input.
func pinClashes(p board.Profile) []error {
	var errs []error
	roles := map[string]string{}
	for _, r := range boardPins(p) {
		if r.pin == "" {
			continue
		}
		if other, ok := roles[r.pin]; ok {
			errs = append(errs, fmt.Errorf("board.%s %q is also board.%s", r.role, r.pin, other))
			continue
		}
		roles[r.pin] = r.role
	}
	return errs
}

// genericBoard checks what a generic board cannot default: kioskd knows
// nothing of its header, UARTs or watchdog, so the relay pin and the
// watchdog must be named, and the printer when receipts are on. Its pins'
// syntax is checked here, without the hardware; whether they exist is
// known only when run opens the board.
func (c *Config) genericBoard(p board.Profile) []error {
	var errs []error
	required := func(key, v, what string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("board.%s: required for board kind %q (%s)", key, p.Kind, what))
		}
	}
	required("relay_pin", p.Relay, `a GPIO line name such as "GPIO17", or "gpiochip0:17"`)
	required("watchdog_device", p.WatchdogDevice, `the hardware watchdog, such as "/dev/watchdog"`)
	if c.Printer.Enabled {
		required("printer_device", p.PrinterDevice, `the receipt printer's serial device, such as "/dev/ttyS0", or printer.enabled = false`)
	}
	for _, r := range boardPins(p) {
		if r.pin == "" {
			continue
		}
		if _, _, err := board.ParsePin(r.pin); err != nil {
			errs = append(errs, fmt.Errorf("board.%s %q: %w", r.role, r.pin, err))
		}
	}
	return errs
}

// provisioned is what run takes from outside the config file itself:
// the secrets and keys read from the files it names, and the board
// profile with the config's overrides.
type provisioned struct {
	secret []byte
	allow  []netip.Prefix
	board  board.Profile
}

// provision reads and checks everything run needs beyond the config's
// own keys: the POS secret file, the KPOS key files and the keys they
// make, the KPOS TLS pair, the board profile (as far as it can be
// resolved without touching the hardware). `config check` and `run` both
// call it, so a config that passes the check is one run accepts, and run
// calls it before it opens the journal, binds a socket, arms the
// watchdog or records a start. Every problem is reported at once.
func provision(cfg *Config) (*provisioned, error) {
	var errs []error
	p := &provisioned{}
	var err error
	if p.secret, err = cfg.posSecret(); err != nil {
		errs = append(errs, fmt.Errorf("pos: %w", err))
	}
	if p.allow, err = cfg.allowPrefixes(); err != nil {
		errs = append(errs, fmt.Errorf("pos.allow: %w", err))
	}
	if p.board, err = cfg.boardProfile(); err != nil {
		errs = append(errs, fmt.Errorf("board.kind: %w", err))
	}
	if k := &cfg.KPOS; k.Enabled {
		// startKPOS builds the keys again from the same files, after the
		// journal opened, and the receiver loads the TLS pair only when
		// it starts serving: checked here first, a bad file is refused
		// before anything is opened.
		if _, err := loadKPOSKeys(k); err != nil {
			errs = append(errs, err)
		}
		if k.TLSCert != "" {
			if _, err := tls.LoadX509KeyPair(k.TLSCert, k.TLSKey); err != nil {
				errs = append(errs, fmt.Errorf("kpos.tls_cert, kpos.tls_key: %w", err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", cfg.Source, errors.Join(errs...))
	}
	return p, nil
}

// allowPrefixes parses pos.allow: addresses or CIDR prefixes.
func (c *Config) allowPrefixes() ([]netip.Prefix, error) {
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

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// posSecret returns the shared secret, reading secret_file if set.
func (c *Config) posSecret() ([]byte, error) {
	if c.POS.SecretFile == "" {
		return []byte(c.POS.Secret), nil
	}
	return readSecretFile(c.POS.SecretFile)
}

// readSecretFile reads a secret, dropping one trailing line ending that an
// editor or `echo` adds.
func readSecretFile(path string) ([]byte, error) {
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

// isDevSecret reports the public development key.
func isDevSecret(secret []byte) bool { return string(secret) == mobypay.DevSecret }
