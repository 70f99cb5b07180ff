package vm

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var printkRe = regexp.MustCompile(`^\[\s*(\d+)\.(\d+)\]`)

// kernelStart estimates when the kernel started, on the host's clock,
// from the console: each line stamped "[ s.us ]" arrived at least that
// long after it. Lines printed as they happen arrive just after their
// stamp; those replayed when the console came up arrive later, so the
// earliest arrival minus stamp is the start.
func kernelStart(text []string, at []time.Time) (time.Time, bool) {
	var best time.Time
	for i, l := range text {
		m := printkRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		us, _ := strconv.ParseInt(m[2], 10, 64)
		s := at[i].Add(-time.Duration(sec)*time.Second - time.Duration(us)*time.Microsecond)
		if best.IsZero() || s.Before(best) {
			best = s
		}
	}
	return best, !best.IsZero()
}

// TestVMBoot: how long the board takes to take payments, that kioskd
// claims the relay line without a release pulse, and that selftest and
// status show the real devices.
func TestVMBoot(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "boot"})
		_, listening := v.waitConsole(0, "pos server listening", 90*time.Second)
		text, at := v.console.all()
		kstart, ok := kernelStart(text, at)
		if !ok {
			t.Fatal("no timestamped kernel line on the console")
		}
		t.Logf("%s: boot: QEMU start to kioskd listening %s, kernel start to listening %s",
			b.name, listening.Sub(v.start).Round(10*time.Millisecond), listening.Sub(kstart).Round(10*time.Millisecond))
		if d := listening.Sub(v.start); d > 60*time.Second {
			t.Errorf("listening %s after QEMU started", d)
		}
		v.shellReady(30 * time.Second)

		// From power-on to here the relay never pulled in; what the line
		// showed is the PL061 driver's own microseconds at the request.
		ps := v.gpio.pulses(lineRelay, true, v.start)
		if n := len(vends(ps)); n != 0 {
			t.Fatalf("relay pulses at boot: %v", ps)
		}
		// Counted in register writes, not time (TCG's timing stretches
		// with the host's load): the driver's direction change is one
		// write with the line low; a request at the wrong level and a
		// second ioctl to correct it (periph's way) are two or more.
		for _, g := range glitches(ps) {
			t.Logf("%s: relay line low for %s over %d register write(s) when requested (the PL061's write order)", b.name, g.off.Sub(g.on), g.writes)
			if g.writes > 1 {
				t.Errorf("relay line low for %s over %d register writes at boot: requested at the release level first", g.off.Sub(g.on), g.writes)
			}
		}

		wantWD := map[string]string{"i6300esb": "i6300ESB timer", "softdog": "Software Watchdog"}[b.wdt]
		out, rc := v.run("kioskd status", 20*time.Second)
		if rc != 0 || !strings.Contains(out, "watchdog: "+wantWD+", timeout 5s") || !strings.Contains(out, "board generic") {
			t.Errorf("kioskd status: exit %d, want board generic and watchdog %q:\n%s", rc, wantWD, out)
		}
		since := time.Now()
		out, rc = v.run("kioskd selftest -relay", 60*time.Second)
		t.Logf("%s: kioskd selftest -relay:\n%s", b.name, out)
		if rc != 0 || !strings.Contains(out, "pass relay") || !strings.Contains(out, "pass watchdog  "+wantWD) ||
			!strings.Contains(out, "pass printer") {
			t.Errorf("kioskd selftest -relay: exit %d:\n%s", rc, out)
		}
		if ps := v.gpio.waitPulses(lineRelay, true, since, 1, 5*time.Second); len(ps) != 1 {
			t.Errorf("selftest relay pulses on the line: %v, want one", ps)
		}
		if len(v.printer.Pages()) == 0 {
			t.Error("selftest printed no test page")
		}
	})
}

// TestVMMissingPins: on a board whose device tree does not name the
// lines, kioskd refuses to start and says which pins it lacks, backs off
// as init keeps starting it, and never drives the relay line.
func TestVMMissingPins(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), plainDTB: true, name: "nopins"})
		// The error is a quoted log value: its quotes come escaped.
		i, _ := v.waitConsole(0, `relay pin \"GPIO17\" does not exist`, 90*time.Second)
		line := v.console.since(i)[0]
		for _, want := range []string{`green LED pin \"GPIO22\"`, `amber LED pin \"GPIO23\"`, `red LED pin \"GPIO24\"`,
			"gpiochip0 [9030000.pl061] 8 lines, none named"} {
			if !strings.Contains(line, want) {
				t.Errorf("the refusal does not name %s: %s", want, line)
			}
		}
		t.Logf("%s: %s", b.name, line)
		if _, _, ok := v.console.wait(i, func(l string) bool { return strings.Contains(l, "pos server listening") }, 3*time.Second, v.done); ok {
			t.Error("kioskd listening without its pins")
		}
		// init starts it again at once; from the fourth refusal on it
		// waits before exiting instead of filling the console.
		v.waitConsole(i, "the board cannot be opened: waiting before exiting", 60*time.Second)
		if ps := v.gpio.pulses(lineRelay, true, v.start); len(ps) != 0 {
			t.Errorf("relay line driven by a kioskd without its pins: %v", ps)
		}
	})
}
