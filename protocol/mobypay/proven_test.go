package mobypay

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestLastProvenSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	if a := LoadLastProven(dir); a.IsValid() {
		t.Fatalf("nothing saved yet: %v", a)
	}
	for _, s := range []string{"192.168.1.20", "fe80::1"} {
		want := netip.MustParseAddr(s)
		if err := SaveLastProven(dir, want); err != nil {
			t.Fatal(err)
		}
		if got := LoadLastProven(dir); got != want {
			t.Fatalf("loaded %v, want %v", got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, LastProvenFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, LastProvenFile), []byte("not an address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a := LoadLastProven(dir); a.IsValid() {
		t.Errorf("a garbled file is no host, got %v", a)
	}
	if err := SaveLastProven(filepath.Join(dir, "missing"), netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("saved into a directory that does not exist")
	}
}
