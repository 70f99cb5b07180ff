package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

var floodFigures = flag.Bool("flood", false, "run TestFloodFigures: payments through a kioskd under a connection flood, stderr drained at 115200 baud")

// consoleBaud is the image's serial console: 115200 8N1 moves 11520
// bytes a second, which is all a log line written to stderr can get.
const consoleBaud = 115200

// drainAtBaud reads r no faster than a serial line at baud would take
// it, and hands complete lines to lines (dropping when nobody reads).
func drainAtBaud(r io.Reader, baud int, lines chan<- string) {
	perTick := baud / 10 / 100 // bytes per 10 ms
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, perTick)
	var partial []byte
	for range tick.C {
		n, err := r.Read(buf)
		partial = append(partial, buf[:n]...)
		for {
			i := slices.Index(partial, '\n')
			if i < 0 {
				break
			}
			select {
			case lines <- string(partial[:i]):
			default:
			}
			partial = partial[i+1:]
		}
		if err != nil {
			close(lines)
			return
		}
	}
}

// procStatus reads a field (in kB) of /proc/PID/status.
func procStatus(pid int, field string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// autoPOS answers every transaction_request with ack processing and a
// matching success, like a terminal whose customer always pays.
func autoPOS(ctx context.Context, t *testing.T, addr string) *posPeer {
	p := dialPOS(t, addr)
	// A FrameReader's read error is final, so no read deadline: the
	// connection is closed when ctx ends instead.
	context.AfterFunc(ctx, func() { p.conn.Close() })
	go func() {
		for {
			frame, err := p.fr.Next()
			if err != nil {
				return
			}
			if p.codec.Open(frame) != nil {
				continue
			}
			var m mobypay.Message
			if p.codec.Decode(&m) != nil || m.Type != mobypay.TypeTransactionRequest {
				continue
			}
			p.sendNoFail(fmt.Sprintf(`"type":"ack","status":"processing","txn_id":%q`, m.TxnID))
			p.sendNoFail(fmt.Sprintf(`"type":"transaction_result","status":"success","txn_id":%q,"amount":%s,"transaction_id":"000410"`, m.TxnID, strconv.FormatFloat(m.Amount, 'f', 2, 64)))
		}
	}()
	return p
}

// flood opens rate connections a second from the local address src to
// addr until ctx ends. Each connection writes one garbage line and is held
// until the kiosk closes it or for at most hold.
func flood(ctx context.Context, src, addr string, rate int, hold time.Duration) (opened *atomic.Int64) {
	opened = new(atomic.Int64)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			go func() {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return
				}
				opened.Add(1)
				defer c.Close()
				c.SetDeadline(time.Now().Add(hold))
				c.Write([]byte("{\"type\":\"hello\"}\n"))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return opened
}

type payFigures struct {
	n        int
	p50, p99 time.Duration
	failed   int
}

// payLoop runs n sequential payments and measures request to final.
func payLoop(t *testing.T, c *control.Client, n int) payFigures {
	var d []time.Duration
	failed := 0
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ev, err := c.Follow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		tx, _, err := c.Pay(ctx, control.PayRequest{Amount: "1.00", Mode: "card"}, "")
		if err != nil {
			t.Logf("payment %d refused: %v", i, err)
			failed++
			cancel()
			continue
		}
		for !control.Over(tx) {
			e, ok := <-ev
			if !ok {
				break
			}
			if e.Txn != nil && e.Txn.ID == tx.ID {
				tx = *e.Txn
			}
		}
		cancel()
		if tx.State != payment.Approved || tx.Vend != payment.VendReleased {
			failed++
			t.Logf("payment %d: %s", i, tx.Summary())
			continue
		}
		d = append(d, time.Since(began))
	}
	slices.Sort(d)
	f := payFigures{n: n, failed: failed}
	if len(d) > 0 {
		f.p50, f.p99 = d[len(d)/2], d[(len(d)*99)/100]
	}
	return f
}

// TestFloodFigures measures what issue 9 asks for: the delay of real
// payments and the daemon's memory and fds while 1000 connections a
// second arrive from another loopback host and from the POS's own
// address, with stderr drained at the serial console's speed. It is a
// measurement, run with: go test ./cmd/kioskd -run TestFloodFigures -flood -v
func TestFloodFigures(t *testing.T) {
	if !*floodFigures {
		t.Skip("a measurement; run with -flood")
	}
	dir := t.TempDir()
	cfgPath := writeTestConfig(t, dir, crashConfig(10*time.Millisecond))
	cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "KIOSKD_TEST_AS_DAEMON=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
	lines := make(chan string, 1024)
	go drainAtBaud(pr, consoleBaud, lines)
	var posAddr string
	for posAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("kioskd exited before it started")
			}
			if m := posListenRE.FindStringSubmatch(l); m != nil && strings.Contains(l, "kioskd started") {
				posAddr = m[1]
			}
		case <-time.After(15 * time.Second):
			t.Fatal("kioskd did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	cf := clientFlags{config: cfgPath}
	c, err := cf.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	autoPOS(ctx, t, posAddr)
	// The first payment proves the POS's session.
	deadline := time.Now().Add(10 * time.Second)
	for payLoop(t, c, 1).failed > 0 {
		if time.Now().After(deadline) {
			t.Fatal("no payment without a flood")
		}
	}
	pid := cmd.Process.Pid
	base := payLoop(t, c, 200)
	t.Logf("no flood: %d payments, %d failed, p50 %s p99 %s; RSS %d kB, %d fds",
		base.n, base.failed, base.p50, base.p99, procStatus(pid, "VmRSS"), openFDs(pid))
	var wg sync.WaitGroup
	for _, src := range []string{"127.0.0.2", "127.0.0.1"} {
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		opened := flood(fctx, src, posAddr, 1000, 2*time.Second)
		peakFD := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-fctx.Done():
					return
				case <-tk.C:
					peakFD = max(peakFD, openFDs(pid))
				}
			}
		}()
		// Let the flood build up before measuring.
		<-time.After(time.Second)
		f := payLoop(t, c, 200)
		fcancel()
		wg.Wait()
		t.Logf("flood from %s (%d connections): %d payments, %d failed, p50 %s p99 %s (p99 delay over no flood: %s); peak RSS %d kB, peak fds %d",
			src, opened.Load(), f.n, f.failed, f.p50, f.p99, f.p99-base.p99, procStatus(pid, "VmHWM"), peakFD)
	}
}

// sendNoFail is send for a goroutine other than the test's: errors end
// the POS silently (the payment then shows as failed).
func (p *posPeer) sendNoFail(fields string) {
	payload := fmt.Sprintf(`{%s,"pos_id":"POS001","timestamp":"%d","nonce":"%s"}`, fields, time.Now().UnixMilli(), strconv.FormatInt(time.Now().UnixNano(), 36))
	frame, err := p.codec.Seal(nil, []byte(payload))
	if err != nil {
		return
	}
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	p.conn.Write(frame)
}
