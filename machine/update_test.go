package machine

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePending(t *testing.T, dir string, p PendingUpdate) {
	t.Helper()
	b, _ := json.Marshal(p)
	if err := os.WriteFile(filepath.Join(dir, PendingUpdateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSettleUpdate(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Unix(1795400000, 0).UTC()
	dir := t.TempDir()
	// Booted the bundle's version: it took, nothing is recorded.
	writePending(t, dir, PendingUpdate{FromVersion: "1.0", FromSlot: "A", BundleVersion: "2.0", At: now})
	if f := SettleUpdate(dir, "2.0", "B", now, log); f != nil {
		t.Fatalf("booted update recorded as failed: %+v", f)
	}
	if _, err := os.Stat(filepath.Join(dir, PendingUpdateFile)); !os.IsNotExist(err) {
		t.Fatalf("pending record kept: %v", err)
	}
	// Back on the version and slot it left: rolled back.
	writePending(t, dir, PendingUpdate{FromVersion: "1.0", FromSlot: "A", BundleVersion: "2.0", At: now})
	f := SettleUpdate(dir, "1.0", "A", now, log)
	if f == nil || f.Version != "2.0" || f.From != "1.0" || f.FromSlot != "A" || !f.At.Equal(now) {
		t.Fatalf("rolled back: %+v", f)
	}
	// The record lasts across starts with no pending update.
	if f := SettleUpdate(dir, "1.0", "A", now.Add(time.Hour), log); f == nil || f.Version != "2.0" {
		t.Fatalf("failed record lost: %+v", f)
	}
	// An update of that version that boots later clears it.
	writePending(t, dir, PendingUpdate{FromVersion: "1.0", FromSlot: "A", BundleVersion: "2.0", At: now})
	if f := SettleUpdate(dir, "2.0", "B", now, log); f != nil {
		t.Fatalf("failed record survived the version booting: %+v", f)
	}
	// An unreadable pending record is dropped, not fatal.
	os.WriteFile(filepath.Join(dir, PendingUpdateFile), []byte("{"), 0o600)
	if f := SettleUpdate(dir, "1.0", "A", now, log); f != nil {
		t.Fatalf("garbage: %+v", f)
	}
}

func FuzzParseBundleVersion(f *testing.F) {
	f.Add([]byte(`{"compatible":"kioskd-rpi4","version":"1.5.0","description":"x","hooks":[]}`))
	f.Add([]byte(`{"version":12}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseBundleVersion(b)
		if err != nil && v != "" {
			t.Fatalf("version %q with error %v", v, err)
		}
		if len(v) > 128 {
			t.Fatalf("version of %d bytes", len(v))
		}
	})
}

func FuzzParseUpdateFailure(f *testing.F) {
	f.Add([]byte(`{"version":"2.0","at":"2026-12-01T09:14:05Z","from":"1.0","from_slot":"A"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUpdateFailure(b)
		if err == nil && (u == nil || u.Version == "") {
			t.Fatalf("accepted %q as %+v", b, u)
		}
	})
}
