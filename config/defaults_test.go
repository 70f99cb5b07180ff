package config

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/device/printer"
	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// Defaults live in default.toml. Where a package still falls back on a
// zero value (for callers that are not kioskd, and its own tests), the
// fallback must say what default.toml says; where it cannot be compared
// (an unexported literal), default.toml must set the key, so that the
// fallback never applies to kioskd.
func TestPackageDefaultsMatchDefaultTOML(t *testing.T) {
	cfg, err := Parse(Default())
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.POS.TimestampWindow.Duration; w != mobypay.DefaultWindow {
		t.Errorf("pos.timestamp_window %s, mobypay.DefaultWindow %s", w, mobypay.DefaultWindow)
	}
	if f := cfg.POS.MaxFrame; f != mobypay.MaxFrame {
		t.Errorf("pos.max_frame %d, mobypay.MaxFrame %d", f, mobypay.MaxFrame)
	}
	if w := cfg.Printer.Width; w != printer.DefaultWidth {
		t.Errorf("printer.width %d, printer.DefaultWidth %d", w, printer.DefaultWidth)
	}
	link := cfg.KPOS.Link()
	if link.Codes != kpos.DefaultCodes {
		t.Errorf("kpos codes %+v, kpos.DefaultCodes %+v", link.Codes, kpos.DefaultCodes)
	}
	if link.ReplyMTI != kpos.MTINotificationOK {
		t.Errorf("kpos.reply_mti %q, kpos.MTINotificationOK %q", link.ReplyMTI, kpos.MTINotificationOK)
	}
	if def, _ := kpos.ParseOtherInfo(""); def.String() != link.KDFOtherInfo {
		t.Errorf("kpos.kdf_other_info %q, kpos's default %v", link.KDFOtherInfo, def)
	}
	// payment.NewKPOS falls back on "458", payment.NewService on 30 s
	// graces and on per-mode timeouts; default.toml sets them all.
	if cfg.KPOS.Currency != "458" {
		t.Errorf("kpos.currency %q, payment's default 458", cfg.KPOS.Currency)
	}
	if cfg.Payment.CancelGrace.Duration != 30*time.Second || cfg.Payment.ReconnectGrace.Duration != 30*time.Second {
		t.Errorf("payment graces %s, %s: payment.NewService's default is 30s", cfg.Payment.CancelGrace, cfg.Payment.ReconnectGrace)
	}
	for _, mode := range []string{mobypay.ModeCard, mobypay.ModeBNPL, mobypay.ModeDuitNowQR, mobypay.ModeIPP} {
		to, ok := cfg.Payment.Timeouts[mode]
		if !ok || to.Ack.Duration == 0 || to.Result.Duration == 0 || mode == mobypay.ModeIPP && to.Plan.Duration == 0 {
			t.Errorf("payment.timeouts.%s %+v: default.toml must set each, or payment's fallback applies", mode, to)
		}
	}

	// The [board] comments list a Pi's defaults, commented out: with them
	// uncommented, a Pi 4's profile is unchanged (but for the drop sensor,
	// which no Pi has by default).
	i := strings.Index(string(Default()), "\n[board]\n")
	if i < 0 {
		t.Fatal("no [board] in default.toml")
	}
	commented := regexp.MustCompile(`(?m)^# ([a-z_]+ = .*)$`)
	uncommented := string(Default()[:i]) + commented.ReplaceAllString(string(Default()[i:]), "$1")
	uncommented = strings.Replace(uncommented, `kind = "sim"`, `kind = "rpi4"`, 1)
	pi, err := Parse([]byte(uncommented))
	if err != nil {
		t.Fatal(err)
	}
	if pi.Board.RelayPin == "" || pi.Board.PrinterBaud == 0 {
		t.Fatalf("the commented [board] keys were not read: %+v", pi.Board)
	}
	got, _ := pi.BoardProfile()
	want, _ := board.Lookup("rpi4")
	want.RelaySense = pi.Board.RelaySensePin
	if got != want {
		t.Errorf("default.toml's commented Pi defaults %+v, board's rpi4 %+v", got, want)
	}
}
