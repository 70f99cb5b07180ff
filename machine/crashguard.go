package machine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kioskd/kioskd/internal/atomicfile"
)

// CrashGuard keeps a persistent record of starts that did not end in a
// clean stop. init respawns a dying kioskd about once a second, forever;
// past a threshold of unclean starts in a window, kioskd waits before
// starting (doubling each time, up to a ceiling) and shows the fault
// pattern, rather than hammering the relay, printer and POS link.
//
// Only starts in this boot of the kernel count. A power cut or a reset
// also leaves a start without a clean stop, but it is not kioskd
// crashing, and the board's own boot already spaces those out: counted,
// a few brown-outs in ten minutes kept a machine from selling for a
// minute and more after the power came back (seen on the virtual board).
type CrashGuard struct {
	path      string
	boot      string // the kernel's boot id, "" where there is none
	window    time.Duration
	threshold int
	base, max time.Duration
}

// NewCrashGuard is the guard whose record lives in dataDir/restarts.
func NewCrashGuard(dataDir string) CrashGuard {
	return CrashGuard{path: filepath.Join(dataDir, "restarts"), boot: bootID(), window: 10 * time.Minute, threshold: 3,
		base: 5 * time.Second, max: 5 * time.Minute}
}

// bootID is the kernel's random id of this boot.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// begin records this start and returns how many unclean starts came
// before it within the window, and how long to wait before going on.
func (g CrashGuard) begin(now time.Time) (int, time.Duration, error) {
	var recent []time.Time
	b, err := os.ReadFile(g.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("restart record: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "TIME BOOT_ID"; a line without the id is from before ids were
		// kept, so from another boot.
		stamp, boot, _ := strings.Cut(sc.Text(), " ")
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if err == nil && boot == g.boot && now.Sub(t) < g.window && !t.After(now) {
			recent = append(recent, t)
		}
	}
	var out bytes.Buffer
	for _, t := range append(recent, now) {
		out.WriteString(t.UTC().Format(time.RFC3339Nano) + " " + g.boot + "\n")
	}
	if err := atomicfile.Write(g.path, out.Bytes(), 0o600); err != nil {
		return 0, 0, fmt.Errorf("restart record: %w", err)
	}
	n := len(recent)
	if n < g.threshold {
		return n, 0, nil
	}
	d := g.base
	for i := g.threshold; i < n && d < g.max; i++ {
		d *= 2
	}
	return n, min(d, g.max), nil
}

// CleanStop forgets the record: the next start is a fresh one.
func (g CrashGuard) CleanStop() error {
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restart record: %w", err)
	}
	return nil
}
