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
// kioskd: $n counts both), markGood `rauc status mark-good`. The booted
// slot is B (rauc.slot=B); B is on trial, as after an update wrote it.
// It returns the calls made, one per line ("kioskd ARGS", "rauc ARGS",
// "reboot"), and the gate's output.
func gateRun(t *testing.T, deadline, health, healthJSON, markGood string) (string, string) {
	t.Helper()
	calls, out, _ := gateRunTrial(t, "B", deadline, health, healthJSON, markGood)
	return calls, out
}

// gateRunTrial is gateRun with the trial record naming trial ("" for
// none); it also returns whether the record is there after the gate.
func gateRunTrial(t *testing.T, trial, deadline, health, healthJSON, markGood string) (string, string, bool) {
	t.Helper()
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	trialFile := filepath.Join(dir, "data", "kioskd-trial")
	if err := os.WriteFile(cmdline, []byte("console=ttyAMA0 root=/dev/mmcblk0p3 ro rauc.slot=B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if trial != "" {
		os.MkdirAll(filepath.Dir(trialFile), 0o755)
		if err := os.WriteFile(trialFile, []byte(trial+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
	cmd.Env = append(os.Environ(), "KIOSKD="+kioskd, "RAUC="+rauc, "REBOOT="+reboot, "KIOSKD_HEALTH_GATE_DEFAULTS="+defaults,
		"KIOSKD_CMDLINE="+cmdline, "KIOSKD_TRIAL_FILE="+trialFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gate: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	_, err = os.Stat(trialFile)
	return strings.TrimSpace(string(calls)), string(out), err == nil
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
	t.Run("healthy on trial", func(t *testing.T) {
		// The commit ends the trial: the record goes.
		calls, out, kept := gateRunTrial(t, "B", "600", "exit 0", "", "exit 0")
		if calls != "kioskd health -min-up 10s\nrauc status mark-good" || kept || !strings.Contains(out, "its trial over") {
			t.Errorf("calls:\n%s\ntrial record kept: %v; output:\n%s", calls, kept, out)
		}
	})
	for name, trial := range map[string]string{
		"committed":              "",  // a new card, or a trial committed before
		"committed, rolled back": "A", // the trial was of the other slot
	} {
		t.Run(name+", not healthy by the deadline", func(t *testing.T) {
			// A slot proven before is not rebooted (a reboot only uses
			// up its tries): the gate says so once, keeps asking, and
			// marks it good once kioskd is healthy.
			calls, out, kept := gateRunTrial(t, trial, "0", `[ "$n" -ge 4 ] && exit 0; exit 1`, `echo '{"busy":false}'; exit 1`, "exit 0")
			want := "kioskd health -min-up 10s\nkioskd health -min-up 10s\nkioskd health -min-up 10s\nkioskd health -min-up 10s\nrauc status mark-good"
			if calls != want || strings.Count(out, "not rebooting") != 1 {
				t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", calls, want, out)
			}
			if kept != (trial != "") {
				t.Errorf("trial record of slot %q kept: %v", trial, kept)
			}
		})
	}
}

// The pre-install handler names the root slot RAUC is about to write.
func TestRaucPreInstall(t *testing.T) {
	trialFile := filepath.Join(t.TempDir(), "rauc", "kioskd-trial")
	cmd := exec.Command("sh", "../../buildroot/board/kiosk/rootfs-overlay/usr/sbin/kioskd-rauc-pre-install")
	cmd.Env = append(os.Environ(), "KIOSKD_TRIAL_FILE="+trialFile, "RAUC_SLOTS=0 1 2 3", "RAUC_TARGET_SLOTS=1 3",
		"RAUC_SLOT_CLASS_0=rootfs", "RAUC_SLOT_BOOTNAME_0=A", "RAUC_SLOT_CLASS_1=rootfs", "RAUC_SLOT_BOOTNAME_1=B",
		"RAUC_SLOT_CLASS_2=appfs", "RAUC_SLOT_BOOTNAME_2=", "RAUC_SLOT_CLASS_3=appfs", "RAUC_SLOT_BOOTNAME_3=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("handler: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(trialFile); err != nil || string(b) != "B\n" {
		t.Errorf("trial record %q (%v), want B; output:\n%s", b, err, out)
	}
}
