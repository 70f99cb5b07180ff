package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The health gate's decisions on the host, without a board (these run
// without -vm, in make test): fake kioskd, rauc and reboot commands that
// log their arguments. HEALTH_POLL=0 and HEALTH_DEADLINE=0 or large make
// the gate's loops decide on answers, not on time.

const gatePath = "../../buildroot/board/kiosk/rootfs-overlay/usr/sbin/kioskd-health-gate"

// gateRun runs the gate with fakes, each a sh body in which $n is the
// number of that fake's calls so far, this one included: health answers
// `kioskd health -min-up`, healthJSON `kioskd health -json` (one fake
// kioskd: $n counts both), markGood `rauc status mark-good`. It returns
// the calls made, one per line ("kioskd ARGS", "rauc ARGS", "reboot"),
// and the gate's output.
func gateRun(t *testing.T, deadline, health, healthJSON, markGood string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		script := "#!/bin/sh\necho \"" + name + " $*\" >>" + log + "\n" +
			"n=$(grep -c '^" + name + " ' " + log + ")\n" + body + "\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kioskd := write("kioskd", `case "$1 $2" in
"health -min-up") `+health+` ;;
"health -json") `+healthJSON+` ;;
esac
exit 1`)
	rauc := write("rauc", markGood)
	reboot := write("reboot", "exit 0")
	defaults := filepath.Join(dir, "defaults")
	if err := os.WriteFile(defaults, []byte("HEALTH_MIN_UP=10\nHEALTH_DEADLINE="+deadline+"\nHEALTH_POLL=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", gatePath)
	cmd.Env = append(os.Environ(), "KIOSKD="+kioskd, "RAUC="+rauc, "REBOOT="+reboot, "KIOSKD_HEALTH_GATE_DEFAULTS="+defaults)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gate: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	return strings.TrimSpace(string(calls)), string(out)
}

func TestHealthGate(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		// Unhealthy twice (up less than HEALTH_MIN_UP), then healthy:
		// marked good, never rebooted.
		calls, out := gateRun(t, "600", `[ "$n" -ge 3 ] && exit 0`, "", "exit 0")
		want := "kioskd health -min-up 10s\nkioskd health -min-up 10s\nkioskd health -min-up 10s\nrauc status mark-good"
		if calls != want {
			t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
		}
	})
	t.Run("mark-good fails", func(t *testing.T) {
		// rauc's service not up yet: the gate asks again.
		calls, out := gateRun(t, "600", "exit 0", "", `[ "$n" -ge 2 ] && exit 0; echo no service; exit 1`)
		if strings.Count(calls, "rauc status mark-good") != 2 || strings.Contains(calls, "reboot") {
			t.Errorf("calls:\n%s\nwant mark-good twice, no reboot; output:\n%s", calls, out)
		}
	})
	t.Run("never healthy, busy", func(t *testing.T) {
		// Past the deadline, the reboot waits while a payment or vend is
		// in progress, and comes once kioskd says it is idle.
		calls, out := gateRun(t, "0", "exit 1",
			`[ "$n" -ge 4 ] && { echo '{"healthy": false, "busy": false}'; exit 1; }; echo '{"healthy":false,"busy":true}'; exit 1`,
			"exit 0")
		want := "kioskd health -min-up 10s\nkioskd health -json\nkioskd health -json\nkioskd health -json\nreboot"
		if calls != want {
			t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
		}
	})
	t.Run("never healthy, busy, kioskd's JSON", func(t *testing.T) {
		// The answer as kioskd health -json writes it (encoding/json, no
		// blanks, checks before busy, a detail that names busy): busy
		// holds the reboot until it is false.
		j := `{"healthy":false,"up_s":4,"min_up_s":10,"version":"1.5.0","slot":"B","checks":[{"name":"uptime","ok":false,"detail":"up 4s, not \"busy\":true yet"}],"busy":%s}`
		calls, out := gateRun(t, "0", "exit 1",
			`[ "$n" -ge 3 ] && { echo '`+fmt.Sprintf(j, "false")+`'; exit 1; }; echo '`+fmt.Sprintf(j, "true")+`'; exit 1`,
			"exit 0")
		want := "kioskd health -min-up 10s\nkioskd health -json\nkioskd health -json\nreboot"
		if calls != want {
			t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
		}
	})
	t.Run("never healthy, no busy field", func(t *testing.T) {
		// An answer that does not say busy does not hold the board in a
		// slot that is not healthy.
		calls, out := gateRun(t, "0", "exit 1", `echo 'kioskd: unexpected answer'; exit 1`, "exit 0")
		want := "kioskd health -min-up 10s\nkioskd health -json\nreboot"
		if calls != want {
			t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
		}
	})
	t.Run("never healthy, kioskd down", func(t *testing.T) {
		// No answer at all: nothing of kioskd's is in progress.
		calls, out := gateRun(t, "0", "exit 1", "exit 1", "exit 0")
		want := "kioskd health -min-up 10s\nkioskd health -json\nreboot"
		if calls != want {
			t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
		}
	})
}
