// Package vm is the virtual board rig: the kioskd firmware binaries booted
// on Debian's arm64 and armhf kernels under QEMU (TCG), with real drivers
// (PL061 GPIO character device, i6300esb or softdog watchdog, a 16550
// printer UART, a virtio disk with ext4) and real power cuts. `make
// vm-test` runs it; without -vm every test here skips, saying so.
//
// The rig observes the board from outside the guest: the relay and LED
// lines through QEMU's pl061 trace events (the levels the PL061 model
// drives, written by the kernel's driver on kioskd's ioctls), resets and
// watchdog expiries through QMP events, the receipt through a host-side
// ESC/POS printer model on the UART, the POS link through the host's POS
// simulator on a forwarded loopback port. A technician's shell on the
// second UART runs commands inside (kioskd pay, kill, status).
//
// ota_test.go (`make vm-ota`, not part of vm-test) boots the board from
// A/B root slots on one partitioned disk instead of the initramfs, with
// the test as its bootloader, for the signed-update tests of issue 15.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/printer/printertest"
)

var (
	vmOn      = flag.Bool("vm", false, "run the virtual board tests (make vm-test)")
	vmArchs   = flag.String("vm.arch", "arm64,armv7", "boards to boot: arm64, armv7")
	vmDist    = flag.String("vm.dist", "../../dist", "directory with kioskd-linux-arm64 and kioskd-linux-armv7")
	vmCuts    = flag.Int("vm.cuts", 30, "power cuts per board in TestVMPowerCut (TestVMCompactCut: at most 10)")
	vmOTACuts = flag.Int("vm.otacuts", 1, "power cuts during the slot write in TestVMOTAPowerCut (make vm-ota N=...)")
	vmKeep    = flag.Bool("vm.keep", false, "keep each VM's directory (console, trace, disk) after the test")
)

// The virtual board's wiring: PL061 line offsets, named by the rig's
// device tree as guest/kioskd.toml expects. Line 3 is the one input the
// host can drive: QEMU raises it for the virt machine's power key
// (system_powerdown). The rig's device tree disables the gpio-keys node
// that claims it, so it is a plain input, GPIO25, for a price button.
const (
	lineRelay = 0 // GPIO17, active low
	lineGreen = 2 // GPIO22
	lineKey   = 3 // GPIO25, high while QEMU presses it
	lineAmber = 4 // GPIO23
	lineRed   = 5 // GPIO24
)

var lineNames = []string{"GPIO17", "GPIO27", "GPIO22", "GPIO25", "GPIO23", "GPIO24", "GPIO5", "GPIO6"}

// The MDB bus: the third PCI 16550 in the guest, its chardev's socket in
// the boot's directory on the host (TestVMMDB's VMC connects to it).
const (
	mdbTTY  = "/dev/ttyS2"
	mdbSock = "mdb.sock"
)

const (
	wdTimeout = 5 * time.Second        // guest/kioskd.toml
	relayLen  = 300 * time.Millisecond // guest/kioskd.toml
	secret    = "vm-rig-pos-secret-0123456789"
)

// board is one architecture of the virtual board.
type board struct {
	name    string // arm64, armv7
	qemu    string
	cpu     string
	wdt     string // the watchdog driver module: i6300esb, softdog
	kernel  string
	initrd  string
	dtb     string // with the line names
	plain   string // the machine's own as dumped, no line names
	dir     string
	prepErr error
}

var (
	boardsMu sync.Mutex
	boards   = map[string]*board{}
)

// TestMain removes the boards' directories (initramfs, device trees,
// each boot's console, trace and sockets) after a passing run; a failing
// one keeps them, and the failing test says where.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && !*vmKeep {
		for _, b := range boards {
			if b.dir != "" {
				os.RemoveAll(b.dir)
			}
		}
	}
	os.Exit(code)
}

// needBoard skips without -vm, fails when the board cannot be built, and
// returns it built once per run.
func needBoard(t *testing.T, name string) *board {
	t.Helper()
	if !*vmOn {
		t.Skip("virtual board tests run with -vm (make vm-test)")
	}
	boardsMu.Lock()
	defer boardsMu.Unlock()
	b := boards[name]
	if b == nil {
		b = &board{name: name}
		b.prepErr = b.prepare()
		boards[name] = b
	}
	if b.prepErr != nil {
		t.Fatalf("board %s: %v", name, b.prepErr)
	}
	return b
}

