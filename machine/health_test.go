package machine

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

func TestHealthChecks(t *testing.T) {
	j, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	good := control.Hardware{Watchdog: control.Watchdog{Running: true, Feeding: true, Feeds: 3,
		Heartbeats: []control.Heartbeat{{Name: "payment-loop", MaxSilence: 3 * time.Second, Age: time.Second, Healthy: true}}}}
	verdict := func(hw control.Hardware, up time.Duration) (bool, string) {
		ok, why := true, ""
		for _, c := range HealthChecks(j, hw, up, time.Minute) {
			if !c.OK {
				ok, why = false, why+c.Name+": "+c.Detail+"; "
			}
		}
		return ok, why
	}
	if ok, why := verdict(good, 2*time.Minute); !ok {
		t.Fatalf("healthy board judged unhealthy: %s", why)
	}
	if ok, why := verdict(good, 30*time.Second); ok || !strings.Contains(why, "uptime: up 30s, less than 1m0s") {
		t.Errorf("short uptime: %v %q", ok, why)
	}
	stale := good
	stale.Watchdog.Heartbeats = []control.Heartbeat{{Name: "journal", MaxSilence: 3 * time.Second, Age: 5 * time.Second}}
	if ok, why := verdict(stale, 2*time.Minute); ok || !strings.Contains(why, "stale heartbeat: journal") {
		t.Errorf("stale heartbeat: %v %q", ok, why)
	}
	unfed := good
	unfed.Watchdog.Feeding, unfed.Watchdog.Stalled = false, "journal"
	if ok, why := verdict(unfed, 2*time.Minute); ok || !strings.Contains(why, "stalled: journal") {
		t.Errorf("stalled: %v %q", ok, why)
	}
	pin := good
	pin.LEDs.LastError = "led: GPIO22: write failed"
	if ok, why := verdict(pin, 2*time.Minute); ok || !strings.Contains(why, "pins: leds: led: GPIO22") {
		t.Errorf("pin fault: %v %q", ok, why)
	}
	j.Close()
	if ok, why := verdict(good, 2*time.Minute); ok || !strings.Contains(why, "journal: read failed") {
		t.Errorf("closed journal: %v %q", ok, why)
	}
}
