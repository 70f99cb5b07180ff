package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/control"
	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// mdbTraceUsage is the table's usage line for mdb trace; runMdbTrace
// builds its flag set from it too (TestHelpFromTable keeps them one).
// Without -device it reads the running daemon's trace; with it, it is the
// bench tool that answers the VMC itself.
const mdbTraceUsage = "[-config FILE | -control PATH] [-last N] [-follow=false] [-duration D] | -device tcp://HOST:PORT|PATH [-transport stream|uart] [-address 10|60] [-approve] [-duration D]"

// cmdMdbTrace prints the bus trace, decoded and timestamped, until
// SIGINT or SIGTERM: the running daemon's (the bus has one master, so a
// second program cannot listen beside kioskd), or with -device the
// bench tool's, which answers a VMC as a fresh cashless device with no
// payment behind it.
func cmdMdbTrace(e *cli.Env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runMdbTrace(ctx, e, args)
}

func runMdbTrace(ctx context.Context, e *cli.Env, args []string) int {
	fs := cli.NewFlags(e.Stderr, "kioskd", "mdb trace", mdbTraceUsage)
	var cf clientFlags
	cf.register(fs)
	last := fs.Int("last", control.DefaultMDBTraceLast, "from the daemon: start with the last N exchanges it holds (it keeps 1024)")
	follow := fs.Bool("follow", true, "from the daemon: go on with the live trace after the held exchanges")
	device := fs.String("device", "", "bench tool: the bus, tcp://HOST:PORT (a simulator listening, dialled as the peripheral) or a tty path")
	transport := fs.String("transport", "stream", "bench tool: stream (two bytes a word, for simulators and bus tools) or uart (PL011, mark/space parity)")
	address := fs.String("address", "10", "bench tool: the cashless address to answer at, hex: 10 or 60")
	approve := fs.Bool("approve", false, "bench tool: approve every vend request at its price (default: deny it at once)")
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
	// The two modes take different flags; one given to the wrong mode is
	// a mistake, not something to ignore.
	bench := map[string]bool{"transport": true, "address": true, "approve": true}
	daemon := map[string]bool{"config": true, "control": true, "last": true, "follow": true}
	var wrong string
	fs.Visit(func(f *flag.Flag) {
		if (*device == "" && bench[f.Name]) || (*device != "" && daemon[f.Name]) {
			wrong = f.Name
		}
	})
	switch {
	case wrong != "" && *device == "":
		return usage("-%s is for the bench tool, with -device", wrong)
	case wrong != "":
		return usage("-%s is for the daemon's trace, without -device", wrong)
	case *last < 0:
		return usage("-last %d: 0 or more", *last)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *device == "" {
		c, err := cf.client()
		if err != nil {
			return clientFail(e, err)
		}
		return mdbTraceDaemon(ctx, e, c, *last, *follow)
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
		line = te.Time.AppendFormat(line[:0], mdbTraceStamp)
		line = tracer.Append(line, te.Unit, te.Reply)
		line = appendLatency(line, te.Reply != nil, te.Latency.Microseconds())
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

// mdbTraceStamp is how each trace line starts, in either mode.
const mdbTraceStamp = "15:04:05.000000 "

// appendLatency ends a trace line: the reply's latency in brackets, if
// there was a reply.
func appendLatency(line []byte, replied bool, us int64) []byte {
	if replied {
		line = fmt.Appendf(line, " (%dµs)", us)
	}
	return append(line, '\n')
}

// mdbTraceDaemon prints the running daemon's trace: the held exchanges,
// then (follow) the live ones until ctx ends.
func mdbTraceDaemon(ctx context.Context, e *cli.Env, c *control.Client, last int, follow bool) int {
	var line []byte
	err := c.MDBTrace(ctx, control.MDBTraceOptions{Last: last, Follow: follow}, func(l control.MDBTraceLine) error {
		if l.Dropped > 0 {
			_, err := fmt.Fprintf(e.Stdout, "... dropped %d exchanges: this trace fell behind the bus\n", l.Dropped)
			return err
		}
		line = l.Time.Local().AppendFormat(line[:0], mdbTraceStamp)
		line = append(line, l.Text...)
		line = appendLatency(line, len(l.Reply) > 0, l.LatencyUS)
		_, err := e.Stdout.Write(line)
		return err
	})
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return exitOK // Ctrl-C or -duration: what the user asked for
	case err != nil:
		return clientFail(e, err)
	case follow:
		fmt.Fprintln(e.Stderr, "kioskd: mdb trace: the daemon ended the trace (stopping?)")
		return exitUnreachable
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
