package config

import (
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// [mdb]'s keys: every problem under its key, at once, enabled or not.
func TestMDBRefused(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       []string
	}{
		{"address", "[mdb]\naddress = 0x11", []string{"mdb.address 0x11: want 0x10 (cashless #1) or 0x60 (cashless #2)"}},
		{"transport", "[mdb]\ntransport = \"usb\"", []string{`mdb.transport "usb": want uart, stream or qibixx`}},
		{"qibixx device", "[mdb]\ntransport = \"qibixx\"\ndevice = \"ttyACM0\"", []string{`mdb.device "ttyACM0": want tcp://host:port or a tty's path`}},
		{"qibixx tcp", "[mdb]\ntransport = \"qibixx\"\ndevice = \"tcp://:\"", []string{`mdb.device "tcp://:": want tcp://host:port`}},
		{"qibixx scale", "[mdb]\ntransport = \"qibixx\"\ndevice = \"/dev/ttyACM0\"\nscale_factor = 5\nauto_session = true", []string{
			"mdb.scale_factor 5: transport qibixx takes 1 only",
			"mdb.auto_session: not supported with transport qibixx"}},
		{"uart device", "[mdb]\ndevice = \"ttyAMA0\"", []string{`mdb.device "ttyAMA0": want the UART's device path`}},
		{"stream device", "[mdb]\ntransport = \"stream\"\ndevice = \"tcp://127.0.0.1\"", []string{`mdb.device "tcp://127.0.0.1": want tcp://host:port`}},
		{"gap short", "[mdb]\ngap = \"500us\"", []string{"mdb.gap 500µs: want 1ms to 1s"}},
		{"gap long", "[mdb]\ngap = \"2s\"", []string{"mdb.gap 2s: want 1ms to 1s"}},
		{"provider", "[mdb]\nprovider = \"cash\"", []string{`mdb.provider "cash": want mobypay or kpos`}},
		{"kpos off", "[mdb]\nenabled = true\nprovider = \"kpos\"", []string{`mdb.provider "kpos": kpos.enabled is false`}},
		{"mode", "[mdb]\nmode = \"ipp\"", []string{`mdb.mode "ipp": want card, bnpl or duitnow_qr`}},
		{"times", "[mdb]\nlevel = 4\nmax_response_time = \"1.5s\"\nvend_timeout = \"1s\"", []string{
			"mdb.level 4: want 1, 2 or 3",
			"mdb.max_response_time 1.5s: want whole seconds, 1s to 255s",
			"mdb.vend_timeout 1s: want 5s to 10m"}},
		{"margin", "[mdb]\nmax_response_time = \"10s\"\nvend_margin = \"10s\"", []string{"mdb.vend_margin 10s: want 0s or more, shorter than max_response_time (10s)"}},
		{"money", "[mdb]\ncurrency = 1000\nscale_factor = 0\ndecimal_places = 5", []string{
			"mdb.currency 1000:", "mdb.scale_factor 0: want 1 to 255", "mdb.decimal_places 5: want 0 to 4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.toml + "\n"))
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("does not say %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := Parse([]byte("[mdb]\nenabled = true\ntransport = \"stream\"\ndevice = \"tcp://127.0.0.1:7010\"\naddress = 0x60\n")); err != nil {
		t.Errorf("stream over TCP: %v", err)
	}
	for _, dev := range []string{"/dev/ttyACM0", "/dev/serial0", "tcp://127.0.0.1:7011"} {
		if _, err := Parse([]byte("[mdb]\nenabled = true\ntransport = \"qibixx\"\ndevice = \"" + dev + "\"\n")); err != nil {
			t.Errorf("qibixx on %s: %v", dev, err)
		}
	}
}

// default.toml's [mdb] says what the mdb and payment packages fall back
// on, and maps onto the device and the adapter.
func TestMDBDefaultsAndMapping(t *testing.T) {
	cfg, err := Parse(Default())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MDB.Enabled {
		t.Error("mdb is on by default")
	}
	dc, ac := cfg.MDBConfig()
	want := mdb.Config{Address: mdb.AddrCashless1, Level: 3, Currency: mdb.CurrencyMYR, Scale: mdb.Scale{Factor: 1, Decimals: 2},
		MaxResponse: 60 * time.Second, VendMargin: 2 * time.Second, Serial: cfg.KioskID}
	if dc.Address != want.Address || dc.Level != want.Level || dc.Currency != want.Currency || dc.Scale != want.Scale ||
		dc.MaxResponse != want.MaxResponse || dc.VendMargin != want.VendMargin || dc.Serial != want.Serial ||
		dc.NoCashSale || dc.NoAlwaysIdle || dc.AutoSession || dc.Refunds || dc.Multivend {
		t.Errorf("device config %+v, want mdb's defaults %+v", dc, want)
	}
	if ac != (machine.MDBConfig{Provider: "mobypay", Mode: "card"}) {
		t.Errorf("adapter config %+v", ac)
	}
	if d := cfg.PaymentConfig(nil).AsyncVendTimeout; d != payment.DefaultAsyncVendTimeout {
		t.Errorf("mdb.vend_timeout %s, payment.DefaultAsyncVendTimeout %s", d, payment.DefaultAsyncVendTimeout)
	}
	long, err := Parse([]byte("kiosk_id = \"KIOSK-SHAH-ALAM-0042\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := long.MDBConfig(); dc.Serial != "AH-ALAM-0042" {
		t.Errorf("serial %q: want the kiosk id's last 12 characters", dc.Serial)
	}
}

// [mdb] maps onto a Qibixx board's reader: address, currency, always
// idle, decimals and the vend deadline, as the word-level device has
// them.
func TestMDBQibixxMapping(t *testing.T) {
	cfg, err := Parse([]byte("[mdb]\ntransport = \"qibixx\"\ndevice = \"/dev/ttyACM0\"\naddress = 0x60\ndecimal_places = 1\nmax_response_time = \"30s\"\nvend_margin = \"3s\"\nalways_idle = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QibixxConfig()
	if q.Address != mdb.AddrCashless2 || q.Currency != mdb.CurrencyMYR || q.Scale != (mdb.Scale{Factor: 1, Decimals: 1}) || q.AlwaysIdle ||
		q.MaxResponse != 30*time.Second || q.VendMargin != 3*time.Second {
		t.Errorf("qibixx config %+v", q)
	}
}
