package machine

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCrashGuard(t *testing.T) {
	g := NewCrashGuard(t.TempDir(), "v1", "A")
	now := time.Unix(1795400000, 0)
	want := []time.Duration{0, 0, 0, 5 * time.Second, 10 * time.Second, 20 * time.Second}
	for i, w := range want {
		n, d, err := g.begin(now.Add(time.Duration(i) * time.Second))
		if err != nil || n != i || d != w {
			t.Fatalf("start %d: %d unclean before, wait %s, %v; want %d, %s", i, n, d, err, i, w)
		}
	}
	// The ceiling holds however long the loop goes on.
	for i := 0; i < 20; i++ {
		g.begin(now.Add(10 * time.Second))
	}
	if _, d, _ := g.begin(now.Add(11 * time.Second)); d != 5*time.Minute {
		t.Fatalf("wait %s, want the 5m ceiling", d)
	}
	// Starts older than the window are forgotten.
	if n, d, _ := g.begin(now.Add(20 * time.Minute)); n != 0 || d != 0 {
		t.Fatalf("after the window: %d, %s", n, d)
	}
	// A clean stop forgets everything.
	g.begin(now.Add(20*time.Minute + time.Second))
	if err := g.CleanStop(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := g.begin(now.Add(21 * time.Minute)); n != 0 {
		t.Fatalf("after a clean stop: %d", n)
	}
	// A damaged record does not stop the service.
	os.WriteFile(g.path, []byte("garbage\n\x00\n"), 0o600)
	if n, _, err := g.begin(now.Add(22 * time.Minute)); err != nil || n != 0 {
		t.Fatalf("damaged record: %d %v", n, err)
	}
	b, _ := os.ReadFile(g.path)
	if strings.Count(string(b), "\n") != 1 {
		t.Fatalf("record after repair:\n%s", b)
	}
}

// Unclean starts of an earlier boot (a power cut, a reset) do not count:
// the next boot sells at once, while a crash loop within one boot still
// backs off.
func TestCrashGuardCountsThisBootOnly(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1795400000, 0)
	before := NewCrashGuard(dir, "v1", "A")
	before.boot = "boot-1"
	for i := range 5 {
		before.begin(now.Add(time.Duration(i) * time.Second))
	}
	g := NewCrashGuard(dir, "v1", "A")
	g.boot = "boot-2"
	if n, d, err := g.begin(now.Add(10 * time.Second)); err != nil || n != 0 || d != 0 {
		t.Fatalf("first start of a new boot: %d unclean before, wait %s, %v; want 0, 0", n, d, err)
	}
	for i := 1; i < 3; i++ {
		g.begin(now.Add(time.Duration(10+i) * time.Second))
	}
	if n, d, _ := g.begin(now.Add(14 * time.Second)); n != 3 || d != 5*time.Second {
		t.Fatalf("fourth start in one boot: %d, %s; want 3, 5s", n, d)
	}
	// Records from before boot ids were kept are another boot's.
	os.WriteFile(g.path, []byte(now.UTC().Format(time.RFC3339Nano)+"\n"), 0o600)
	if n, _, _ := g.begin(now.Add(15 * time.Second)); n != 0 {
		t.Fatalf("a record without a boot id counted: %d", n)
	}
	if id := bootID(); runtime.GOOS == "linux" && len(id) != 36 {
		t.Errorf("boot id %q, want the kernel's uuid", id)
	}
}

// Issue 15: the starts of another version or slot do not count. A
// rolled-back update that crashed in a loop leaves a record full of its
// unclean starts; the old image booted again sells at once.
func TestCrashGuardCountsThisVersionAndSlotOnly(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1795400000, 0)
	for _, other := range []CrashGuard{NewCrashGuard(dir, "v2", "B"), NewCrashGuard(dir, "v2", "A"), NewCrashGuard(dir, "v1", "B")} {
		for i := range 5 {
			other.begin(now.Add(time.Duration(i) * time.Second))
		}
		g := NewCrashGuard(dir, "v1", "A")
		if n, d, err := g.begin(now.Add(10 * time.Second)); err != nil || n != 0 || d != 0 {
			t.Fatalf("after %s/%s's crash loop: %d unclean before, wait %s, %v; want 0, 0", other.version, other.slot, n, d, err)
		}
	}
	// The old format, "TIME BOOT_ID", of this very boot: ignored.
	g := NewCrashGuard(dir, "v1", "A")
	var rec string
	for i := range 5 {
		rec += now.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano) + " " + g.boot + "\n"
	}
	os.WriteFile(g.path, []byte(rec), 0o600)
	if n, _, _ := g.begin(now.Add(10 * time.Second)); n != 0 {
		t.Fatalf("old-format lines counted: %d", n)
	}
	// No slot and a version with a space still round-trip.
	g = NewCrashGuard(t.TempDir(), "dev build", "")
	for i := range 4 {
		g.begin(now.Add(time.Duration(i) * time.Second))
	}
	if n, d, _ := g.begin(now.Add(5 * time.Second)); n != 4 || d != 10*time.Second {
		t.Fatalf("without a slot: %d, %s; want 4, 10s", n, d)
	}
}
