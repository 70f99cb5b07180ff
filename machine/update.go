package machine

// A/B updates through RAUC (docs/update.md): stop selling, wait for the
// payment in progress, install, reboot. The bootloader and RAUC pick the
// slot; the health gate marks it good. What kioskd keeps is a pending
// record before the reboot, so that the next start can tell an update
// that took from one that was rolled back.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/internal/atomicfile"
	"github.com/kioskd/kioskd/payment"
)

// UpdateConfig is [update] and what the daemon knows of itself.
type UpdateConfig struct {
	Rauc    string        // the rauc command
	Reboot  []string      // the reboot argv
	Wait    time.Duration // default wait for the payment in progress
	DataDir string
	Version string // kioskd's, main.version
	Slot    string // the booted slot
}

// The files an update leaves in the data directory.
const (
	PendingUpdateFile = "update-pending.json" // written before the reboot, read at the next start
	FailedUpdateFile  = "update-failed.json"  // the last update rolled back
)

// PendingUpdate is what the next start needs to judge the update.
type PendingUpdate struct {
	FromVersion   string    `json:"from_version"`
	FromSlot      string    `json:"from_slot"`
	Bundle        string    `json:"bundle"`
	BundleVersion string    `json:"bundle_version"`
	At            time.Time `json:"at"`
}

// raucLogEvery bounds rauc's output on the console: its progress lines
// come a few per second, over a 115200-baud serial line shared with
// everything else. The ring behind `kioskd logs` gets the same lines.
const raucLogEvery = 100 * time.Millisecond

// Updater runs one update at a time.
type Updater struct {
	cfg  UpdateConfig
	svc  *payment.Service
	m    *Machine
	log  *slog.Logger
	ctx  context.Context
	poll time.Duration // how often the idle wait looks again besides events

	mu     sync.Mutex
	st     control.Update
	failed *control.UpdateFailure
}

// NewUpdater returns the updater; an update it starts ends with ctx (the
// daemon's). failed is the last rolled-back update (SettleUpdate).
func (m *Machine) NewUpdater(ctx context.Context, cfg UpdateConfig, svc *payment.Service, failed *control.UpdateFailure) *Updater {
	return &Updater{cfg: cfg, svc: svc, m: m, log: m.log.With("component", "update"), ctx: ctx, poll: time.Second,
		st: control.Update{State: control.UpdateIdle}, failed: failed}
}

// State is the update's state for the status.
func (u *Updater) State() control.Update {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.st
	s.LastFailed = u.failed
	return s
}

// Running reports whether an update holds the kiosk (waiting,
// installing or rebooting).
func (u *Updater) Running() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.running()
}

func (u *Updater) running() bool {
	switch u.st.State {
	case control.UpdateWaiting, control.UpdateInstalling, control.UpdateRebooting:
		return true
	}
	return false
}

func (u *Updater) set(f func(s *control.Update)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}

// Start implements control.Updater.
func (u *Updater) Start(req control.UpdateRequest) (control.Update, error) {
	if !filepath.IsAbs(req.Bundle) {
		return control.Update{}, fmt.Errorf("%w: bundle %q: want an absolute path on the kiosk", payment.ErrBadRequest, req.Bundle)
	}
	wait := u.cfg.Wait
	if req.Wait != "" {
		d, err := time.ParseDuration(req.Wait)
		if err != nil || d <= 0 {
			return control.Update{}, fmt.Errorf("%w: wait %q: want a duration above 0s", payment.ErrBadRequest, req.Wait)
		}
		wait = d
	}
	if fi, err := os.Stat(req.Bundle); err != nil || !fi.Mode().IsRegular() {
		return control.Update{}, fmt.Errorf("%w: bundle %s: not a file", payment.ErrBadRequest, req.Bundle)
	}
	u.mu.Lock()
	if u.running() {
		st := u.st
		u.mu.Unlock()
		return control.Update{}, fmt.Errorf("%w: %s %s (%s)", control.ErrUpdateRunning, st.State, st.Bundle, st.Reason)
	}
	// Taken before rauc info runs, so that two requests at once cannot
	// both start.
	u.st = control.Update{State: control.UpdateWaiting, Bundle: req.Bundle, StartedAt: time.Now(), Reason: "reading the bundle"}
	failed := u.failed
	u.mu.Unlock()

	ver := u.bundleVersion(req.Bundle)
	if failed != nil && ver != "" && ver == failed.Version && !req.Force {
		err := fmt.Errorf("%w: version %s failed and was rolled back at %s; not retried without -force",
			control.ErrUpdateRefused, ver, failed.At.UTC().Format(time.RFC3339))
		u.set(func(s *control.Update) { *s = control.Update{State: control.UpdateIdle} })
		return control.Update{}, err
	}
	reason := "updating: installing " + req.Bundle
	u.svc.Pause(reason)
	u.set(func(s *control.Update) { s.BundleVersion, s.Reason = ver, "waiting for the payment in progress to end" })
	st := u.State()
	u.log.Info("update: not taking new payments", "bundle", req.Bundle, "bundle_version", ver, "wait", wait)
	go u.run(req.Bundle, ver, wait)
	return st, nil
}

