package machine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/board"
	"github.com/kioskd/kioskd/board/sim"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/device/watchdog"
	"github.com/kioskd/kioskd/payment"
)

// A payment on the sim board's gpiotest pins: LEDs follow the service's
// events, the relay pulses once (recorded in vends.log), and faults show
// in red. The outcome's hold passes in synctest's fake time.
func TestFollowsAPayment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		relayPin := sim.Pins(m.board)["SIM_RELAY"]
		if !m.board.Sidecar.Levels()["SIM_RELAY"] {
			t.Fatal("active-low sim relay not high (off) at start")
		}
		check := func(step string, want led.Pattern) {
			t.Helper()
			if got := m.leds.Pattern(time.Now()); got != want {
				t.Fatalf("%s: LEDs show %s, want %s", step, got, want)
			}
		}
		check("boot", led.Disconnected)
		m.follow(payment.Event{POS: &payment.POSState{Provider: "mobypay", State: "connected"}})
		check("POS connected", led.Connected)
		tx := payment.Txn{ID: "TXN1795400000000", Mode: "card", Amount: 1250, State: payment.Acked, Vend: payment.VendNone}
		m.follow(payment.Event{Txn: &tx})
		check("acked", led.InProgress)

		start := time.Now()
		if err := m.Vend(context.Background(), tx, nil); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != cfg.Pulse {
			t.Errorf("vend took %s, want the %s pulse", took, cfg.Pulse)
		}
		relayPin.Lock()
		off := relayPin.L
		relayPin.Unlock()
		if st := m.relay.State(); st.Pulses != 1 || st.On || !bool(off) {
			t.Fatalf("relay after vend: %+v level %v", st, off)
		}
		log, _ := os.ReadFile(filepath.Join(cfg.DataDir, "sim", "vends.log"))
		if strings.Count(string(log), " on "+tx.ID+" 12.50\n") != 1 || strings.Count(string(log), " off "+tx.ID+"\n") != 1 {
			t.Fatalf("vends.log:\n%s", log)
		}
		tx.State, tx.Vend = payment.Approved, payment.VendReleased
		m.follow(payment.Event{Txn: &tx})
		check("approved", led.Approved)
		time.Sleep(4 * time.Second) // fake time: past the outcome's hold
		check("approved, after its hold", led.Connected)
		tx.State, tx.Vend = payment.Declined, payment.VendNone
		m.follow(payment.Event{Txn: &tx})
		check("declined", led.Declined)
		time.Sleep(4 * time.Second)

		m.fault("printer", errors.New("paper out"))
		check("printer fault", led.Fault)
		if st := m.State(); st.Faults["printer"] != "paper out" || len(st.Pins) != 4 || st.Board != "sim" || st.Relay.Pulses != 1 {
			t.Fatalf("state %+v", st)
		}
		m.fault("printer", nil)
		check("fault cleared", led.Connected)
	})
}

// A vend the sim board cannot record is not made: the relay stays off.
func TestVendRefusedWhenNotRecorded(t *testing.T) {
	cfg := testConfig(t)
	m := openSim(t, cfg, nil)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "sim"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Vend(context.Background(), payment.Txn{ID: "TXN1", Amount: 100}, nil); err == nil {
		t.Fatal("vend not recorded, yet made")
	}
	if st := m.relay.State(); st.Pulses != 0 {
		t.Fatalf("relay pulsed: %+v", st)
	}
}

// When the watchdog supervisor ends before the machine is told to stop
// (here: a second Run, which it refuses at once), stopping must still
// return. It used to wait forever on a nil channel. Each round runs
// until everything in the bubble is blocked, so the refusal has arrived
// by the time the fault is looked at.
func TestRunStopsAfterSupervisorEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		svc, j, stop := service(t, m, cfg.DataDir)
		defer stop()
		for round := range 2 {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx, svc, j) }()
			synctest.Wait()
			_, faulted := m.State().Faults["watchdog"]
			if faulted != (round == 1) {
				t.Fatalf("round %d: watchdog fault %v", round, faulted)
			}
			cancel()
			synctest.Wait()
			select {
			case <-done:
			default:
				t.Fatalf("round %d: Run did not return after cancel", round)
			}
		}
	})
}

// Run shows a board sidecar the machine's state once a second: on the
// sim board, data_dir/sim/board.json.
func TestRunSnapshotsTheBoard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		svc, j, stop := service(t, m, cfg.DataDir)
		defer stop()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx, svc, j) }()
		file := filepath.Join(cfg.DataDir, "sim", "board.json")
		synctest.Wait()
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("board.json before the first second: %v", err)
		}
		time.Sleep(snapshotEvery)
		synctest.Wait()
		b, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(b), `"board": "sim"`) || !strings.Contains(string(b), `"SIM_RELAY": true`) {
			t.Fatalf("board.json %s: %v", b, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A kioskd that stops between opening the machine and feeding the
// watchdog (a start-up error after Open) disarms it on Close; once the
// supervisor ran, the supervisor owns the close.
func TestCloseDisarmsAWatchdogNeverFed(t *testing.T) {
	m := openSim(t, testConfig(t), nil)
	fake := fakeWatchdog(t, m)
	m.Close()
	if !fake.MagicClosed() {
		t.Fatal("the watchdog is still armed after Close without a supervisor")
	}
}

// A generic board's watchdog was named in its config: a missing one is
// refused, naming the key and the path, where a Pi carries on with a fake.
func TestOpenWatchdogMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "watchdog")
	for _, kind := range []string{"generic", "rpi4"} {
		prof, err := board.Lookup(kind)
		if err != nil {
			t.Fatal(err)
		}
		prof.WatchdogDevice = missing
		dev, err := openWatchdog(prof, 15*time.Second, discard)
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
	if dev, err := openWatchdog(board.Profile{Kind: "sim"}, time.Second, discard); err != nil || dev.Timeout() != time.Second {
		t.Errorf("sim: %v %v", dev, err)
	}
}

// A real board whose pins do not resolve is refused, naming the pins,
// before the watchdog is armed.
func TestOpenRefusesUnresolvedPins(t *testing.T) {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "arm64" {
		t.Skip("might be a real Pi")
	}
	prof, err := board.Lookup("rpi4")
	if err != nil {
		t.Fatal(err)
	}
	prof.WatchdogDevice = filepath.Join(t.TempDir(), "watchdog") // would be opened, were the pins there
	m, err := Open(testConfig(t), prof, discard)
	if err == nil || m != nil || !strings.Contains(err.Error(), `board rpi4: relay pin "GPIO17" does not exist`) {
		t.Fatalf("opened %v: %v", m, err)
	}
}
