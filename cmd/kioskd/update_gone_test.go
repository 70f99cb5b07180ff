package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/machine"
)

// goneDaemon is a control socket that accepts an update and is then
// gone: POST /v1/update answers "waiting" and calls installed (which may
// write the pending-update record, as the real daemon does before its
// reboot command), and every GET /v1/status after it is cut off without
// an answer, as when rcK stops kioskd before the client's next poll.
func goneDaemon(t *testing.T, installed func(started time.Time)) (cfgPath, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath = writeTestConfig(t, dir, "")
	dataDir = filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "ctl.sock"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/update", func(w http.ResponseWriter, r *http.Request) {
		var req control.UpdateRequest
		json.NewDecoder(r.Body).Decode(&req)
		started := time.Now()
		installed(started)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(control.Update{State: control.UpdateWaiting, Bundle: req.Bundle, StartedAt: started,
			Reason: "waiting for the payment in progress to end"})
	})
	mux.HandleFunc("GET /v1/status", func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler) // the connection closed, no answer
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return cfgPath, dataDir
}

func writePending(t *testing.T, dataDir string, p machine.PendingUpdate) {
	t.Helper()
	b, _ := json.Marshal(p)
	if err := os.WriteFile(filepath.Join(dataDir, machine.PendingUpdateFile), b, 0o600); err != nil {
		t.Error(err)
	}
}

// The daemon goes away before the client saw "rebooting": its
// pending-update record for this bundle, written after the update began,
// says the bundle was installed and the reboot began, so kioskd update
// succeeds. Without such a record it is a daemon that did not answer.
func TestUpdateDaemonGoneAfterInstall(t *testing.T) {
	const bundle = "/data/bundles/good.raucb"
	t.Run("record written", func(t *testing.T) {
		var dataDir string
		cfg, dataDir := goneDaemon(t, func(started time.Time) {
			writePending(t, dataDir, machine.PendingUpdate{FromVersion: "1.0", FromSlot: "A", Bundle: bundle, BundleVersion: "2.0", At: started.Add(time.Millisecond)})
		})
		code, out, errs := kioskd(t, "", "update", "-config", cfg, bundle)
		if code != exitOK || !strings.Contains(out, "rebooting: kioskd went away after "+machine.PendingUpdateFile) {
			t.Errorf("exit %d, want %d\n%s\n%s", code, exitOK, out, errs)
		}
	})
	for name, p := range map[string]*machine.PendingUpdate{
		"no record":      nil,
		"another bundle": {FromSlot: "A", Bundle: "/data/bundles/other.raucb"},
		"older record":   {FromSlot: "A", Bundle: bundle},
	} {
		t.Run(name, func(t *testing.T) {
			var dataDir string
			cfg, dataDir := goneDaemon(t, func(started time.Time) {
				if p != nil {
					q := *p
					q.At = started
					if name == "older record" {
						q.At = started.Add(-time.Hour)
					}
					writePending(t, dataDir, q)
				}
			})
			code, out, errs := kioskd(t, "", "update", "-config", cfg, bundle)
			if code != exitUnreachable || !strings.Contains(errs, "kioskd not reachable") {
				t.Errorf("exit %d, want %d\n%s\n%s", code, exitUnreachable, out, errs)
			}
		})
	}
}