// eachBoard runs f as a subtest for each board of -vm.arch, the boards
// side by side: each QEMU runs its one vCPU on a host thread, and the
// tests mostly wait on the guest's clock.
func eachBoard(t *testing.T, f func(t *testing.T, b *board)) {
	if !*vmOn {
		t.Skip("virtual board tests run with -vm (make vm-test)")
	}
	for _, name := range strings.Split(*vmArchs, ",") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, needBoard(t, name))
		})
	}
}

func (b *board) prepare() error {
	switch b.name {
	case "arm64":
		b.qemu, b.cpu, b.wdt = "qemu-system-aarch64", "cortex-a72", "i6300esb"
	case "armv7":
		// Debian's armhf kernel has no i6300esb driver; softdog serves
		// the same /dev/watchdog ioctls and restarts the kernel.
		b.qemu, b.cpu, b.wdt = "qemu-system-arm", "cortex-a15", "softdog"
	default:
		return fmt.Errorf("unknown board (want arm64 or armv7)")
	}
	dir, err := os.MkdirTemp("", "kioskd-vm-"+b.name+"-")
	if err != nil {
		return err
	}
	b.dir = dir
	bin, err := filepath.Abs(filepath.Join(*vmDist, "kioskd-linux-"+b.name))
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (make cross builds it)", err)
	}
	out, err := exec.Command("sh", "fetch.sh", b.name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fetch.sh: %v\n%s", err, out)
	}
	cache := strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
	ks, _ := filepath.Glob(filepath.Join(cache, "kernel/boot/vmlinuz-*"))
	if len(ks) != 1 {
		return fmt.Errorf("want one kernel in %s, found %v", cache, ks)
	}
	b.kernel = ks[0]
	b.initrd = filepath.Join(dir, "initramfs.cpio.gz")
	if out, err := exec.Command("sh", "mkinitramfs.sh", b.name, bin, b.initrd).CombinedOutput(); err != nil {
		return fmt.Errorf("mkinitramfs.sh: %v\n%s", err, out)
	}
	// The machine's own device tree, dumped with the very options the
	// board boots with, and the same with the PL061's lines named.
	b.plain = filepath.Join(dir, "virt.dtb")
	args := append(b.machineArgs(), "-machine", "dumpdtb="+b.plain)
	if out, err := exec.Command(b.qemu, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("dumpdtb: %v\n%s", err, out)
	}
	dts, err := exec.Command("dtc", "-q", "-I", "dtb", "-O", "dts", b.plain).Output()
	if err != nil {
		return fmt.Errorf("dtc: %w", err)
	}
	named, err := nameLines(dts)
	if err != nil {
		return err
	}
	b.dtb = filepath.Join(dir, "vboard.dtb")
	cmd := exec.Command("dtc", "-q", "-I", "dts", "-O", "dtb", "-o", b.dtb)
	cmd.Stdin = bytes.NewReader(named)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dtc: %v\n%s", err, out)
	}
	return nil
}

var (
	pl061Node    = regexp.MustCompile(`(pl061@[0-9a-f]+ \{[^}]*?gpio-controller;)`)
	gpioKeysNode = regexp.MustCompile(`(gpio-keys \{\s*compatible = "gpio-keys";)`)
)

// nameLines adds gpio-line-names to the PL061 node of a device tree
// source, what a board's own device tree does for its header pins, and
// disables the power key's gpio-keys node: Debian's armhf kernel has the
// driver built in, and it would hold line 3.
func nameLines(dts []byte) ([]byte, error) {
	if len(pl061Node.FindAllIndex(dts, -1)) != 1 {
		return nil, errors.New("device tree: want exactly one pl061 node")
	}
	if len(gpioKeysNode.FindAllIndex(dts, -1)) != 1 {
		return nil, errors.New("device tree: want exactly one gpio-keys node")
	}
	dts = gpioKeysNode.ReplaceAll(dts, []byte("$1\n\t\tstatus = \"disabled\";"))
	quoted := make([]string, len(lineNames))
	for i, n := range lineNames {
		quoted[i] = strconv.Quote(n)
	}
	return pl061Node.ReplaceAll(dts, []byte("$1\n\t\tgpio-line-names = "+strings.Join(quoted, ", ")+";")), nil
}

