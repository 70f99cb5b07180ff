package mobypay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The flood figures (issue 9, defect 3's targets): p50/p99 of a real
// request -> result round trip while another process floods the server
// with 1000 connections/s, from another host and from the POS's own, and
// the server process's peak RSS, heap and open fds. Off by default (the
// test flag goes after the package, or run it in this directory):
//
//	go test -run TestFloodFigures -count=1 -v ./protocol/mobypay/ -flood
//	(cd protocol/mobypay && go test -run TestFloodFigures -flood -v)
//
// Targets: p99 < 50 ms, RSS < 40 MB. The log goes to a writer that drains
// at 115200 baud, like the image's serial console.

var (
	floodFlag     = flag.Bool("flood", false, "run TestFloodFigures (a 1000 conn/s flood, about 10 s)")
	floodRate     = flag.Int("flood.rate", 1000, "TestFloodFigures: connections per second")
	floodDuration = flag.Duration("flood.for", 3*time.Second, "TestFloodFigures: length of each flood")
)

const floodHelperEnv = "KIOSKD_FLOOD_HELPER" // addr,from,rate,duration

// TestFloodHelper is the flooding process TestFloodFigures starts, so that
// the attacker's sockets and memory are not counted as the server's. It
// dials rate connections per second from one address for the duration,
// holds the last 100 open, and sends each nothing, garbage or an unsigned
// ping.
func TestFloodHelper(t *testing.T) {
	spec := os.Getenv(floodHelperEnv)
	if spec == "" {
		t.Skip("only run by TestFloodFigures")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 4 {
		t.Fatalf("bad %s=%q", floodHelperEnv, spec)
	}
	addr, from := parts[0], parts[1]
	rate, _ := strconv.Atoi(parts[2])
	dur, _ := time.ParseDuration(parts[3])
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	var open []net.Conn
	dialed, failed := 0, 0
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for elapsed := time.Duration(0); elapsed < dur; elapsed = time.Since(start) {
		<-tick.C
		// Catch up with the schedule: rate per second, bounded per tick.
		for due := min(int(time.Since(start).Seconds()*float64(rate)), dialed+failed+rate/10); dialed+failed < due; {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				failed++
				continue
			}
			dialed++
			c.SetWriteDeadline(time.Now().Add(time.Second))
			switch dialed % 3 {
			case 1:
				c.Write([]byte("GET / HTTP/1.1\r\nHost: kiosk\r\n\r\n"))
			case 2:
				c.Write([]byte(`{"type":"ping"}` + "\n"))
			}
			open = append(open, c)
			if len(open) > 100 {
				open[0].Close()
				open = open[1:]
			}
		}
	}
	for _, c := range open {
		c.Close()
	}
	fmt.Printf("FLOOD dialed=%d failed=%d in=%s\n", dialed, failed, time.Since(start).Round(time.Millisecond))
}

// serialWriter drains like a 115200-baud 8N1 line: each write takes ten
// bit times per byte. It stands in for stderr on the serial console.
type serialWriter struct {
	mu    sync.Mutex
	lines atomic.Int64
}

func (w *serialWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	time.Sleep(time.Duration(len(p)) * 10 * time.Second / 115200) // the line's speed, not synchronisation
	w.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

// resultHandler hands each transaction_result's txn_id to the test, and
// signals the first Connected.
type resultHandler struct {
	results   chan string
	connected chan struct{}
	once      sync.Once
}

func (h *resultHandler) Message(m *Message) {
	if m.Type == TypeTransactionResult {
		h.results <- m.TxnID
	}
}
func (h *resultHandler) Late(*Message, error) {}
func (h *resultHandler) ConnState(s ConnState, _ string) {
	if s == Connected {
		h.once.Do(func() { close(h.connected) })
	}
}

// answerPOS plays a POS that answers every request with a signed ack and
// a signed success, until its connection ends.
func answerPOS(c net.Conn) {
	fr := NewFrameReader(c, 0)
	in, out := NewCodec(srvSecret), NewCodec(srvSecret)
	var m Message
	var buf []byte
	for {
		f, err := fr.Next()
		if err != nil {
			return
		}
		if in.Open(f) != nil || in.Decode(&m) != nil || m.Type != TypeTransactionRequest {
			continue
		}
		buf = buf[:0]
		for _, p := range []string{
			`{"type": "ack", "txn_id": "%s", "status": "processing", "pos_id": "POS001", "timestamp": "%d", "nonce": "%s"}`,
			`{"type": "transaction_result", "txn_id": "%s", "status": "success", "pos_id": "POS001", "transaction_id": "000410", "amount": 10.0, "timestamp": "%d", "nonce": "%s"}`,
		} {
			buf, _ = out.Seal(buf, fmt.Appendf(nil, p, m.TxnID, time.Now().UnixMilli(), rand.Text()))
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// peaks samples the process's RSS, heap and open fds.
type peaks struct {
	mu              sync.Mutex
	rss, heap       int64 // bytes
	fds, goroutines int
	sample          []metrics.Sample
	stop, done      chan struct{}
}

func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

func (p *peaks) read() (rss, heap int64, fds, gs int) {
	metrics.Read(p.sample)
	return vmRSS(), int64(p.sample[0].Value.Uint64()), openFDs(), runtime.NumGoroutine()
}

// start resets the peaks and samples every 20 ms until stopPhase.
func (p *peaks) start() {
	p.sample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	p.rss, p.heap, p.fds, p.goroutines = p.read()
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			rss, heap, fds, gs := p.read()
			p.mu.Lock()
			p.rss, p.heap, p.fds, p.goroutines = max(p.rss, rss), max(p.heap, heap), max(p.fds, fds), max(p.goroutines, gs)
			p.mu.Unlock()
		}
	}()
}

func (p *peaks) stopPhase() (rss, heap int64, fds, gs int) {
	close(p.stop)
	<-p.done
	return p.rss, p.heap, p.fds, p.goroutines
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func TestFloodFigures(t *testing.T) {
	if !*floodFlag {
		t.Skip("flood figures: run with -flood")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	console := &serialWriter{}
	h := &resultHandler{results: make(chan string, 16), connected: make(chan struct{})}
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: srvSecret,
		Log: slog.New(slog.NewTextHandler(console, nil))}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
	}()

	pos := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	go answerPOS(pos)
	mobypaytest.Await(t, h.connected, "the POS's session")
	kc := NewCodec(srvSecret)
	seq := 0
	roundTrip := func() (time.Duration, error) {
		seq++
		txn := "TXN" + strconv.Itoa(seq)
		f, err := kc.AppendTransactionRequest(nil, Header{TxnID: txn, KioskID: "KIOSK001", Nonce: rand.Text(), Timestamp: time.Now().UnixMilli()}, 1000, ModeCard)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := srv.Send(f); err != nil {
			return 0, err
		}
		timeout := time.After(5 * time.Second)
		for {
			select {
			case got := <-h.results:
				if got == txn {
					return time.Since(start), nil
				}
			case <-timeout:
				return 0, fmt.Errorf("no result for %s within 5 s", txn)
			}
		}
	}
	// The first round trip proves the POS's session. Each one is bounded,
	// and so is how long the session may take to count as proven.
	proven := time.Now().Add(srvWait)
	for srv.Stats().Received.Load() == 0 {
		if time.Now().After(proven) {
			t.Fatalf("the POS's session not proven within %s", srvWait)
		}
		if _, err := roundTrip(); err != nil {
			t.Fatal(err)
		}
	}

	runtime.GC()
	var pk peaks
	phase := func(name, from string) {
		var flood *exec.Cmd
		var out bytes.Buffer
		if from != "" {
			flood = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFloodHelper$", "-test.count=1")
			flood.Env = append(os.Environ(), floodHelperEnv+"="+strings.Join([]string{
				srv.Addr().String(), from, strconv.Itoa(*floodRate), floodDuration.String()}, ","))
			flood.Stdout, flood.Stderr = &out, &out
		}
		st := srv.Stats()
		rej, pend, lines := st.Rejected.Load(), st.Pending.Load(), console.lines.Load()
		pk.start()
		if flood != nil {
			if err := flood.Start(); err != nil {
				t.Fatal(err)
			}
		}
		var lat []time.Duration
		failed := 0
		end := time.Now().Add(*floodDuration)
		// A payment every 10 ms: far more than a kiosk sees, and few
		// enough nonces for the replay guard (4096 in two minutes).
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		for time.Now().Before(end) {
			<-pace.C
			d, err := roundTrip()
			if err != nil {
				failed++
				t.Errorf("%s: %v", name, err)
				if failed > 3 {
					break
				}
				continue
			}
			lat = append(lat, d)
		}
		flooded := ""
		if flood != nil {
			if err := flood.Wait(); err != nil {
				t.Errorf("flood helper: %v\n%s", err, out.String())
			}
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "FLOOD ") {
					flooded = strings.TrimPrefix(sc.Text(), "FLOOD ")
				}
			}
		}
		rss, heap, fds, gs := pk.stopPhase()
		t.Logf("%-28s round trips %4d (failed %d)  p50 %6s  p99 %6s  max %6s | peak RSS %5.1f MB  heap %5.1f MB  fds %4d  goroutines %4d | flood %s  refused %d  held %d  log lines %d",
			name, len(lat), failed,
			percentile(lat, 0.50).Round(10*time.Microsecond), percentile(lat, 0.99).Round(10*time.Microsecond),
			percentile(lat, 1).Round(10*time.Microsecond),
			float64(rss)/(1<<20), float64(heap)/(1<<20), fds, gs,
			flooded, st.Rejected.Load()-rej, st.Pending.Load()-pend, console.lines.Load()-lines)
		if p99 := percentile(lat, 0.99); from != "" && p99 >= 50*time.Millisecond {
			t.Errorf("%s: p99 %s, target < 50 ms", name, p99)
		}
		if from != "" && rss >= 40<<20 {
			t.Errorf("%s: peak RSS %.1f MB, target < 40 MB", name, float64(rss)/(1<<20))
		}
	}
	phase("no flood", "")
	phase("flood from 127.0.0.2", "127.0.0.2")
	phase("flood from the POS's host", "127.0.0.1")
	if peer, _ := srv.Peer(); peer != pos.LocalAddr().String() {
		t.Errorf("the session is %s, not the POS %s", peer, pos.LocalAddr())
	}
}
