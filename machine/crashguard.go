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
//
// Nor do starts of another version or slot: an update that crashed in a
// loop and was rolled back (or a new image after an old one's crash
// loop) must not make the image now booted wait for the other's
// crashes.
type CrashGuard struct {
	path      string
	boot      string // the kernel's boot id, "" where there is none
	version   string // kioskd's version, main.version
	slot      string // the booted RAUC slot, "" when not booted through RAUC
	window    time.Duration
	threshold int
	base, max time.Duration
}

// NewCrashGuard is the guard whose record lives in dataDir/restarts,
// counting the starts of this version from this slot.
func NewCrashGuard(dataDir, version, slot string) CrashGuard {
	return CrashGuard{path: filepath.Join(dataDir, "restarts"), boot: bootID(), version: version, slot: slot,
		window: 10 * time.Minute, threshold: 3, base: 5 * time.Second, max: 5 * time.Minute}
}

// recordField is how a value is written in the record: one field,
// never empty ("-"), with no space in it, so that a line splits back
// into exactly its fields.
func recordField(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
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
	tail := " " + recordField(g.boot) + " " + recordField(g.version) + " " + recordField(g.slot)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "TIME BOOT_ID VERSION SLOT". A line with fewer fields is from
		// before they were kept: another boot, version or slot.
		f := strings.Fields(sc.Text())
		if len(f) != 4 || " "+strings.Join(f[1:], " ") != tail {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f[0])
		if err == nil && now.Sub(t) < g.window && !t.After(now) {
			recent = append(recent, t)
		}
	}
	// Only this boot's, version's and slot's lines are kept: the
	// others can never count again.
	var out bytes.Buffer
	for _, t := range append(recent, now) {
		out.WriteString(t.UTC().Format(time.RFC3339Nano) + tail + "\n")
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
