package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// mdbTraceUsage is the table's usage line for mdb trace; runMdbTrace
// builds its flag set from it too (TestHelpFromTable keeps them one).
const mdbTraceUsage = "-device tcp://HOST:PORT|PATH [-transport stream|uart] [-address 10|60] [-approve] [-duration D]"

// cmdMdbTrace answers a VMC as a fresh cashless device, with no payment
// behind it, and prints each exchange decoded and timestamped until
// SIGINT or SIGTERM: the bench tool for a VMC that keeps resetting its
// reader. The daemon's own live trace is for later: it will stream the
// bus loop's trace entries over the control API, since the bus has one
// master and this command cannot listen beside a running kioskd.
func cmdMdbTrace(e *cli.Env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runMdbTrace(ctx, e, args)
}

func runMdbTrace(ctx context.Context, e *cli.Env, args []string) int {
	fs := cli.NewFlags(e.Stderr, "kioskd", "mdb trace", mdbTraceUsage)
	device := fs.String("device", "", "the bus: tcp://HOST:PORT (a simulator listening, dialled as the peripheral) or a tty path")
	transport := fs.String("transport", "stream", "stream (two bytes a word, for simulators and bus tools) or uart (PL011, mark/space parity)")
	address := fs.String("address", "10", "the cashless address to answer at, hex: 10 or 60")
	approve := fs.Bool("approve", false, "approve every vend request at its price (default: deny it at once)")
	duration := fs.Duration("duration", 0, "stop after this long (default: until Ctrl-C)")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(e.Stderr, "kioskd: mdb trace: "+format+"\n", a...)
		fs.Usage()
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *device == "" {
		return usage("-device is required")
	}
	var addr byte
	switch strings.TrimSuffix(strings.ToLower(*address), "h") {
	case "10":
		addr = mdb.AddrCashless1
	case "60":
		addr = mdb.AddrCashless2
	default:
		return usage("-address %q: 10 or 60", *address)
	}
	var tr devmdb.Transport
	switch *transport {
	case "stream":
		s, err := devmdb.OpenStream(*device, devmdb.StreamOptions{})
		if err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
			return exitFail
		}
		tr = s
	case "uart":
		u, err := devmdb.OpenUART(*device)
		if err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
			return exitFail
		}
		tr = u
	default:
		return usage("-transport %q: stream or uart", *transport)
	}
	defer tr.Close()
	d, err := mdb.New(mdb.Config{Address: addr})
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	fmt.Fprintf(e.Stderr, "kioskd: mdb trace: answering at %02Xh on %s (%s); vend requests are %s\n",
		addr, *device, *transport, map[bool]string{true: "approved", false: "denied"}[*approve])

	// The trace callback runs on the bus loop's goroutine, after each
	// reply is written; events come on another. One lock keeps lines
	// whole.
	var mu sync.Mutex
	var tracer mdb.Tracer
	var line []byte
	out := e.Stdout
	trace := func(te devmdb.TraceEntry) {
		mu.Lock()
		defer mu.Unlock()
		line = te.Time.AppendFormat(line[:0], "15:04:05.000000 ")
		line = tracer.Append(line, te.Unit, te.Reply)
		if te.Reply != nil {
			line = fmt.Appendf(line, " (%dµs)", te.Latency.Microseconds())
		}
		line = append(line, '\n')
		out.Write(line)
	}
	loop := devmdb.NewLoop(tr, d, devmdb.Options{Trace: trace})
	evDone := make(chan struct{})
	evCtx, evStop := context.WithCancel(ctx)
	go func() {
		defer close(evDone)
		mdbTraceEvents(evCtx, d, *approve, &mu, out)
	}()
	err = loop.Run(ctx)
	evStop()
	<-evDone
	s := loop.Stats()
	fmt.Fprintf(e.Stderr, "kioskd: mdb trace: %d replies, latency p50 %v p99 %v max %v, %d later than %v\n",
		s.Count, s.P50, s.P99, s.Max, s.Late, devmdb.ReplyBudget)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	return exitOK
}

// mdbTraceEvents prints the device's events and plays the payment side:
// approve or deny each vend request at once.
func mdbTraceEvents(ctx context.Context, d *mdb.Device, approve bool, mu *sync.Mutex, out io.Writer) {
	var evs []mdb.Event
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.Notify():
		}
		evs = d.Events(evs[:0])
		for _, ev := range evs {
			mu.Lock()
			fmt.Fprintf(out, "%s event %v", time.Now().Format("15:04:05.000000"), ev.Kind)
			if ev.Vend != 0 {
				fmt.Fprintf(out, " vend=%d price=%d item=%d", ev.Vend, ev.Price, ev.Item)
			}
			if ev.Cause != mdb.CauseNone {
				fmt.Fprintf(out, " cause=%d", ev.Cause)
			}
			fmt.Fprintln(out)
			mu.Unlock()
			if ev.Kind != mdb.EventVendRequested {
				continue
			}
			if approve {
				d.Approve(ev.Vend, ev.Price)
			} else {
				d.Deny(ev.Vend)
			}
		}
	}
}