// machineArgs are the options that shape the device tree.
func (b *board) machineArgs() []string {
	return []string{"-M", "virt", "-cpu", b.cpu, "-smp", "1", "-m", "256M", "-nodefaults", "-display", "none"}
}

// newDisk makes the data partition as provisioning leaves it: the POS
// secret (0600) and nothing else; extra files go in too (path: content).
func newDisk(t *testing.T, dir string, extra map[string]string) string {
	t.Helper()
	return newDiskSized(t, dir, extra, "64M")
}

// newDiskSized is newDisk with a partition of size (mkfs.ext4's syntax).
func newDiskSized(t *testing.T, dir string, extra map[string]string, size string) string {
	t.Helper()
	src := filepath.Join(dir, "data-src")
	files := map[string]string{"secrets/pos.secret": secret}
	for k, v := range extra {
		files[k] = v
	}
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "data.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "kioskdata", "-d", src, img, size).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return img
}

// vmOpts vary a boot.
type vmOpts struct {
	disk     string // data partition image (required)
	plainDTB bool   // boot without the line names
	iops     int    // throttle the disk to this many operations per second (0: not)
	name     string // of the boot, for its files
	// The update tests' board (ota_test.go): a kernel and initramfs of
	// its own (read out of the root slot booted), more command line, and
	// QEMU exiting at the guest's reset or reboot instead of restarting
	// it, so that the host's bootloader chooses the next boot.
	kernel, initrd string
	cmdline        string
	noReboot       bool
}

// VM is one running QEMU process: one boot, or several when the guest
// resets itself (the watchdog), until it is killed.
type VM struct {
	t     *testing.T
	b     *board
	dir   string
	cmd   *exec.Cmd
	start time.Time
	done  chan struct{} // closed when QEMU exited
	pos   string        // host address forwarded to the guest's POS port

	console *lines
	gpio    *gpioLog
	events  *qmpLog
	qmp     net.Conn // commands to QEMU (qmpExec); events are read from it
	printer *printertest.Fake
	pages   *lines // one line per page cut, as the printer model sees them

	shMu  sync.Mutex
	sh    net.Conn
	shOut *lines
	shSeq int
}

