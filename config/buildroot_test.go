package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Buildroot image installs buildroot/package/kioskd/kioskd.toml as
// /etc/kioskd/kioskd.toml, with the board kind filled in. A key renamed
// or a value tightened here must not leave the image with a config that
// kioskd refuses at boot.
func TestBuildrootImageConfig(t *testing.T) {
	const placeholder = "@KIOSKD_BOARD@"
	tmpl, err := os.ReadFile(filepath.Join("..", "buildroot", "package", "kioskd", "kioskd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(tmpl, []byte(placeholder)); n != 1 {
		t.Fatalf("kioskd.toml has %d %s placeholders, want 1", n, placeholder)
	}
	for _, kind := range []string{"rpi3", "rpi4", "rpi5"} {
		cfg, err := Parse(bytes.ReplaceAll(tmpl, []byte(placeholder), []byte(kind)))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if cfg.Board.Kind != kind {
			t.Errorf("%s: board.kind = %q", kind, cfg.Board.Kind)
		}
		// The image's root is read-only: everything kioskd writes is on
		// the data partition.
		for name, p := range map[string]string{"data_dir": cfg.DataDir, "control.socket": cfg.Control.Socket} {
			if !strings.HasPrefix(p, "/data/") {
				t.Errorf("%s: %s = %q, want it under /data", kind, name, p)
			}
		}
		// Never the public development secret on a kiosk.
		if cfg.POS.Secret != "" || !strings.HasPrefix(cfg.POS.SecretFile, "/data/") {
			t.Errorf("%s: pos secret %q, secret_file %q: want a secret_file under /data", kind, cfg.POS.Secret, cfg.POS.SecretFile)
		}
	}
}
