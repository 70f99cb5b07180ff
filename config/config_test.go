package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

func TestDefaultIsValid(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KioskID != "KIOSK001" || cfg.POS.Listen != "0.0.0.0:8080" || cfg.Board.Kind != "sim" ||
		cfg.POS.TimestampWindow.Seconds() != 60 || cfg.Control.Socket == "" || cfg.DataDir == "" || cfg.Source != "embedded default" {
		t.Errorf("default config: %+v", cfg)
	}
	if _, err := Provision(cfg); err != nil {
		t.Errorf("default config does not provision: %v", err)
	}
}

func TestPartialConfigTakesDefaults(t *testing.T) {
	cfg, err := Parse([]byte("kiosk_id = \"K9\"\n[pos]\nsecret_file = \"/data/pos.secret\"\n[payment.timeouts.card]\nresult = \"90s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KioskID != "K9" || cfg.POS.Secret != "" || cfg.POS.SecretFile != "/data/pos.secret" ||
		cfg.POS.Listen != "0.0.0.0:8080" || cfg.Board.Kind != "sim" || cfg.Payment.Timeouts["card"].Result.Seconds() != 90 ||
		cfg.Payment.Timeouts["bnpl"].Result.Minutes() != 5 || cfg.Relay.Pulse.Milliseconds() != 500 {
		t.Fatalf("partial config: %+v", cfg)
	}
	cfg, err = Parse([]byte("kiosk_id = \"K9\"\n"))
	if err != nil || cfg.POS.Secret != mobypay.DevSecret {
		t.Fatalf("no secret named: %v %+v", err, cfg)
	}
}

// Each section's problems come back under its TOML name, whichever
// package found them, worded as the operator will read them.
func TestParseRefuses(t *testing.T) {
	kposOn := "[kpos]\nenabled = true\nhost_url = \"http://h\"\nmid = \"M\"\nallow_plain_http = true\ncontent_key = \"k\"\n" +
		"signing_key = \"s.pem\"\nfinexus_signing_public_key = \"f.pem\"\n"
	for _, c := range []struct {
		name, toml string
		want       []string
	}{
		{"not toml", "kiosk_id = ", []string{"expected"}},
		{"unknown keys", "knd = 1\n[board]\npin = 2\n", []string{"unknown keys: knd, board.pin"}},
		{"kiosk id", `kiosk_id = "K\n1"`, []string{`kiosk_id "K\n1": want 1 to 64 printable ASCII characters`}},
		{"long kiosk id", fmt.Sprintf("kiosk_id = %q", strings.Repeat("K", 65)), []string{"want 1 to 64 printable"}},
		{"data dir", `data_dir = ""`, []string{"data_dir is empty"}},
		{"log format", `log_format = "xml"`, []string{`log_format "xml": want text or json`}},
		{"log level", `log_level = "loud"`, []string{`log_level "loud": want debug, info, warn or error`}},
		{"pos listen", "[pos]\nlisten = \"8080\"", []string{`pos.listen "8080": `}},
		{"pos window", "[pos]\ntimestamp_window = \"1ms\"", []string{"pos.timestamp_window 1ms: want 1s to 10m"}},
		{"pos window unit", "[pos]\ntimestamp_window = \"60\"", []string{"missing unit"}},
		{"pos frame", "[pos]\nmax_frame = 100", []string{"pos.max_frame 100: want 1024 to 1048576"}},
		{"pos both secrets", "[pos]\nsecret = \"a\"\nsecret_file = \"/x\"", []string{"pos: set secret or secret_file, not both"}},
		{"pos no secret", "[pos]\nsecret = \"\"", []string{"pos: no secret or secret_file"}},
		{"pos allow", "[pos]\nallow = [\"pos-terminal\"]", []string{`pos.allow: "pos-terminal" is not an IP address or prefix`}},
		{"payment grace", "[payment]\ncancel_grace = \"0s\"\nreconnect_grace = \"11m\"",
			[]string{"payment.cancel_grace 0s: want 1s to 10m", "payment.reconnect_grace 11m0s: want 1s to 10m"}},
		{"payment timeout", "[payment.timeouts.card]\nresult = \"2h\"", []string{"payment.timeouts.card.result 2h0m0s: want 1s to 1h"}},
		{"payment mode", "[payment.timeouts.cash]\nresult = \"2m\"", []string{"payment.timeouts.cash: not a payment mode"}},
		{"payment policies", "[payment]\nipp_auto_select = \"all\"\nsuccess_after_cancel = \"refund\"",
			[]string{`payment.ipp_auto_select "all"`, `payment.success_after_cancel "refund"`}},
		{"kpos off is not checked", "[kpos]\nhost_url = \"\"\npath = \"x\"", nil},
		{"kpos on, complete", kposOn, nil},
		{"kpos on, bare", "[kpos]\nenabled = true", []string{"kpos.host_url: required", "kpos.mid: required",
			"kpos.tls_cert: not set; set allow_plain_http = true", "kpos.content_key: set it, or both",
			"kpos.signing_key: required", "kpos.finexus_signing_public_key: required"}},
		{"kpos serial", kposOn + "serial_device = \"/dev/ttyUSB0\"\nserial_baud = 300\nreply_mti = \"26\"\ncode_busy = \"00000\"",
			[]string{"kpos.serial_baud 300: want 1200 to 921600", `kpos.reply_mti "26": want 4 digits`, `kpos.code_busy "00000"`}},
		{"kpos path", kposOn + "path = \"kpos\"\nlisten = \"8443\"\nkdf_other_info = \"x\"",
			[]string{`kpos.path "kpos": must start with /`, `kpos.listen "8443": `, "kpos.kdf_other_info: "}},
		{"printer", "[printer]\nwidth = 80\ncode_page = \"cp850\"", []string{"printer.width 80: want 24 to 64", "printer.code_page: "}},
		{"relay", "[relay]\npulse = \"1m\"", []string{"relay.pulse 1m0s: want 10ms to 30s"}},
		{"relay short", "[relay]\npulse = \"5ms\"", []string{"relay.pulse 5ms: want 10ms to 30s"}},
		{"fleet broker", "[fleet]\nenabled = true\nbroker = \"http://h:1\"", []string{`fleet.broker "http://h:1": the scheme must be mqtt or mqtts`}},
		{"fleet tls files on plain", "[fleet]\nenabled = true\nca_file = \"/ca.pem\"", []string{"fleet.ca_file: TLS files need an mqtts:// broker"}},
		{"fleet kiosk id a topic level", "kiosk_id = \"K/7\"\n[fleet]\nenabled = true", []string{`fleet.kiosk_id "K/7"`}},
		{"journal keep short", "[journal]\nkeep = \"12h\"", []string{"journal.keep 12h0m0s: want 1d to 3650d"}},
		{"journal keep long", "[journal]\nkeep = \"4000d\"", []string{"journal.keep 96000h0m0s: want 1d to 3650d"}},
		{"journal keep half a day", "[journal]\nkeep = \"1.5d\"", []string{`want a whole number of days, such as "90d"`}},
		{"journal min free zero", "[journal]\nmin_free_mb = 0", []string{"journal.min_free_mb 0: want 1 to 1048576"}},
		{"journal min free huge", "[journal]\nmin_free_mb = 1048577", []string{"journal.min_free_mb 1048577: want 1 to 1048576"}},
		{"control", "[control]\nsocket = \"\"", []string{"control.socket is empty"}},
		{"board kind", "[board]\nkind = \"pi\"", []string{"board.kind: "}},
		{"board clash", "[board]\nled_red = \"SIM_RELAY\"", []string{`board.led_red "SIM_RELAY" is also relay_pin`}},
		{"board baud", "[board]\nprinter_baud = 50", []string{"board.printer_baud 50: want 1200 to 921600"}},
		{"board watchdog", "[board]\nwatchdog_timeout = \"1s\"", []string{"board.watchdog_timeout 1s: want 2s to 1m"}},
		{"generic board", "[board]\nkind = \"generic\"\nled_green = \"gpiochip0:\"", []string{
			`board.relay_pin: required for board kind "generic"`, `board.watchdog_device: required`, `board.printer_device: required`,
			`board.led_green "gpiochip0:": line offset ""`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.toml + "\n"))
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			if strings.HasPrefix(err.Error(), "config") {
				t.Errorf("Parse wraps its error as Load does: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every problem is reported at once, across sections, and Load names the
// file once.
func TestEveryProblemAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.toml")
	body := "data_dir = \"\"\n[pos]\nmax_frame = 1\n[relay]\npulse = \"1s1ms\"\n[printer]\nwidth = 1\n[board]\nwatchdog_timeout = \"1h\"\n" +
		"[payment]\ncancel_grace = \"0s\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "config "+path+": ") || strings.Count(msg, "config") != 1 {
		t.Errorf("not wrapped once: %v", err)
	}
	for _, k := range []string{"data_dir", "pos.max_frame", "printer.width", "board.watchdog_timeout", "payment.cancel_grace"} {
		if !strings.Contains(msg, k) {
			t.Errorf("does not name %s:\n%v", k, err)
		}
	}
	if !strings.Contains(msg, "\n") || strings.Count(msg, "\n") != 4 {
		t.Errorf("want five problems, one a line:\n%v", err)
	}
}

// The overrides reach the profile run opens: nothing of a Pi is left in
// a generic board's profile.
func TestGenericBoardProfile(t *testing.T) {
	cfg, err := Parse([]byte("data_dir = " + fmt.Sprintf("%q", t.TempDir()) + "\n[printer]\nenabled = false\n[board]\nkind = \"generic\"\n" +
		"relay_pin = \"gpiochip0:17\"\nwatchdog_device = \"/dev/watchdog1\"\nled_red = \"LED_R\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.BoardProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "generic" || p.Relay != "gpiochip0:17" || p.WatchdogDevice != "/dev/watchdog1" || p.LEDRed != "LED_R" ||
		p.LEDGreen != "" || p.LEDAmber != "" || p.PrinterDevice != "" || !p.RelayActiveLow || p.LEDActiveLow || p.PrinterBaud != 9600 {
		t.Errorf("generic profile %+v", p)
	}
}

func TestProvision(t *testing.T) {
	dir := t.TempDir()
	sf := filepath.Join(dir, "pos.secret")
	if err := os.WriteFile(sf, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(fmt.Sprintf("[pos]\nsecret_file = %q\nallow = [\"192.168.1.50\", \"10.0.0.7/24\", \"::ffff:10.1.1.1\"]\n", sf)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source = "test"
	p, err := Provision(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Secret) != "s3cret" || IsDevSecret(p.Secret) || p.Board.Kind != "sim" ||
		fmt.Sprint(p.Allow) != "[192.168.1.50/32 10.0.0.0/24 10.1.1.1/32]" {
		t.Errorf("provisioned %+v", p)
	}
	if err := os.WriteFile(sf, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Provision(cfg); err == nil || err.Error() != "config test: pos: secret file "+sf+" is empty" {
		t.Errorf("empty secret file: %v", err)
	}
	def, _ := Load("")
	if p, err := Provision(def); err != nil || !IsDevSecret(p.Secret) {
		t.Errorf("default secret: %v", err)
	}
}

func TestPaymentConfig(t *testing.T) {
	cfg, err := Parse([]byte("[relay]\npulse = \"2s\"\n[payment]\nipp_auto_select = \"first\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.PaymentConfig(nil)
	if pc.VendTimeout != 7*time.Second || pc.IPPAutoSelect != "first" || pc.SuccessAfterCancel != "vend" ||
		pc.CancelGrace != 30*time.Second || pc.Timeouts["ipp"].Plan != time.Minute || pc.Timeouts["bnpl"].Result != 5*time.Minute {
		t.Errorf("payment config %+v", pc)
	}
}

func TestKPOSMapping(t *testing.T) {
	cfg, err := Parse([]byte("[kpos]\nmid = \"M1\"\nsource_system = \"KIOSK\"\nfinexus_source_system = \"FNX\"\ncode_busy = \"KB001\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	link, prov := cfg.KPOS.Link(), cfg.KPOS.Provider("v9")
	rc := link.ReceiverConfig(nil, nil)
	if link.MID != "M1" || rc.SourceSystem != "FNX" || rc.OurSourceSystem != "KIOSK" || rc.Codes.Busy != "KB001" ||
		prov.MID != "M1" || prov.CallerDeviceVer != "v9" || prov.Currency != "458" || prov.CallerDeviceType != "17" {
		t.Errorf("link %+v, receiver %+v, provider %+v", link, rc, prov)
	}
	if _, err := cfg.KPOS.Keys(); err == nil || !strings.HasPrefix(err.Error(), "kpos.signing_key: ") {
		t.Errorf("keys without files: %v", err)
	}
}

// Days are how an operator says how long to keep records.
func TestJournalKeepDays(t *testing.T) {
	for in, want := range map[string]time.Duration{`"90d"`: 90 * 24 * time.Hour, `"2160h"`: 2160 * time.Hour, `"1d"`: 24 * time.Hour} {
		cfg, err := Parse([]byte("[journal]\nkeep = " + in))
		if err != nil {
			t.Fatalf("keep = %s: %v", in, err)
		}
		if got := cfg.Journal.Keep.Duration; got != want {
			t.Errorf("keep = %s: %s, want %s", in, got, want)
		}
	}
}

// min_free_mb reaches the machine in bytes; the default is 64 MiB.
func TestJournalMinFree(t *testing.T) {
	for in, want := range map[string]uint64{"": 64 << 20, "[journal]\nmin_free_mb = 1": 1 << 20, "[journal]\nmin_free_mb = 1048576": 1 << 40} {
		cfg, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := cfg.MachineConfig().MinFree; got != want {
			t.Errorf("%q: MinFree %d, want %d", in, got, want)
		}
	}
}

// With [fleet] on, the password and TLS files are read as the shipper
// reads them: config check refuses a kiosk whose files are missing.
func TestProvisionFleetFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "fleet.password")
	cfg, err := Parse([]byte(fmt.Sprintf("[fleet]\nenabled = true\nusername = \"kiosk7\"\npassword_file = %q\n", pw)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source = "test"
	if _, err := Provision(cfg); err == nil || !strings.Contains(err.Error(), "fleet.password_file: open "+pw) {
		t.Fatalf("missing password file: %v", err)
	}
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Provision(cfg); err != nil {
		t.Fatalf("with the password file: %v", err)
	}
	fc := cfg.FleetConfig("v9", nil)
	if fc.KioskID != "KIOSK001" || fc.Username != "kiosk7" || fc.Broker != "mqtt://127.0.0.1:1883" || fc.StatusEvery != time.Minute || fc.Version != "v9" {
		t.Errorf("FleetConfig %+v", fc)
	}
}

func TestUpdateSection(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Update
	if u.Rauc != "rauc" || len(u.Reboot) != 1 || u.Reboot[0] != "reboot" || u.Wait.Duration != 10*time.Minute || u.Cmdline != "/proc/cmdline" {
		t.Errorf("defaults %+v", u)
	}
	_, err = Parse([]byte("[update]\nrauc = \"\"\nreboot = []\nwait = \"0s\"\ncmdline = \"\"\n"))
	for _, want := range []string{"update.rauc is empty", "update.reboot is empty", "update.wait 0s", "update.cmdline is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