// boot starts QEMU. The VM is killed when the test ends.
func (b *board) boot(t *testing.T, o vmOpts) *VM {
	t.Helper()
	if o.name == "" {
		o.name = "boot"
	}
	dir, err := os.MkdirTemp(b.dir, o.name+"-")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	v := &VM{t: t, b: b, dir: dir, done: make(chan struct{}), pos: fmt.Sprintf("127.0.0.1:%d", port),
		console: newLines(), gpio: newGPIOLog(), events: newQMPLog(), shOut: newLines(), printer: &printertest.Fake{},
		pages: newLines()}
	v.printer.OnPage = func(p printertest.Page) { v.pages.add(p.Text(), time.Now()) }
	// Without the line names the machine's own device tree: QEMU's, as
	// it makes it (booting the dumped copy as it is hangs: it is padded
	// to 1 MiB).
	var dtbArgs []string
	if !o.plainDTB {
		dtbArgs = []string{"-dtb", b.dtb}
	}
	kernel, initrd, cmdline := b.kernel, b.initrd, "console=ttyAMA0 kioskd.wdt="+b.wdt
	if o.kernel != "" {
		kernel, initrd = o.kernel, o.initrd
	}
	if o.cmdline != "" {
		cmdline += " " + o.cmdline
	}
	if o.noReboot {
		dtbArgs = append(dtbArgs, "-no-reboot")
	}
	drive := "file=" + o.disk + ",if=none,id=data,format=raw,cache=writeback"
	if o.iops > 0 {
		drive += fmt.Sprintf(",throttling.iops-total=%d", o.iops)
	}
	args := append(append(b.machineArgs(), dtbArgs...),
		"-kernel", kernel, "-initrd", initrd,
		"-append", cmdline,
		"-serial", "stdio",
		"-msg", "timestamp=on", "-trace", "pl061_update",
		"-qmp", "unix:"+filepath.Join(dir, "qmp.sock")+",server=on,wait=off",
		"-drive", drive, "-device", "virtio-blk-pci,drive=data",
		// restrict=on: the guest reaches nothing but the forwarded port.
		"-netdev", fmt.Sprintf("user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:%d-:8080", port),
		"-device", "virtio-net-pci,netdev=net,romfile=",
		// The printer is the first PCI 16550 (ttyS0), the technician's
		// shell the second (ttyS1), the MDB bus the third (ttyS2,
		// mdbTTY). The MDB port is on every boot: with no client on its
		// socket and no [mdb] in the config it is an idle UART, and one
		// machine for all tests keeps their device numbering the same.
		"-chardev", "socket,id=prn,path="+filepath.Join(dir, "prn.sock")+",server=on,wait=off",
		"-device", "pci-serial,chardev=prn,addr=0x8",
		"-chardev", "socket,id=sh,path="+filepath.Join(dir, "sh.sock")+",server=on,wait=off",
		"-device", "pci-serial,chardev=sh,addr=0x9",
		"-chardev", "socket,id=mdb,path="+filepath.Join(dir, mdbSock)+",server=on,wait=off",
		"-device", "pci-serial,chardev=mdb,addr=0xa",
	)
	if b.wdt == "i6300esb" {
		args = append(args, "-device", "i6300esb", "-action", "watchdog=reset")
	}
	v.cmd = exec.Command(b.qemu, args...)
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := v.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	conLog, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	errLog, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); v.console.read(stdout, conLog) }()
	go func() { defer readers.Done(); v.gpio.read(stderr, errLog) }()
	go func() {
		readers.Wait()
		v.cmd.Wait()
		conLog.Close()
		errLog.Close()
		close(v.done)
	}()
	t.Cleanup(func() {
		v.kill()
		if t.Failed() || *vmKeep {
			t.Logf("%s: kept %s", o.name, dir)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v.qmp = v.dial(ctx, "qmp.sock")
	go v.events.read(v.qmp)
	prn := v.dial(ctx, "prn.sock")
	go v.printer.Serve(prn)
	v.sh = v.dial(ctx, "sh.sock")
	go v.shOut.read(v.sh, io.Discard)
	return v
}

// dial connects to one of QEMU's unix sockets once it exists.
func (v *VM) dial(ctx context.Context, name string) net.Conn {
	v.t.Helper()
	path := filepath.Join(v.dir, name)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			v.t.Fatalf("QEMU's %s: %v", name, err)
		case <-v.done:
			v.t.Fatalf("QEMU exited before %s came up: %s", name, v.gpio.tail())
		case <-tick.C:
		}
	}
}

// kill is the power cut: SIGKILL, the guest's page cache and every
// request the disk had not completed are gone.
func (v *VM) kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-v.done
}

// waitConsole waits for a console line containing s, from line index
// from on; it returns the line's index and arrival time.
func (v *VM) waitConsole(from int, s string, d time.Duration) (int, time.Time) {
	v.t.Helper()
	i, at, ok := v.console.wait(from, func(l string) bool { return strings.Contains(l, s) }, d, v.done)
	if !ok {
		v.t.Fatalf("no console line with %q within %s; console ends:\n%s", s, d, v.console.tail(30))
	}
	return i, at
}

// ready waits for kioskd listening and the shell answering.
func (v *VM) ready(d time.Duration) time.Time {
	v.t.Helper()
	_, at := v.waitConsole(0, "pos server listening", d)
	v.shellReady(d)
	return at
}

var endRe = regexp.MustCompile(`^@@(\d+) (\d+)$`)

// shellReady turns the shell's echo off and waits until it answers.
func (v *VM) shellReady(d time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, _, err := v.runErr("stty -echo; PS1=; PS2=", time.Second); err == nil {
			return
		}
	}
	v.t.Fatalf("the guest shell does not answer within %s", d)
}

// run runs a command in the guest's shell and returns its output and
// exit status.
func (v *VM) run(cmd string, d time.Duration) (string, int) {
	v.t.Helper()
	out, rc, err := v.runErr(cmd, d)
	if err != nil {
		v.t.Fatalf("guest: %s: %v (output %q)", cmd, err, out)
	}
	return out, rc
}

