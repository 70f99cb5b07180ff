// Package fleettest runs a real MQTT broker for tests: Debian's
// mosquitto, on a loopback port of the test's own, with persistence on,
// started and stopped by its pid. Tests of the fleet shipper and of the
// daemon with [fleet] on use it; the firmware never links it.
package fleettest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const mosquittoPath = "/usr/sbin/mosquitto"

// Broker is a Mosquitto of the test's own, on a loopback port, with
// persistence on, so that a restart keeps sessions and retained
// statuses as a real broker's would.
type Broker struct {
	t    testing.TB
	port int
	dir  string
	conf string
	cmd  *exec.Cmd
	out  *lockedBuffer
	exit chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FreePort is a loopback TCP port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts Mosquitto and stops it when the test ends; extra lines
// go into its config. The test is skipped when mosquitto is missing.
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	if _, err := os.Stat(mosquittoPath); err != nil {
		t.Skipf("no broker to test against: %v (apt-get install mosquitto; .ci/run does)", err)
	}
	b := &Broker{t: t, port: FreePort(t), dir: t.TempDir(), out: &lockedBuffer{}}
	// Mosquitto started as root drops to the mosquitto user, which
	// cannot write its persistence file under a test's temporary
	// directory; without the file a restart loses the sessions and the
	// test would blame the shipper.
	if os.Geteuid() == 0 {
		extra = append(extra, "user root")
	}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	// max_queued_messages: Mosquitto drops QoS 1 messages for a
	// subscriber with more than 1000 queued (its default), which a test
	// consumer reading 8000 records at loopback speed can reach; that
	// would be the audit's loss, not the shipper's.
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest stderr\nmax_queued_messages 1000000\n%s\n",
		b.port, b.dir, strings.Join(extra, "\n"))
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run()
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto's log:\n%s", b.out)
		}
	})
	return b
}

// URL is the broker as [fleet] broker names it.
func (b *Broker) URL() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", b.port) }

// run runs Mosquitto and returns once its log says it is running: the
// line comes after the listener is bound, so no dial needs to poll.
func (b *Broker) run() {
	b.t.Helper()
	cmd := exec.Command(mosquittoPath, "-c", b.conf)
	pr, pw, err := os.Pipe()
	if err != nil {
		b.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("mosquitto: %v", err)
	}
	pw.Close()
	ready := make(chan struct{})
	b.cmd, b.exit = cmd, make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(b.out, line)
			if strings.Contains(line, " running") {
				once.Do(func() { close(ready) })
			}
		}
		pr.Close()
	}()
	go func() { _ = cmd.Wait(); close(b.exit) }()
	select {
	case <-ready:
	case <-b.exit:
		b.t.Fatalf("mosquitto exited before it was running:\n%s", b.out)
	case <-time.After(10 * time.Second):
		b.t.Fatalf("mosquitto not running after 10s:\n%s", b.out)
	}
}

// Stop ends Mosquitto by its pid and waits for it: SIGTERM makes it
// write its persistence file, as a broker's orderly restart does.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exit:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exit
	}
	b.cmd = nil
	if strings.Contains(b.out.String(), "Error saving") {
		b.t.Errorf("mosquitto could not save its persistence file: a restart loses sessions")
	}
}

// Restart stops the broker and starts it again on the same port and
// persistence directory, as an orderly broker restart.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.run()
}

// Resume starts a stopped broker again on the same port and persistence
// directory.
func (b *Broker) Resume() {
	b.t.Helper()
	b.run()
}
