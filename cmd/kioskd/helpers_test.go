package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/machine"
)

type payResult struct {
	code           int
	stdout, stderr string
}

// startPay runs kioskd pay in-process in the background.
func startPay(args ...string) <-chan payResult {
	ch := make(chan payResult, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(append([]string{"pay"}, args...), strings.NewReader(""), &out, &errb)
		ch <- payResult{code, out.String(), errb.String()}
	}()
	return ch
}

func waitPay(t *testing.T, ch <-chan payResult) payResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("kioskd pay did not exit")
	}
	return payResult{}
}

func (r payResult) check(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d", r.code, code)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// testBootID is the kernel's id of this boot, as the crash guard records
// it, so that a test can leave a record of unclean starts behind.
func testBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// testRecordTail is what follows the time on a restart record's line of
// a daemon started by these tests: this boot, this version (the test
// binary's, "dev") and the slot on this machine's /proc/cmdline.
func testRecordTail() string {
	slot := machine.BootedSlot("/proc/cmdline")
	if slot == "" {
		slot = "-"
	}
	boot := testBootID()
	if boot == "" {
		boot = "-"
	}
	return " " + boot + " " + version + " " + slot
}

func readSim(t *testing.T, k *kiosk, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "data", "sim", name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitSim waits until a file of the sim board contains want. It polls:
// the daemon runs behind serve with the sim board built inside it, and
// no seam hands the simulated printer's pages out; the file is the
// interface README documents. The ticker bounds the work and the
// deadline the wait (board/sim's own tests wait on the page itself).
func waitSim(t *testing.T, k *kiosk, name, want string) string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s := readSim(t, k, name)
		if strings.Contains(s, want) {
			return s
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s never contained %q:\n%s", name, want, s)
		case <-tick.C:
		}
	}
}