// bundleVersion is the manifest's version as rauc info says it, "" when
// it cannot (an old rauc, an unreadable bundle: install will say).
func (u *Updater) bundleVersion(bundle string) string {
	ctx, cancel := context.WithTimeout(u.ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, u.cfg.Rauc, "info", "--output-format=json", bundle).Output()
	if err != nil {
		u.log.Warn("update: rauc info failed; the bundle's version is unknown", "bundle", bundle, "err", err)
		return ""
	}
	v, err := ParseBundleVersion(out)
	if err != nil {
		u.log.Warn("update: rauc info's answer unreadable", "err", err)
	}
	return v
}

// ParseBundleVersion returns the "version" of the manifest as `rauc info
// --output-format=json` prints it.
func ParseBundleVersion(b []byte) (string, error) {
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("rauc info: %w", err)
	}
	if len(m.Version) > 128 || !printable([]byte(strings.ReplaceAll(m.Version, " ", "_"))) {
		return "", fmt.Errorf("rauc info: version %q: want up to 128 printable characters", m.Version)
	}
	return m.Version, nil
}

func (u *Updater) fail(reason string) {
	u.log.Error("update failed; selling again", "reason", reason)
	u.m.leds.SetUpdating(false)
	u.set(func(s *control.Update) { s.State, s.Reason = control.UpdateFailed, reason })
	u.svc.Resume()
}

func (u *Updater) run(bundle, ver string, wait time.Duration) {
	if id := u.waitIdle(wait); id != "" {
		u.fail(fmt.Sprintf("payment %s still in progress after %s; not updating", id, wait))
		return
	}
	if u.ctx.Err() != nil {
		u.fail("kioskd is stopping")
		return
	}
	u.m.leds.SetUpdating(true)
	u.set(func(s *control.Update) { s.State, s.Reason = control.UpdateInstalling, u.cfg.Rauc+" install "+bundle })
	u.log.Info("update: installing", "bundle", bundle, "bundle_version", ver)
	if last, err := u.install(bundle); err != nil {
		if last == "" {
			last = err.Error()
		}
		u.fail("rauc install failed: " + last)
		return
	}
	p := PendingUpdate{FromVersion: u.cfg.Version, FromSlot: u.cfg.Slot, Bundle: bundle, BundleVersion: ver, At: time.Now().UTC()}
	b, _ := json.Marshal(p)
	if err := atomicfile.Write(filepath.Join(u.cfg.DataDir, PendingUpdateFile), append(b, '\n'), 0o600); err != nil {
		// Rebooting anyway would leave a rollback unseen; the bundle
		// is installed and boots at the next reboot, whoever makes it.
		u.fail("installed, but the pending-update record cannot be written: " + err.Error())
		return
	}
	u.set(func(s *control.Update) {
		s.State, s.Reason = control.UpdateRebooting, strings.Join(u.cfg.Reboot, " ")
	})
	u.log.Info("update: installed; rebooting", "bundle_version", ver, "reboot", u.cfg.Reboot)
	// The reboot command stops kioskd (BusyBox's rcK runs kioskd-run
	// stop) and then the board: kioskd keeps not selling meanwhile. It
	// is not tied to the daemon's context: the stop it causes must not
	// kill it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, u.cfg.Reboot[0], u.cfg.Reboot[1:]...).CombinedOutput(); err != nil {
		u.fail(fmt.Sprintf("reboot %v: %v: %s", u.cfg.Reboot, err, lastLine(string(out))))
	}
}

