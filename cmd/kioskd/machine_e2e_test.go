package main

// The machine seen through the whole daemon: what `kioskd run` does when
// the board cannot be opened or keeps crashing, and the maintenance
// commands that reach the devices. The machine adapter's own tests are
// in package machine.

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// A real board whose pins do not resolve: kioskd refuses to start and
// names the pin.
func TestRunRefusesUnresolvedPins(t *testing.T) {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "arm64" {
		t.Skip("might be a real Pi")
	}
	dir := t.TempDir()
	cfg := writeTestConfig(t, dir, "[board]\nkind = \"rpi4\"\n")
	code, _, errs := kioskd(t, "", "run", "-config", cfg)
	if code != exitFail || !strings.Contains(errs, `relay pin \"GPIO17\" does not exist`) || !strings.Contains(errs, "no GPIO driver loaded") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
}

// The generic path is the one run takes: on a machine without GPIO
// character devices it refuses with the chardev reason, not the Pi's.
func TestRunRefusesGenericBoardWithoutChardev(t *testing.T) {
	if devs, _ := filepath.Glob("/dev/gpiochip*"); len(devs) > 0 {
		t.Skipf("GPIO character devices present: %v", devs)
	}
	dir := t.TempDir()
	cfg := writeTestConfig(t, dir, "[printer]\nenabled = false\n\n[board]\nkind = \"generic\"\nrelay_pin = \"gpiochip0:17\"\n"+
		"watchdog_device = \"/dev/watchdog\"\n")
	code, _, errs := kioskd(t, "", "run", "-config", cfg)
	want := `board generic: relay pin \"gpiochip0:17\" does not exist (no GPIO character devices (/dev/gpiochip*): is the kernel built with CONFIG_GPIO_CDEV?)`
	if code != exitFail || !strings.Contains(errs, want) {
		t.Fatalf("exit %d, want %d and %s\n%s", code, exitFail, want, errs)
	}
}

// Past the crash guard's threshold, a kioskd that cannot open its board
// waits before it exits, so that init does not restart it every second
// and fill the console; a stop request ends the wait at once.
func TestRunRefusalBacksOff(t *testing.T) {
	if devs, _ := filepath.Glob("/dev/gpiochip*"); len(devs) > 0 {
		t.Skipf("GPIO character devices present: %v", devs)
	}
	dir := t.TempDir()
	cfg := writeTestConfig(t, dir, "[printer]\nenabled = false\n\n[board]\nkind = \"generic\"\nrelay_pin = \"gpiochip0:17\"\n"+
		"watchdog_device = \"/dev/watchdog\"\n")
	var rec string
	for i := 3; i > 0; i-- {
		rec += time.Now().UTC().Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano) + testRecordTail() + "\n"
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "restarts"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	d := spawnDaemon(t, cfg)
	if l := d.waitLog("the board cannot be opened: waiting before exiting"); !strings.Contains(l, "wait=5s") {
		t.Fatalf("refusal wait %q, want 5s", l)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	// Well inside the 5 s wait: the signal ended it.
	select {
	case <-d.exited:
		var ee *exec.ExitError
		if !errors.As(d.waitErr, &ee) || ee.ExitCode() != exitFail {
			t.Fatalf("exit %v, want %d: the board was still not opened", d.waitErr, exitFail)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("SIGTERM did not end the refusal wait")
	}
}

// The restart record across real daemon lives: SIGKILL leaves the start
// recorded, a clean stop (SIGTERM) clears it, and a crash loop makes
// kioskd wait with the fault LED before it starts anything.
func TestCrashLoopAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	dir := t.TempDir()
	cfg := writeTestConfig(t, dir, "")
	record := filepath.Join(dir, "data", "restarts")
	d := startDaemon(t, cfg)
	d.kill()
	if b, _ := os.ReadFile(record); strings.Count(string(b), "\n") != 1 {
		t.Fatalf("after SIGKILL the record holds %q", b)
	}
	d = startDaemon(t, cfg)
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("record survived a clean stop: %v", err)
	}
	// Three unclean starts just now, in this boot: the next start waits
	// first.
	now := time.Now().UTC()
	var rec string
	for i := 3; i > 0; i-- {
		rec += now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano) + testRecordTail() + "\n"
	}
	os.WriteFile(record, []byte(rec), 0o600)
	w := spawnDaemon(t, cfg)
	w.waitLog("crash loop: waiting before starting")
	// Asked to stop while it waits, it stops without starting anything.
	w.cmd.Process.Signal(syscall.SIGTERM)
	<-w.exited
	if strings.Contains(w.logText(), "kioskd started") {
		t.Errorf("started during the crash-loop wait:\n%s", w.logText())
	}
	if w.waitErr != nil {
		t.Fatalf("stop during the wait: %v", w.waitErr)
	}
}

func TestSelftestPairAndReceipt(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	k := startKiosk(t)
	code, out, errs := kioskd(t, "", "selftest", "-config", k.cfgPath)
	if code != exitOK || strings.Count(out, "pass ") != 4 {
		t.Fatalf("selftest: exit %d\n%s%s", code, out, errs)
	}
	waitSim(t, k, "receipts.txt", "kioskd selftest")
	if k.pulses(t) != 0 {
		t.Fatal("selftest pulsed the relay without -relay")
	}
	if code, out, _ := kioskd(t, "", "selftest", "-relay", "-config", k.cfgPath); code != exitOK || !strings.Contains(out, "pass relay") {
		t.Fatalf("selftest -relay: exit %d\n%s", code, out)
	}
	code, out, errs = kioskd(t, "", "pair", "-print", "-config", k.cfgPath)
	if code != exitOK || !strings.Contains(out, "Connect the POS to "+k.pos) || !strings.Contains(out, "█") {
		t.Fatalf("pair: exit %d\n%s%s", code, out, errs)
	}
	waitSim(t, k, "receipts.txt", "Connect to "+k.pos)

	k.sim(t, possim.Approve)
	code, out, _ = kioskd(t, "", "pay", "-amount", "7.50", "-json", "-config", k.cfgPath)
	var tx payment.Txn
	if code != exitOK || json.Unmarshal([]byte(out), &tx) != nil {
		t.Fatalf("pay: %d %s", code, out)
	}
	receipt := waitSim(t, k, "receipts.txt", tx.ID)
	for _, want := range []string{"RM 7.50", "APPROVED", "KIOSK-T", tx.POSTransactionID} {
		if !strings.Contains(receipt, want) {
			t.Errorf("receipt lacks %q:\n%s", want, receipt)
		}
	}
	_, st, _ := kioskd(t, "", "status", "-json", "-config", k.cfgPath)
	if !strings.Contains(st, `"pulses":2`) || !strings.Contains(st, `"state":"ok"`) {
		t.Errorf("status after a vend and a selftest pulse:\n%s", st)
	}
}

func TestPairWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTestConfig(t, dir, "")
	code, out, _ := kioskd(t, "", "pair", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "Connect the POS to 127.0.0.1:0") {
		t.Fatalf("pair without daemon: %d\n%s", code, out)
	}
}
