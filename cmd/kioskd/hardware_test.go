package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

func simHardware(t *testing.T) (*hardware, string) {
	t.Helper()
	return openSimHardware(t, "[relay]\npulse = \"20ms\"\n")
}

// openSimHardware opens the sim board with a config of body over a fresh
// data_dir, which it returns.
func openSimHardware(t *testing.T, body string) (*hardware, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte("data_dir = \"" + dir + "\"\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := cfg.BoardProfile()
	if err != nil {
		t.Fatal(err)
	}
	hw, err := openHardware(cfg, prof, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return hw, dir
}

// A payment on the sim board's gpiotest pins: LEDs follow the service's
// events, the relay pulses once, and faults show in red.
func TestHardwareFollowsAPayment(t *testing.T) {
	hw, dir := simHardware(t)
	relayPin := hw.board.SimPins["SIM_RELAY"]
	if hw.board.Levels()["SIM_RELAY"] != true {
		t.Fatal("active-low sim relay not high (off) at start")
	}
	now := time.Now()
	check := func(step string, want led.Pattern) {
		t.Helper()
		if got := hw.leds.Pattern(time.Now()); got != want {
			t.Fatalf("%s: LEDs show %s, want %s", step, got, want)
		}
	}
	check("boot", led.Disconnected)
	hw.follow(payment.Event{POS: &payment.POSState{Provider: "mobypay", State: "connected"}})
	check("POS connected", led.Connected)
	tx := payment.Txn{ID: "TXN1795400000000", Mode: "card", Amount: 1250, State: payment.Acked, Vend: payment.VendNone}
	hw.follow(payment.Event{Txn: &tx})
	check("acked", led.InProgress)

	if err := hw.Vend(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	relayPin.Lock()
	off := relayPin.L
	relayPin.Unlock()
	if st := hw.relay.State(); st.Pulses != 1 || st.On || !bool(off) {
		t.Fatalf("relay after vend: %+v level %v", st, off)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "sim", "vends.log"))
	if strings.Count(string(log), " on "+tx.ID) != 1 || strings.Count(string(log), " off "+tx.ID) != 1 {
		t.Fatalf("vends.log:\n%s", log)
	}
	tx.State, tx.Vend = payment.Approved, payment.VendReleased
	hw.follow(payment.Event{Txn: &tx})
	check("approved", led.Approved)
	if hw.leds.Pattern(now.Add(4*time.Second)) != led.Connected {
		t.Fatal("approved shown past its hold")
	}
	tx.State, tx.Vend = payment.Declined, payment.VendNone
	hw.follow(payment.Event{Txn: &tx})
	check("declined", led.Declined)

	hw.fault("printer", errors.New("paper out"))
	check("printer fault", led.Fault)
	if st := hw.state(); st.Faults["printer"] != "paper out" || len(st.Pins) != 4 {
		t.Fatalf("state %+v", st)
	}
	hw.fault("printer", nil)
	if hw.leds.Pattern(now.Add(10*time.Second)) != led.Connected {
		t.Fatal("fault not cleared")
	}
}

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
		rec += time.Now().UTC().Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano) + " " + bootID() + "\n"
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

// A generic board's watchdog was named in its config: a missing one is
// refused, naming the key and the path, where a Pi carries on with a fake.
func TestOpenWatchdogMissing(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	missing := filepath.Join(t.TempDir(), "watchdog")
	for _, kind := range []string{"generic", "rpi4"} {
		dev, err := openWatchdog(board.Profile{Kind: kind, WatchdogDevice: missing}, 15*time.Second, log)
		if kind == "generic" {
			want := `board.watchdog_device: watchdog: open ` + missing + `: no such file or directory (board kind "generic" does not run without its watchdog)`
			if err == nil || err.Error() != want || dev != nil {
				t.Errorf("generic: %v, %v\nwant %s", dev, err, want)
			}
			continue
		}
		if _, fake := dev.(*watchdog.Fake); err != nil || !fake {
			t.Errorf("%s: %T %v, want the fake", kind, dev, err)
		}
	}
	if dev, err := openWatchdog(board.Profile{Kind: "sim"}, time.Second, log); err != nil || dev.Timeout() != time.Second {
		t.Errorf("sim: %v %v", dev, err)
	}
}

func readSim(t *testing.T, k *kiosk, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "data", "sim", name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitSim waits until a sim file contains want. The simulated printer
// writes from its own goroutine, after the printer driver returned.
func waitSim(t *testing.T, k *kiosk, name, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := readSim(t, k, name)
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q:\n%s", name, want, s)
		}
		runtime.Gosched()
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
	if pairText("10.0.0.5:8080") != "10.0.0.5" || pairText("10.0.0.5:9000") != "10.0.0.5:9000" {
		t.Fatal("pairText")
	}
}

// When the watchdog supervisor ends before the service is told to stop
// (here: a second Run, which it refuses at once), stopping must still
// return. It used to wait forever on a nil channel.
func TestHardwareRunStopsAfterSupervisorEnds(t *testing.T) {
	hw, dir := simHardware(t)
	j, err := payment.OpenJournal(filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	svc := payment.NewService(payment.Config{}, j, hw, hw)
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	go svc.Run(sctx)
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- hw.run(ctx, svc, j) }()
		if round == 1 {
			// Let the refused supervisor's result arrive first.
			deadline := time.Now().Add(10 * time.Second)
			for len(hw.state().Faults) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the second run never noticed its supervisor ended")
				}
				runtime.Gosched()
			}
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: hardware.run did not return after cancel", round)
		}
	}
	hw.Close()
}

// A kioskd that stops between opening the hardware and feeding the
// watchdog (a start-up error after openHardware) disarms it on Close;
// once the supervisor ran, the supervisor owns the close.
func TestHardwareCloseDisarmsAWatchdogNeverFed(t *testing.T) {
	hw, _ := simHardware(t)
	fake := hw.wdDev.(*watchdog.Fake)
	hw.Close()
	if !fake.MagicClosed() {
		t.Fatal("the watchdog is still armed after Close without a supervisor")
	}
}
