package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/board/sim"
	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/payment"
)

func pulsesConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.Pulses, cfg.PulseOn, cfg.PulseOff = true, 50*time.Millisecond, 50*time.Millisecond
	return cfg
}

// An RM 3.00 train on the sim board: 3 pulses of 50 ms, 50 ms apart,
// each handed to progress with the relay already released and before the
// next starts; vends.log shows each pulse and status counts them.
func TestVendsATrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pulsesConfig(t)
		m := openSim(t, cfg, nil)
		relayPin := sim.Pins(m.board)["SIM_RELAY"]
		tx := payment.Txn{ID: "TXN1795400000000", Amount: 300, State: payment.Approved, Vend: payment.VendReleasing, PulsesTotal: 3}
		start := time.Now()
		var seen []string
		err := m.Vend(context.Background(), tx, func(k int) error {
			relayPin.Lock()
			released := bool(relayPin.L) // active low: high is off
			relayPin.Unlock()
			seen = append(seen, fmt.Sprintf("%d@%s released=%v pulses=%d", k, time.Since(start), released, m.relay.State().Pulses))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := "[1@50ms released=true pulses=1 2@150ms released=true pulses=2 3@250ms released=true pulses=3]"; fmt.Sprint(seen) != want {
			t.Fatalf("progress %v, want %s", seen, want)
		}
		if took := time.Since(start); took != 250*time.Millisecond {
			t.Errorf("train took %s, want 3 on and 2 off", took)
		}
		log, _ := os.ReadFile(filepath.Join(cfg.DataDir, "sim", "vends.log"))
		for k := 1; k <= 3; k++ {
			if !strings.Contains(string(log), fmt.Sprintf(" on %s 3.00 pulse %d/3\n", tx.ID, k)) {
				t.Fatalf("vends.log lacks pulse %d:\n%s", k, log)
			}
		}
		if strings.Count(string(log), " off "+tx.ID+"\n") != 3 {
			t.Fatalf("vends.log:\n%s", log)
		}
		if st := m.State(); st.Relay.Pulses != 3 || st.Relay.On || len(st.Faults) != 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

// A pulse that cannot be journaled ends the train there, relay released
// and the vend fault on the red LED; a train the relay is not set up for
// is refused before the relay moves.
func TestTrainStopsAndFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openSim(t, pulsesConfig(t), nil)
		boom := errors.New("payment: pulse 2 of 5 not journaled: disk gone")
		tx := payment.Txn{ID: "TXN1", Amount: 500, PulsesTotal: 5}
		err := m.Vend(context.Background(), tx, func(k int) error {
			if k == 2 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("vend: %v", err)
		}
		if st := m.State(); st.Relay.Pulses != 2 || st.Relay.On || st.Faults["vend"] == "" || !m.board.Sidecar.Levels()["SIM_RELAY"] {
			t.Fatalf("after a stopped train: %+v", st)
		}
		if p := m.leds.Pattern(time.Now()); p != led.Fault {
			t.Fatalf("LEDs %s, want the fault", p)
		}
		tx.PulsesTotal = 0
		if err := m.Vend(context.Background(), tx, nil); err == nil || m.relay.State().Pulses != 2 {
			t.Fatalf("one-pulse vend in pulses mode: %v, %+v", err, m.relay.State())
		}
		one := openSim(t, testConfig(t), nil)
		if err := one.Vend(context.Background(), payment.Txn{ID: "TXN2", PulsesTotal: 3}, nil); err == nil || one.relay.State().Pulses != 0 {
			t.Fatalf("train on a one-pulse relay: %v, %+v", err, one.relay.State())
		}
	})
}

// The machine's train over a real journal, the disk lost at pulse k
// (the count of pulse k cannot be written, as after a power cut): opened
// again and recovered, the review says what is on record and the relay
// gave that or one more.
func TestTrainCrashAtEveryPulse(t *testing.T) {
	const n = 4
	for k := 1; k <= n; k++ {
		t.Run(fmt.Sprint("pulse", k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := pulsesConfig(t)
				m := openSim(t, cfg, nil)
				path := filepath.Join(cfg.DataDir, "journal.db")
				j, err := payment.OpenJournal(path)
				if err != nil {
					t.Fatal(err)
				}
				now := time.Now()
				tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: n * 100, State: payment.Approved}
				if err := j.Create(&tx, now); err != nil {
					t.Fatal(err)
				}
				tx, err = j.Update(tx.ID, now, nil, func(x *payment.Txn) error {
					x.Vend, x.PulsesTotal = payment.VendReleasing, n
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				err = m.Vend(context.Background(), tx, func(done int) error {
					if done == k {
						j.Close() // the power goes as pulse k ends
					}
					_, err := j.Update(tx.ID, time.Now(), nil, func(x *payment.Txn) error { x.PulsesDone = done; return nil })
					return err
				})
				if err == nil {
					t.Fatal("the train went on without its journal")
				}
				given := m.relay.State().Pulses
				if given != k {
					t.Fatalf("relay gave %d pulses, the journal went at %d", given, k)
				}
				j2, err := payment.OpenJournal(path)
				if err != nil {
					t.Fatal(err)
				}
				defer j2.Close()
				flagged, err := j2.Recover(time.Now())
				if err != nil || len(flagged) != 1 {
					t.Fatalf("recover: %v %+v", err, flagged)
				}
				got := flagged[0]
				if d := given - got.PulsesDone; d < 0 || d > 1 {
					t.Fatalf("relay %d, journal %d", given, got.PulsesDone)
				}
				want := fmt.Sprintf("vend_unknown: %d of %d pulses confirmed", k-1, n)
				if got.Vend != payment.VendUnknown || !strings.HasPrefix(got.Review, want) {
					t.Fatalf("recovered %+v, want %q", got, want)
				}
				if m.State().Faults["vend"] == "" {
					t.Fatal("vend fault not raised")
				}
			})
		})
	}
}
