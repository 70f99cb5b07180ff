// Command kioskd is the payment brain of an unattended vending or parking
// machine: the kiosk side of MobyPay's POS <-> kiosk protocol, Finexus KPOS
// notifications, and the machine's relay, printer, LEDs and watchdog.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes shared by every subcommand; pay adds its own outcome codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a subcommand may touch, so tests run commands in-process
// against buffers.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "start the service", cmdRun},
		{"pay", "ask the running kioskd for a payment and wait for the outcome", cmdPay},
		{"cancel", "cancel the payment in progress", cmdCancel},
		{"plan", "choose an IPP plan for the payment in progress", cmdPlan},
		{"status", "show the POS link, the payment in progress and counters", cmdStatus},
		{"journal", "list recent payments from the journal", cmdJournal},
		{"review", "list payments that need an operator, or settle one (review settle TXN -note TEXT)", cmdReview},
		{"logs", "show the running kioskd's recent log lines", cmdLogs},
		{"selftest", "check LEDs, printer and watchdog (and the relay with -relay) through the running kioskd", cmdSelftest},
		{"pair", "show (and print) the address and QR code the POS terminal connects to", cmdPair},
		{"possim", "simulate a MobyPay POS terminal connecting to a kiosk", cmdPossim},
		{"sig", "verify or sign MobyPay envelopes (sig verify | sig sign)", cmdSig},
		{"config", "print the default config or check one (config default | config check FILE)", cmdConfig},
		{"version", "print version and build information", cmdVersion},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "kioskd: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kioskd COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun kioskd COMMAND -h for the command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kioskd %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and turns -h and bad flags into an exit code.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func cmdVersion(e *env, args []string) int {
	fs := newFlags(e, "version", "")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "kioskd %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func cmdConfig(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "usage: kioskd config default | kioskd config check FILE")
		return exitUsage
	}
	switch args[0] {
	case "default":
		e.stdout.Write(defaultConfig)
		return exitOK
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(e.stderr, "usage: kioskd config check FILE")
			return exitUsage
		}
		cfg, err := loadConfig(args[1])
		if err != nil {
			fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
			return exitFail
		}
		// The very provisioning run does first: what passes here, run
		// accepts.
		p, err := provision(cfg)
		if err != nil {
			fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "ok %s\n", args[1])
		if isDevSecret(p.secret) {
			fmt.Fprintln(e.stdout, "warning: pos secret is the public development key")
		}
		return exitOK
	}
	fmt.Fprintf(e.stderr, "kioskd: unknown config command %q\n", args[0])
	return exitUsage
}

func logLevel(level string) slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level)) // validated with the config
	return lvl
}

// newLogger builds the service's logger: one line per event on w.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevel(level)}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
