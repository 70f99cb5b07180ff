package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// updateRig is a fake rauc and a fake reboot, written into a temp dir:
// rauc info prints a manifest with version, rauc install records what it
// was given (and the relay's log as it was then) and exits with fail;
// reboot leaves a marker.
type updateRig struct {
	dir, bundle string
}

func newUpdateRig(t *testing.T, bundleVersion string, fail bool) *updateRig {
	t.Helper()
	r := &updateRig{dir: t.TempDir()}
	r.bundle = filepath.Join(r.dir, "update.raucb")
	if err := os.WriteFile(r.bundle, []byte("bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	exit := 0
	if fail {
		exit = 1
	}
	script := fmt.Sprintf(`#!/bin/sh
d=%q
case "$1" in
info)
	[ "$2" = "--output-format=json" ] || exit 2
	printf '{"compatible":"kioskd-test","version":"%s","description":"test"}\n'
	;;
install)
	echo "$2" > "$d/installed"
	cp "$KIOSK_VENDS" "$d/vends-at-install" 2>/dev/null
	echo "installing"
	echo " 50%% Copying image"
	if [ %d -ne 0 ]; then echo "LastError: Failed to check bundle: signature verification failed" >&2; exit 1; fi
	echo "100%% Installing done."
	;;
*) exit 2 ;;
esac
`, r.dir, bundleVersion, exit)
	if err := os.WriteFile(filepath.Join(r.dir, "rauc"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "cmdline"), []byte("console=ttyAMA0 root=/dev/vda2 rauc.slot=A rootwait\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *updateRig) config() string {
	return fmt.Sprintf("[update]\nrauc = %q\nreboot = [\"sh\", \"-c\", \"echo rebooted > %s/rebooted\"]\ncmdline = %q\n",
		filepath.Join(r.dir, "rauc"), r.dir, filepath.Join(r.dir, "cmdline"))
}

func (r *updateRig) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	return string(b)
}

func (k *kiosk) client(t *testing.T) *control.Client {
	t.Helper()
	cf := clientFlags{config: k.cfgPath}
	c, err := cf.client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An update while idle: rauc is asked for the bundle's version, installs
// it, the pending record is written and the reboot command runs.
func TestUpdateWhileIdle(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config()+testButton, nil)
	code, out, errs := kioskd(t, "", "update", "-config", k.cfgPath, r.bundle)
	if code != exitOK {
		t.Fatalf("update exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "rebooting: sh -c") {
		t.Errorf("update's output lacks the reboot:\n%s", out)
	}
	if got := strings.TrimSpace(r.file("installed")); got != r.bundle {
		t.Errorf("rauc install got %q, want %q", got, r.bundle)
	}
	if r.file("rebooted") != "rebooted\n" {
		t.Error("the reboot command did not run")
	}
	b, err := os.ReadFile(filepath.Join(k.dir, "data", machine.PendingUpdateFile))
	if err != nil {
		t.Fatal(err)
	}
	var p machine.PendingUpdate
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.FromVersion != version || p.FromSlot != "A" || p.Bundle != r.bundle || p.BundleVersion != "2.0.0" || p.At.IsZero() {
		t.Errorf("pending record %+v", p)
	}
	st, err := k.client(t).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Slot != "A" || st.Update.State != control.UpdateRebooting || st.Hardware.LEDs.Pattern != "updating" {
		t.Errorf("status slot %q update %+v leds %q", st.Slot, st.Update, st.Hardware.LEDs.Pattern)
	}
	// rauc's lines reached the log.
	if _, logs, _ := kioskd(t, "", "logs", "-config", k.cfgPath); !strings.Contains(logs, "Installing done") {
		t.Errorf("rauc's output is not in the log:\n%s", logs)
	}
	// Still not selling: the reboot is under way.
	_, _, err = k.client(t).Pay(context.Background(), control.PayRequest{Amount: "1.00", Mode: "card"}, "")
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Code != 503 || !strings.Contains(ae.Msg, "updating: installing "+r.bundle) {
		t.Errorf("payment while rebooting: %v", err)
	}
	// A price button's press is refused the same way: every sale starts
	// in one place.
	if code, out, errs := kioskd(t, "", "sim", "press", "-config", k.cfgPath, "coffee"); code != exitOK {
		t.Fatalf("sim press: exit %d %s %s", code, out, errs)
	}
	st, _ = k.client(t).Status(context.Background())
	if b := st.Hardware.Buttons; len(b) != 1 || !strings.Contains(b[0].LastError, "updating: installing "+r.bundle) || b[0].LastTxn != "" {
		t.Errorf("button pressed while updating: %+v", b)
	}
	// A second update is refused while one holds the kiosk.
	if code, _, errs := kioskd(t, "", "update", "-config", k.cfgPath, r.bundle); code != exitFail || !strings.Contains(errs, "already running") {
		t.Errorf("second update: exit %d %s", code, errs)
	}
}

// An update asked for during a payment waits for it: the payment ends
// normally with its vend, new payments meanwhile get 503 with the
// reason, and only then does rauc install run.
func TestUpdateWaitsForThePaymentInProgress(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config(), nil)
	t.Setenv("KIOSK_VENDS", filepath.Join(k.dir, "data", "sim", "vends.log"))
	k.sim(t, possim.Slow) // the result 300 ms after the ack
	result, id := k.payAcked(t, "-amount", "1.00")
	c := k.client(t)
	u, err := c.Update(context.Background(), control.UpdateRequest{Bundle: r.bundle})
	if err != nil {
		t.Fatal(err)
	}
	if u.State != control.UpdateWaiting || u.BundleVersion != "2.0.0" {
		t.Errorf("update as it started: %+v", u)
	}
	_, _, err = c.Pay(context.Background(), control.PayRequest{Amount: "1.00", Mode: "card"}, "")
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Code != 503 || !strings.Contains(ae.Msg, "updating: installing "+r.bundle) {
		t.Errorf("new payment while updating: %v", err)
	}
	tx := <-result
	if tx.ID != id || tx.State != payment.Approved || tx.Vend != payment.VendReleased {
		t.Fatalf("the payment in progress: %+v", tx)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Update.State == control.UpdateRebooting {
			break
		}
		if st.Update.State == control.UpdateFailed || time.Now().After(deadline) {
			t.Fatalf("update %+v", st.Update)
		}
		<-time.After(20 * time.Millisecond)
	}
	if !strings.Contains(r.file("vends-at-install"), id) {
		t.Errorf("rauc install ran before the payment's vend: relay log then %q", r.file("vends-at-install"))
	}
}

// A payment that cannot end within -wait abandons the update, and
// selling resumes.
func TestUpdateAbandonedWhenThePaymentDoesNotEnd(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config(), nil)
	k.sim(t, possim.AckOnly)
	result, id := k.payAcked(t, "-amount", "1.00")
	code, _, errs := kioskd(t, "", "update", "-config", k.cfgPath, "-wait", "100ms", r.bundle)
	if want := "payment " + id + " still in progress after 100ms; not updating"; code != exitFail || !strings.Contains(errs, want) {
		t.Errorf("update exit %d, stderr %q; want 1 and %q", code, errs, want)
	}
	if r.file("installed") != "" {
		t.Error("rauc install ran")
	}
	<-result
	if _, _, err := k.client(t).Pay(context.Background(), control.PayRequest{Amount: "1.00", Mode: "card"}, ""); err != nil {
		t.Errorf("selling did not resume: %v", err)
	}
}

// rauc failing: the CLI says rauc's last line, and selling resumes.
func TestUpdateRaucFails(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", true)
	k := startKioskConfig(t, r.config(), nil)
	code, _, errs := kioskd(t, "", "update", "-config", k.cfgPath, r.bundle)
	if code != exitFail || !strings.Contains(errs, "rauc install failed: LastError: Failed to check bundle: signature verification failed") {
		t.Errorf("update exit %d, stderr %q", code, errs)
	}
	if r.file("rebooted") != "" {
		t.Error("rebooted after a failed install")
	}
	if _, err := os.Stat(filepath.Join(k.dir, "data", machine.PendingUpdateFile)); !os.IsNotExist(err) {
		t.Errorf("pending record after a failed install: %v", err)
	}
	st, _ := k.client(t).Status(context.Background())
	if st.Update.State != control.UpdateFailed || st.Hardware.LEDs.Pattern == "updating" {
		t.Errorf("after the failure: update %+v leds %q", st.Update, st.Hardware.LEDs.Pattern)
	}
	k.sim(t, possim.Approve)
	if code, out, errs := kioskd(t, "", "pay", "-config", k.cfgPath, "-amount", "1.00"); code != exitOK {
		t.Errorf("selling did not resume: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := kioskd(t, "", "update", "-config", k.cfgPath, "bundle.raucb"); code != exitFail || !strings.Contains(errs, "absolute path") {
		t.Errorf("relative bundle: exit %d %s", code, errs)
	}
}

// A start with a pending update whose version and slot did not change:
// the update was rolled back. It is recorded, shown in status, and a
// bundle of that version is refused unless -force.
func TestUpdateRolledBackIsRecorded(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config(), func(dataDir string) {
		os.MkdirAll(dataDir, 0o750)
		p := machine.PendingUpdate{FromVersion: version, FromSlot: "A", Bundle: "/data/update.raucb", BundleVersion: "2.0.0", At: time.Now()}
		b, _ := json.Marshal(p)
		if err := os.WriteFile(filepath.Join(dataDir, machine.PendingUpdateFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(filepath.Join(k.dir, "data", machine.PendingUpdateFile)); !os.IsNotExist(err) {
		t.Errorf("the pending record is still there: %v", err)
	}
	_, out, _ := kioskd(t, "", "status", "-config", k.cfgPath)
	if !strings.Contains(out, "update to 2.0.0 failed and was rolled back at ") || !strings.Contains(out, "; not retried") {
		t.Errorf("status lacks the failed update:\n%s", out)
	}
	st, _ := k.client(t).Status(context.Background())
	if f := st.Update.LastFailed; f == nil || f.Version != "2.0.0" || f.From != version || f.FromSlot != "A" {
		t.Errorf("status update %+v", st.Update)
	}
	code, _, errs := kioskd(t, "", "update", "-config", k.cfgPath, r.bundle)
	if code != exitFail || !strings.Contains(errs, "version 2.0.0 failed and was rolled back") || !strings.Contains(errs, "-force") {
		t.Errorf("update of the failed version: exit %d %s", code, errs)
	}
	if r.file("installed") != "" {
		t.Error("rauc install ran for a refused version")
	}
	if code, out, errs := kioskd(t, "", "update", "-config", k.cfgPath, "-force", r.bundle); code != exitOK {
		t.Errorf("update -force: exit %d %s %s", code, out, errs)
	}
}

func TestHealth(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config(), nil)
	// The machine's loops register their heartbeats just after the
	// daemon is up; health says so until they have.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs := kioskd(t, "", "health", "-config", k.cfgPath, "-min-up", "0s")
		if code == exitOK {
			for _, want := range []string{"ok   journal", "ok   pins", "ok   watchdog", "ok   uptime", "healthy: kioskd " + version + ", slot A", "busy false"} {
				if !strings.Contains(out, want) {
					t.Errorf("health lacks %q:\n%s", want, out)
				}
			}
			break
		}
		if code != exitFail || time.Now().After(deadline) {
			t.Fatalf("health exit %d\n%s%s", code, out, errs)
		}
		<-time.After(20 * time.Millisecond)
	}
	code, out, _ := kioskd(t, "", "health", "-config", k.cfgPath, "-min-up", "1h", "-json")
	var h control.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	if code != exitFail || h.Healthy || h.MinUpS != 3600 || h.Slot != "A" || len(h.Checks) != 4 || h.Checks[3].OK {
		t.Errorf("health -min-up 1h: exit %d %+v", code, h)
	}
	if code, _, _ := kioskd(t, "", "health", "-config", k.cfgPath, "-min-up", "x"); code != exitUsage {
		t.Errorf("bad -min-up: exit %d", code)
	}
	if code, _, _ := kioskd(t, "", "health", "-control", filepath.Join(t.TempDir(), "none.sock")); code != exitFail {
		t.Errorf("no daemon: exit %d, want 1", code)
	}
}

// POST /v1/update's answers and the status while updating, against
// docs/control-api.json.
func TestUpdateMatchesOpenAPI(t *testing.T) {
	r := newUpdateRig(t, "2.0.0", false)
	k := startKioskConfig(t, r.config(), nil)
	sock := filepath.Join(k.dir, "ctl.sock")
	a := &apiTester{t: t, doc: loadAPIDoc(t, "../../docs/control-api.json"), seen: map[string]bool{}, hc: &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}}
	body := fmt.Sprintf(`{"bundle":%q,"wait":"1m"}`, r.bundle)
	a.do(apiCall{op: "POST /v1/update", path: "/v1/update", body: body, status: 202})
	a.do(apiCall{op: "POST /v1/update", path: "/v1/update", body: body, status: 409})
	a.do(apiCall{op: "POST /v1/payments", path: "/v1/payments", body: `{"amount":"1.00","mode":"card"}`, status: 503})
	a.do(apiCall{op: "GET /v1/status", path: "/v1/status", status: 200})
	a.do(apiCall{op: "GET /v1/health", path: "/v1/health", status: 200})
}