// waitIdle waits until no payment is in progress (nor its vend under
// way) and returns "", or the payment's id when wait ran out.
func (u *Updater) waitIdle(wait time.Duration) string {
	events, unsub := u.svc.Subscribe()
	defer func() { unsub() }()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	// Events say when the payment ends; the poll covers a subscriber
	// dropped for falling behind.
	poll := time.NewTicker(u.poll)
	defer poll.Stop()
	for {
		cur := u.svc.Current()
		if cur == nil {
			return ""
		}
		select {
		case <-u.ctx.Done():
			return ""
		case <-deadline.C:
			if cur := u.svc.Current(); cur != nil {
				return cur.ID
			}
			return ""
		case _, ok := <-events:
			if !ok {
				events, unsub = u.svc.Subscribe()
			}
		case <-poll.C:
		}
	}
}

// install runs rauc install, each line of its output a log line, and
// returns its last line.
func (u *Updater) install(bundle string) (string, error) {
	cmd := exec.CommandContext(u.ctx, u.cfg.Rauc, "install", bundle)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return "", err
	}
	done := make(chan string)
	go func() {
		var last string
		var next time.Time
		held := 0
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			last = line
			now := time.Now()
			if now.Before(next) {
				held++
				continue
			}
			next = now.Add(raucLogEvery)
			u.log.Info("rauc", "line", line, "held_back", held)
			held = 0
		}
		if held > 0 {
			u.log.Info("rauc", "line", last, "held_back", held-1)
		}
		io.Copy(io.Discard, pr)
		done <- last
	}()
	err := cmd.Wait()
	pw.Close()
	last := <-done
	return last, err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// SettleUpdate judges, at start, an update that rebooted: booted on the
// bundle's version (or another slot), it took; back on the version and
// slot it left from, it was rolled back and is recorded as failed. It
// returns the last failed update, nil when there is none.
func SettleUpdate(dataDir, version, slot string, now time.Time, log *slog.Logger) *control.UpdateFailure {
	log = log.With("component", "update")
	failedPath := filepath.Join(dataDir, FailedUpdateFile)
	failed, err := ReadUpdateFailure(failedPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("last failed update record unreadable; ignored", "err", err)
	}
	pendPath := filepath.Join(dataDir, PendingUpdateFile)
	b, err := os.ReadFile(pendPath)
	if errors.Is(err, os.ErrNotExist) {
		return failed
	}
	var p PendingUpdate
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	switch {
	case err != nil:
		log.Warn("pending update record unreadable; dropped", "err", err)
	case (p.BundleVersion != "" && version == p.BundleVersion) || slot != p.FromSlot:
		// The health gate, not kioskd, marks the slot good.
		log.Info(fmt.Sprintf("update to %s booted; committed once the health gate marks slot %s good", version, slot),
			"outcome", "booted", "from_version", p.FromVersion, "from_slot", p.FromSlot, "slot", slot)
		if failed != nil && failed.Version == version {
			os.Remove(failedPath)
			failed = nil
		}
	case version == p.FromVersion:
		f := control.UpdateFailure{Version: p.BundleVersion, At: now.UTC(), From: p.FromVersion, FromSlot: p.FromSlot}
		if f.Version == "" {
			f.Version = p.Bundle // no manifest version: name the bundle
		}
		log.Error(fmt.Sprintf("update to %s failed and was rolled back; not retried", f.Version), "outcome", "rolled_back",
			"version", version, "slot", slot)
		b, _ := json.Marshal(f)
		if err := atomicfile.Write(failedPath, append(b, '\n'), 0o600); err != nil {
			log.Error("failed update not recorded", "err", err)
		}
		failed = &f
	default:
		log.Warn("pending update neither booted nor rolled back; dropped", "version", version, "slot", slot,
			"from_version", p.FromVersion, "bundle_version", p.BundleVersion)
	}
	if err := os.Remove(pendPath); err != nil {
		log.Warn("pending update record not removed", "err", err)
	}
	return failed
}

// ReadUpdateFailure reads the last failed update record.
func ReadUpdateFailure(path string) (*control.UpdateFailure, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseUpdateFailure(b)
}

// ParseUpdateFailure decodes a failed-update record; one without a
// version is refused, since it could refuse nothing.
func ParseUpdateFailure(b []byte) (*control.UpdateFailure, error) {
	var f control.UpdateFailure
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", FailedUpdateFile, err)
	}
	if f.Version == "" {
		return nil, fmt.Errorf("%s: no version", FailedUpdateFile)
	}
	return &f, nil
}
