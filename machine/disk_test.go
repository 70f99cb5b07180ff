package machine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kioskd/kioskd/device/led"
	"github.com/kioskd/kioskd/internal/diskspace"
)

// fakeDisk is the data partition as the test sets it.
type fakeDisk struct {
	mu    sync.Mutex
	u     diskspace.Usage
	err   error
	looks int
}

func (d *fakeDisk) set(avail uint64, err error) {
	d.mu.Lock()
	d.u.Avail, d.err = avail, err
	d.mu.Unlock()
}

func (d *fakeDisk) lookCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.looks
}

func (d *fakeDisk) usage(string) (diskspace.Usage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.looks++
	return d.u, d.err
}

// logLines is a log written by a goroutine of the machine and counted
// by the test.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logLines) count(level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.Lines(l.b.String()) {
		if strings.Contains(line, "level="+level+" ") && strings.Contains(line, "msg=\""+msg+"\"") {
			n++
		}
	}
	return n
}

// runMachine runs m on a service until the test ends; inside a synctest
// bubble, so that everything has stopped when the bubble's function
// returns, the test calls stop itself (deferred).
func runMachine(t *testing.T, m *Machine, dir string) (stop func()) {
	t.Helper()
	svc, j, stopSvc := service(t, m, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, svc, j) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		stopSvc()
	}
}

const (
	warnLow   = "data partition nearly full; selling goes on, unshipped journal records are kept"
	infoRoom  = "data partition has room again"
	warnStatf = "data partition free space unknown"
)

// A data partition that runs low raises the "disk" fault (status and red
// LED) with one warning, another at most hourly while it stays low, and
// one line when it clears. A statfs that fails says so, hourly at most,
// and leaves the fault as it was. The hours pass in synctest's fake
// time; each synctest.Wait lets the look due by then finish.
func TestDiskFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		cfg.MinFree = 64 << 20
		m := openSim(t, cfg, nil)
		disk := &fakeDisk{u: diskspace.Usage{Total: 7500 << 20, Avail: 1 << 30}}
		var logs logLines
		m.usage, m.log = disk.usage, slog.New(slog.NewTextHandler(&logs, nil))
		// watchDisk alone, as Run starts it: the hours below pass without
		// the probe's thousands of rounds.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.watchDisk(ctx) }()
		defer func() { cancel(); <-done }()

		raised := func(step string, want bool) {
			t.Helper()
			st := m.State()
			_, inStatus := st.Faults["disk"]
			if inStatus != want || slices.Contains(st.LEDs.Faults, "disk") != want ||
				(st.LEDs.Pattern == string(led.Fault)) != want {
				t.Fatalf("%s: disk fault %v, want %v: faults %v, LEDs %+v", step, inStatus, want, st.Faults, st.LEDs)
			}
		}
		logged := func(step string, level, msg string, want int) {
			t.Helper()
			if n := logs.count(level, msg); n != want {
				t.Fatalf("%s: %d lines %s %q, want %d:\n%s", step, n, level, msg, want, logs.String())
			}
		}
		synctest.Wait()
		if n := disk.lookCount(); n != 1 {
			t.Fatalf("%d looks at start, want 1", n)
		}
		raised("plenty free", false)

		disk.set(12<<20+300<<10, nil)
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("low", true)
		want := "data partition nearly full: 12.3 MiB free of 7.3 GiB (warning below 64 MiB); " +
			"selling goes on, unshipped journal records are kept"
		if got := m.State().Faults["disk"]; got != want {
			t.Errorf("fault text %q\nwant %q", got, want)
		}
		logged("low", "WARN", warnLow, 1)
		if d := m.State().Disk; d == nil || d.FreeBytes != 12<<20+300<<10 || d.TotalBytes != 7500<<20 || d.WarnBelowBytes != 64<<20 || d.Dir != cfg.DataDir {
			t.Errorf("status disk %+v; want the last look", d)
		}
		time.Sleep(diskLogEvery - diskEvery)
		synctest.Wait()
		logged("low for 59 minutes", "WARN", warnLow, 1)
		time.Sleep(diskEvery)
		synctest.Wait()
		logged("low for an hour", "WARN", warnLow, 2)

		disk.set(70<<20, nil) // above the level, below the eighth over it
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("just above the level", true)
		logged("just above the level", "INFO", infoRoom, 0)
		disk.set(72<<20, nil)
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("room again", false)
		logged("room again", "INFO", infoRoom, 1)
		time.Sleep(10 * diskEvery)
		synctest.Wait()
		logged("room for ten minutes", "INFO", infoRoom, 1)

		disk.set(0, errors.New("statfs: input/output error"))
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("statfs fails", false)
		logged("statfs fails", "WARN", warnStatf, 1)
		time.Sleep(diskLogEvery - diskEvery)
		synctest.Wait()
		logged("statfs fails for 59 minutes", "WARN", warnStatf, 1)
		time.Sleep(diskEvery)
		synctest.Wait()
		logged("statfs fails for an hour", "WARN", warnStatf, 2)

		// Low again, then unknown: the fault stays up, and a rise warns
		// at once however recent the last warning of the earlier one.
		disk.set(1<<20, nil)
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("low again", true)
		logged("low again", "WARN", warnLow, 3)
		disk.set(0, errors.New("statfs: input/output error"))
		time.Sleep(diskEvery)
		synctest.Wait()
		raised("low, then statfs fails", true)
		logged("low, then statfs fails", "INFO", infoRoom, 1)
	})
}

// With MinFree 0 the partition is never looked at.
func TestDiskOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		m := openSim(t, cfg, nil)
		disk := &fakeDisk{}
		m.usage = disk.usage
		stop := runMachine(t, m, cfg.DataDir)
		defer stop()
		time.Sleep(2 * diskEvery)
		synctest.Wait()
		if n := disk.lookCount(); n != 0 {
			t.Fatalf("%d looks with MinFree 0", n)
		}
	})
}

// The real statfs of the test's data directory: no partition has
// math.MaxUint64 bytes free, and every one has a byte.
func TestDiskReal(t *testing.T) {
	for _, c := range []struct {
		minFree uint64
		low     bool
	}{{math.MaxUint64, true}, {1, false}} {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MinFree = c.minFree
			m := openSim(t, cfg, nil)
			stop := runMachine(t, m, cfg.DataDir)
			defer stop()
			synctest.Wait()
			st := m.State()
			text, low := st.Faults["disk"]
			if low != c.low || slices.Contains(st.LEDs.Faults, "disk") != c.low {
				t.Fatalf("MinFree %d: disk fault %v %q, want %v; LEDs %+v", c.minFree, low, text, c.low, st.LEDs)
			}
			if low && !strings.HasPrefix(text, "data partition nearly full: ") {
				t.Errorf("fault text %q", text)
			}
		})
	}
}
