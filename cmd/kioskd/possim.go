package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/logsink"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// cmdPossim plays a MobyPay POS terminal against a kiosk (this one or
// another implementation) until SIGINT or SIGTERM.
func cmdPossim(e *cli.Env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runPossim(ctx, e, args)
}

func runPossim(ctx context.Context, e *cli.Env, args []string) int {
	fs := cli.NewFlags(e.Stderr, "kioskd", "possim", "-addr HOST:PORT [-behaviour NAME] [-secret S | -secret-file F | -config FILE] [-delay D] [-pos-id ID]")
	addr := fs.String("addr", "", "kiosk address to connect to, HOST:PORT (required)")
	behaviour := fs.String("behaviour", string(possim.Approve), "how the POS answers (see below)")
	var sf secretFlags
	sf.register(fs)
	delay := fs.Duration("delay", 5*time.Second, "behaviour slow: time from ack to result")
	posID := fs.String("pos-id", "POS001", "pos_id the POS sends")
	debug := fs.Bool("v", false, "log debug events too")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(e.Stderr, "\nbehaviours:")
		for _, b := range possim.Behaviours() {
			fmt.Fprintf(e.Stderr, "  %-12s %s\n", b, b.Help())
		}
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "kioskd: possim: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *addr == "" {
		fmt.Fprintln(e.Stderr, "kioskd: possim: -addr is required")
		fs.Usage()
		return exitUsage
	}
	if possim.Behaviour(*behaviour).Help() == "" {
		fmt.Fprintf(e.Stderr, "kioskd: possim: unknown behaviour %q\n", *behaviour)
		fs.Usage()
		return exitUsage
	}
	secret, err := sf.resolve(e)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	level := "info"
	if *debug {
		level = "debug"
	}
	log := logsink.NewLogger(e.Stderr, "text", level)
	sim, err := possim.New(possim.Config{
		Addr:      *addr,
		Secret:    secret,
		Behaviour: possim.Behaviour(*behaviour),
		PosID:     *posID,
		Delay:     *delay,
		Log:       log,
	})
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitUsage
	}
	log.Info("possim starting", "addr", *addr, "behaviour", *behaviour, "pos_id", *posID)
	if err := sim.Run(ctx); err != nil {
		log.Error("possim stopped", "err", err)
		return exitFail
	}
	return exitOK
}
