package vm

import (
	"strings"
	"testing"
	"time"
)

// feedEvery is the supervisor's feed interval: a third of the timeout.
const feedEvery = wdTimeout / 3

// keepDown makes kioskd-run refuse to start kioskd again: the image's
// config moved away, its `kioskd config check` fails and it waits.
const keepDown = "mv /etc/kioskd/kioskd.toml /etc/kioskd/kioskd.toml.off"

// kioskdPid is what kioskd-run wrote before it exec'd kioskd.
const kioskdPid = "$(cat /run/kioskd.pid)"

// expectReset waits for the guest's reset after a fault made at from and
// checks that it came within the watchdog's window: the last feed was at
// most feedEvery before the fault, so the reset is due between
// timeout-feedEvery and timeout after it.
func (v *VM) expectReset(from time.Time, qmpFrom int, what string) time.Duration {
	v.t.Helper()
	e, _, ok := v.events.wait(qmpFrom, "RESET", wdTimeout+10*time.Second, v.done)
	if !ok {
		v.t.Fatalf("%s: no reset within %s (QMP events: %v)", what, wdTimeout+10*time.Second, v.events.names())
	}
	after := e.at().Sub(from)
	v.t.Logf("%s: %s: reset %s after the fault (timeout %s, fed every %s)", v.b.name, what, after.Round(10*time.Millisecond), wdTimeout, feedEvery)
	if after > wdTimeout+time.Second || after < wdTimeout-feedEvery-500*time.Millisecond {
		v.t.Errorf("%s: reset %s after the fault, want within %s..%s", what, after, wdTimeout-feedEvery, wdTimeout+time.Second)
	}
	return after
}

// expectNoReset checks that no reset comes for d.
func (v *VM) expectNoReset(qmpFrom int, d time.Duration, what string) {
	v.t.Helper()
	if e, _, ok := v.events.wait(qmpFrom, "RESET", d, v.done); ok {
		v.t.Fatalf("%s: the board reset at %s (QMP events: %v)", what, e.at().Format("15:04:05.000"), v.events.names())
	}
	select {
	case <-v.done:
		v.t.Fatalf("%s: QEMU exited", what)
	default:
	}
}

// TestVMWatchdog: the real watchdog resets a hung or dead kioskd and
// never a healthy one, nor one stopped cleanly, nor one waiting out a
// crash loop.
func TestVMWatchdog(t *testing.T) {
	eachBoard(t, func(t *testing.T, b *board) {
		t.Run("hung", func(t *testing.T) {
			v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "wd-hung"})
			v.ready(90 * time.Second)
			if st := v.status(); st.Hardware.Watchdog.Device == "" || st.Hardware.Watchdog.Device == "fake watchdog" || !st.Hardware.Watchdog.Feeding {
				t.Fatalf("watchdog status %+v, want the kernel's driver, feeding", st.Hardware.Watchdog)
			}
			// Healthy: no reset over two timeouts.
			q := v.events.lines.len()
			v.expectNoReset(q, 2*wdTimeout, "healthy kioskd")
			from := time.Now()
			v.run("kill -STOP "+kioskdPid, 10*time.Second)
			v.expectReset(from, q, "SIGSTOP")
			// The board comes back and kioskd with it.
			n := v.console.len()
			v.waitConsole(n, "pos server listening", 90*time.Second)
		})
		t.Run("killed", func(t *testing.T) {
			v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "wd-killed"})
			v.ready(90 * time.Second)
			// Killed and started again by init at once: the new kioskd
			// takes the armed watchdog over, and the board stays up.
			q := v.events.lines.len()
			n := v.console.len()
			v.run("kill -KILL "+kioskdPid, 10*time.Second)
			v.waitConsole(n, "pos server listening", 30*time.Second)
			v.expectNoReset(q, 2*wdTimeout, "kioskd killed and started again")
			// Killed and kept down: nothing feeds the watchdog, which
			// stayed armed (no magic close), and it resets the board.
			v.run(keepDown, 10*time.Second)
			from := time.Now()
			v.run("kill -KILL "+kioskdPid, 10*time.Second)
			v.expectReset(from, q, "SIGKILL, kioskd kept down")
		})
		t.Run("clean", func(t *testing.T) {
			v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "wd-clean"})
			v.ready(90 * time.Second)
			q := v.events.lines.len()
			n := v.console.len()
			v.run(keepDown, 10*time.Second)
			if out, rc := v.run("kioskd-run stop", 30*time.Second); rc != 0 {
				t.Fatalf("kioskd-run stop: exit %d: %s", rc, out)
			}
			v.waitConsole(n, "watchdog disarmed", 10*time.Second)
			v.expectNoReset(q, 2*wdTimeout, "kioskd stopped cleanly")
		})
		t.Run("crashloop", func(t *testing.T) {
			// Four kills in a row: the fifth start finds four unclean
			// ones and waits 10 s (two timeouts) before starting, fed
			// all along. The boot loop this guards against: an unfed
			// wait reset the board in every back-off, forever.
			v := b.boot(t, vmOpts{disk: newDisk(t, t.TempDir(), nil), name: "wd-crashloop"})
			v.ready(90 * time.Second)
			q := v.events.lines.len()
			n := v.console.len()
			for i := 0; i < 3; i++ {
				v.run("kill -KILL "+kioskdPid, 10*time.Second)
				// The fourth start already waits 5 s (one timeout).
				n, _ = v.waitConsole(n+1, "pos server listening", 60*time.Second)
			}
			v.run("kill -KILL "+kioskdPid, 10*time.Second)
			i, waitAt := v.waitConsole(n, "crash loop: waiting before starting", 30*time.Second)
			line := v.console.since(i)[0]
			if !strings.Contains(line, "unclean_starts=4") || !strings.Contains(line, "wait=10s") {
				t.Fatalf("crash-loop line %q, want 4 unclean starts and a 10 s wait", line)
			}
			_, upAt := v.waitConsole(i, "pos server listening", 60*time.Second)
			waited := upAt.Sub(waitAt)
			t.Logf("%s: crash-loop back-off %s with the watchdog armed at %s, no reset", b.name, waited.Round(10*time.Millisecond), wdTimeout)
			if waited < 2*wdTimeout-time.Second {
				t.Errorf("back-off lasted %s, want about %s", waited, 2*wdTimeout)
			}
			v.expectNoReset(q, 0, "crash-loop back-off")
		})
	})
}
