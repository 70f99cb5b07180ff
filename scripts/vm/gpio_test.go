package vm

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gpioLog is the PL061's register state over time, from QEMU's
// pl061_update trace events on its stderr: what the kernel's driver
// wrote on kioskd's behalf, seen from outside the guest.
type gpioLog struct {
	mu     sync.Mutex
	states []gpioState
	other  []string // the rest of stderr, for failure messages
	notify chan struct{}
}

type gpioState struct {
	at        time.Time
	dir, data uint32
}

func newGPIOLog() *gpioLog { return &gpioLog{notify: make(chan struct{})} }

// With -msg timestamp=on the log backend stamps each event
// "PID@SECONDS.MICROS:"; the stamp is QEMU's own clock at the write.
var pl061Re = regexp.MustCompile(`^(?:\d+@(\d+)\.(\d+):)?pl061_update \S+ GPIODIR 0x([0-9a-f]+) GPIODATA 0x([0-9a-f]+)`)

func (g *gpioLog) read(r io.Reader, copyTo io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s := sc.Text()
		fmt.Fprintln(copyTo, s)
		m := pl061Re.FindStringSubmatch(s)
		g.mu.Lock()
		if m == nil {
			g.other = append(g.other, s)
		} else {
			at := time.Now()
			if m[1] != "" {
				sec, _ := strconv.ParseInt(m[1], 10, 64)
				us, _ := strconv.ParseInt(m[2], 10, 64)
				at = time.Unix(sec, us*1000)
			}
			dir, _ := strconv.ParseUint(m[3], 16, 32)
			data, _ := strconv.ParseUint(m[4], 16, 32)
			g.states = append(g.states, gpioState{at: at, dir: uint32(dir), data: uint32(data)})
		}
		close(g.notify)
		g.notify = make(chan struct{})
		g.mu.Unlock()
	}
}

func (g *gpioLog) tail() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.other[max(0, len(g.other)-10):], "\n")
}

// on reports whether the line drives its load in state s: an output at
// the active level. An input (the line's state from reset until kioskd
// claims it) drives nothing, whatever the model's pull says.
func (s gpioState) on(line int, activeLow bool) bool {
	out := s.dir&(1<<line) != 0
	high := s.data&(1<<line) != 0
	return out && high != activeLow
}

// pulse is one interval of a line driving its load.
type pulse struct {
	on, off time.Time // off is zero for a pulse still on when the log ends
	writes  int       // register writes that left the line on
}

func (p pulse) String() string {
	if p.off.IsZero() {
		return p.on.Format("15:04:05.000") + "-(still on)"
	}
	return fmt.Sprintf("%s+%s", p.on.Format("15:04:05.000"), p.off.Sub(p.on).Round(time.Millisecond))
}

// pulses lists the line's on intervals that began at or after since.
func (g *gpioLog) pulses(line int, activeLow bool, since time.Time) []pulse {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []pulse
	was := false
	for _, s := range g.states {
		now := s.on(line, activeLow)
		open := len(out) > 0 && out[len(out)-1].off.IsZero()
		switch {
		case now && !was && !s.at.Before(since):
			out = append(out, pulse{on: s.at, writes: 1})
		case now && was && open:
			out[len(out)-1].writes++
		case !now && was && open:
			out[len(out)-1].off = s.at
		}
		was = now
	}
	return out
}

// A relay needs milliseconds to pull in: a shorter pulse on its line is
// a glitch, not a vend. The PL061 is one source: it ignores data written
// while a line is an input, so its Linux driver writes the level, makes
// the line an output (which then drives the old level, low) and writes
// the level again: two microseconds low on every request.
const glitchMax = 50 * time.Millisecond

// vends lists the relay's pulses long enough to release a product, or
// still on when the log ends (the power went during the pulse).
func vends(ps []pulse) []pulse {
	var out []pulse
	for _, p := range ps {
		if p.off.IsZero() || p.off.Sub(p.on) >= glitchMax {
			out = append(out, p)
		}
	}
	return out
}

// glitches lists the pulses too short to be vends.
func glitches(ps []pulse) []pulse {
	var out []pulse
	for _, p := range ps {
		if !p.off.IsZero() && p.off.Sub(p.on) < glitchMax {
			out = append(out, p)
		}
	}
	return out
}

// level reports whether the line is on now, as far as the log shows.
func (g *gpioLog) level(line int, activeLow bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.states) == 0 {
		return false
	}
	return g.states[len(g.states)-1].on(line, activeLow)
}

// waitPulses waits until n pulses of the line that began at or after
// since have ended, or d passed.
func (g *gpioLog) waitPulses(line int, activeLow bool, since time.Time, n int, d time.Duration) []pulse {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		ps := g.pulses(line, activeLow, since)
		if len(ps) >= n && !ps[n-1].off.IsZero() {
			return ps
		}
		g.mu.Lock()
		ch := g.notify
		g.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return g.pulses(line, activeLow, since)
		}
	}
}