// send types a command into the guest's shell without waiting for it:
// for one the shell does not outlive.
func (v *VM) send(cmd string) {
	v.t.Helper()
	v.shMu.Lock()
	defer v.shMu.Unlock()
	if _, err := fmt.Fprintf(v.sh, "%s\n", cmd); err != nil {
		v.t.Fatalf("guest: %s: %v", cmd, err)
	}
}

func (v *VM) runErr(cmd string, d time.Duration) (string, int, error) {
	v.shMu.Lock()
	defer v.shMu.Unlock()
	v.shSeq++
	seq := v.shSeq
	from := v.shOut.len()
	if _, err := fmt.Fprintf(v.sh, "%s\necho \"@@%d $?\"\n", cmd, seq); err != nil {
		return "", 0, err
	}
	want := strconv.Itoa(seq)
	i, _, ok := v.shOut.wait(from, func(l string) bool {
		m := endRe.FindStringSubmatch(l)
		return m != nil && m[1] == want
	}, d, v.done)
	all := v.shOut.since(from)
	if !ok {
		return strings.Join(all, "\n"), 0, fmt.Errorf("no answer within %s", d)
	}
	rc, _ := strconv.Atoi(endRe.FindStringSubmatch(all[i-from])[2])
	var out []string
	for _, l := range all[:i-from] {
		if strings.Contains(l, "@@") { // an echo of ours before stty -echo took
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), rc, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lines is a stream's lines with their arrival times.
type lines struct {
	mu     sync.Mutex
	text   []string
	at     []time.Time
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{})} }

func (l *lines) read(r io.Reader, copyTo io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(copyTo, s)
		l.add(s, time.Now())
	}
}

func (l *lines) add(s string, at time.Time) {
	l.mu.Lock()
	l.text = append(l.text, s)
	l.at = append(l.at, at)
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
}

func (l *lines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.text)
}

func (l *lines) since(i int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.text[min(i, len(l.text)):]...)
}

func (l *lines) all() ([]string, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.text...), append([]time.Time(nil), l.at...)
}

func (l *lines) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.text[max(0, len(l.text)-n):], "\n")
}

// wait returns the first line from index from that match accepts.
func (l *lines) wait(from int, match func(string) bool, d time.Duration, done <-chan struct{}) (int, time.Time, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.text); i++ {
			if match(l.text[i]) {
				at := l.at[i]
				l.mu.Unlock()
				return i, at, true
			}
		}
		from = len(l.text)
		ch := l.notify
		l.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			// The stream may still hold lines read before the exit.
			l.mu.Lock()
			n := len(l.text)
			l.mu.Unlock()
			if n == from {
				return 0, time.Time{}, false
			}
		case <-timer.C:
			return 0, time.Time{}, false
		}
	}
}

// qmpLog collects QMP events.
type qmpLog struct {
	lines *lines
}

func newQMPLog() *qmpLog { return &qmpLog{lines: newLines()} }

type qmpEvent struct {
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

func (e qmpEvent) at() time.Time {
	return time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
}

func (q *qmpLog) read(c net.Conn) {
	fmt.Fprintln(c, `{"execute":"qmp_capabilities"}`)
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var e qmpEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
			q.lines.add(sc.Text(), e.at())
		}
	}
}

// wait returns the first event named name from index from.
func (q *qmpLog) wait(from int, name string, d time.Duration, done <-chan struct{}) (qmpEvent, int, bool) {
	i, _, ok := q.lines.wait(from, func(l string) bool {
		var e qmpEvent
		return json.Unmarshal([]byte(l), &e) == nil && e.Event == name
	}, d, done)
	if !ok {
		return qmpEvent{}, 0, false
	}
	var e qmpEvent
	json.Unmarshal([]byte(q.lines.since(i)[0]), &e)
	return e, i, true
}

func (q *qmpLog) names() []string {
	text, _ := q.lines.all()
	var out []string
	for _, l := range text {
		var e qmpEvent
		json.Unmarshal([]byte(l), &e)
		out = append(out, e.Event+string(e.Data))
	}
	return out
}
