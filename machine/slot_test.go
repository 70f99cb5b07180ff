package machine

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseSlot(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "",
		"console=ttyAMA0 root=/dev/mmcblk0p2": "",
		"root=/dev/vda2 rauc.slot=A rootwait": "A",
		"rauc.slot=A rauc.slot=B\n":           "B",
		"rauc.slot= quiet":                    "",
		"rauc.slot=\x01bad":                   "",
		"xrauc.slot=A":                        "",
	} {
		if got := ParseSlot([]byte(in)); got != want {
			t.Errorf("ParseSlot(%q) = %q, want %q", in, got, want)
		}
	}
	p := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(p, []byte("rauc.slot=rootfs.1\n"), 0o600)
	if got := BootedSlot(p); got != "rootfs.1" {
		t.Errorf("BootedSlot = %q", got)
	}
	if got := BootedSlot(p + ".missing"); got != "" {
		t.Errorf("BootedSlot of a missing file = %q", got)
	}
}

func FuzzParseSlot(f *testing.F) {
	f.Add([]byte("root=/dev/vda2 rauc.slot=A rootwait"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := ParseSlot(b)
		if len(s) > 64 || !printable([]byte(s)) && s != "" {
			t.Fatalf("slot %q", s)
		}
	})
}
