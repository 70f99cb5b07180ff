package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Broker: "mqtt://127.0.0.1:1883", KioskID: "k1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		cfg  Config
		want []string // every key the error must name
	}{
		{Config{}, []string{"broker: missing", "kiosk_id: missing"}},
		{Config{Broker: "http://h:1", KioskID: "k"}, []string{"scheme must be mqtt or mqtts"}},
		{Config{Broker: "mqtt://h", KioskID: "k"}, []string{"needs host:port"}},
		{Config{Broker: "mqtt://u:p@h:1", KioskID: "k"}, []string{"only mqtt(s)://host:port"}},
		{Config{Broker: "mqtt://h:1", KioskID: "a/b"}, []string{"kiosk_id \"a/b\""}},
		{Config{Broker: "mqtt://h:1", KioskID: "k", CAFile: "ca", CertFile: "c"},
			[]string{"ca_file: TLS files need", "cert_file: TLS files need", "cert_file and key_file"}},
		{Config{Broker: "mqtts://h:1", KioskID: "k", Username: "u"}, []string{"username and password_file"}},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: accepted", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", tc.cfg, err, w)
			}
		}
	}
}

func TestConfigLoadReportsFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cr, err := (&Config{Broker: "mqtt://h:1", KioskID: "k", Username: "u", PasswordFile: pw}).Load()
	if err != nil || string(cr.Password) != "s3cret" || cr.TLS != nil {
		t.Fatalf("Load = %+v, %v; want password s3cret, no TLS", cr, err)
	}
	_, err = (&Config{Broker: "mqtts://h:1", KioskID: "k", Username: "u", PasswordFile: filepath.Join(dir, "nope"),
		CAFile: filepath.Join(dir, "ca"), CertFile: pw, KeyFile: pw}).Load()
	for _, w := range []string{"fleet.password_file", "fleet.ca_file", "fleet.cert_file, fleet.key_file"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Load error %v lacks %q", err, w)
		}
	}
}
