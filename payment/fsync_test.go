package payment

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// fsyncChild, set in the environment, makes TestFsyncsPerPayment the
// child that strace watches: it makes that many payments and exits.
const fsyncChild = "KIOSKD_FSYNC_CHILD"

var syncCall = regexp.MustCompile(`(?m)\b(fsync|fdatasync|sync_file_range|syncfs|msync)\(`)

// TestFsyncsPerPayment counts, with strace, the calls that force the
// journal to the disk for one card payment through the POS simulator
// over loopback TCP: two fdatasyncs per commit (bbolt writes the data
// pages, syncs, writes the meta page, syncs), three commits. The
// payments run in a child process of this test binary, twice (5 and 25
// payments), and the difference divided by 20 is the figure: the start's
// own syncs cancel out. Skipped without strace (.ci/run installs it).
func TestFsyncsPerPayment(t *testing.T) {
	if n := os.Getenv(fsyncChild); n != "" {
		k, err := strconv.Atoi(n)
		if err != nil {
			t.Fatal(err)
		}
		pay, _ := roundTrip(t, t.TempDir(), nil, nil)
		for range k {
			pay()
		}
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("no strace")
	}
	count := func(k int) int {
		out := filepath.Join(t.TempDir(), "trace")
		cmd := exec.Command(strace, "-f", "-qq", "-o", out, "-e", "trace=fsync,fdatasync,sync_file_range,syncfs,msync",
			os.Args[0], "-test.run", "^TestFsyncsPerPayment$", "-test.count", "1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fsyncChild, k))
		if b, err := cmd.CombinedOutput(); err != nil {
			if len(b) > 0 && regexp.MustCompile(`ptrace|Operation not permitted`).Match(b) {
				t.Skipf("strace cannot trace here: %s", b)
			}
			t.Fatalf("strace: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return len(syncCall.FindAll(b, -1))
	}
	few, many := count(5), count(25)
	per := float64(many-few) / 20
	t.Logf("fsync-class calls: %d for 5 payments, %d for 25: %.2f per payment", few, many, per)
	// Three commits of two syncs; a payment that grows the file adds one
	// more now and then (bbolt syncs the file after growing it).
	if per < 6 || per > 6.5 {
		t.Errorf("%.2f fsync-class calls per payment, want 6 (three commits)", per)
	}
}
