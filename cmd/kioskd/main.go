// Command kioskd is the payment brain of an unattended vending or parking
// machine: the kiosk side of MobyPay's POS <-> kiosk protocol, Finexus KPOS
// notifications, and the machine's relay, printer, LEDs and watchdog.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes, the same for every command; README.md and
// docs/operations.md list them. Scripts and controllers branch on them:
// a number never changes its meaning, new ones are added at the end.
const (
	exitOK   = 0
	exitFail = 1 // it failed, or the daemon refused (config check: the config is refused)
	// exitDeclined is pay's "no money taken": declined or cancelled.
	exitDeclined = 1
	// exitUsage is a bad command line (or a -config that cannot be
	// loaded): nothing was tried, and trying again the same way fails
	// the same way.
	exitUsage = 2
	// exitUnclear is pay without an outcome it can vouch for: timed out,
	// unknown, or paid but needs an operator. Never retried blindly.
	exitUnclear = 3
	// exitUnreachable is a client command that got no answer from the
	// daemon (not running, the wrong socket, or gone while answering):
	// unlike a usage error, the same command may work once it is back.
	// pay exits so only when nothing was sent.
	exitUnreachable = 4
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a subcommand may touch, so tests run commands in-process
// against buffers.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	// path and cmd are the command being run ("review settle" and its
	// table entry), set by dispatch so that its flag set prints the
	// usage line the help shows.
	path string
	cmd  *command
}

// command is one entry of the command table. One with run is a command;
// one with subs dispatches its first argument to them; one with both
// (review) runs when that argument names none of its subs. Every help
// text and usage line is made from these fields, so what is printed is
// what is parsed.
type command struct {
	name    string
	usage   string // after `kioskd PATH` on the usage line; flags go before arguments
	summary string
	run     func(e *env, args []string) int
	subs    []command
}

func commands() []command {
	const cl = "[-config FILE | -control PATH]" // how a client command finds the daemon
	const secret = "[-secret S | -secret-file F | -config FILE]"
	return []command{
		{name: "run", usage: "[-config FILE]", summary: "start the service", run: cmdRun},
		{name: "pay", usage: cl + " -amount RM [-mode card|bnpl|duitnow_qr|ipp] [-plan ID] [-provider NAME] [-key ORDER_ID] [-timeout D] [-json]",
			summary: "ask the running kioskd for a payment and wait for the outcome", run: cmdPay},
		{name: "cancel", usage: cl + " [TXN_ID]", summary: "cancel the payment in progress (or TXN_ID)", run: cmdCancel},
		{name: "plan", usage: cl + " TXN_ID PLAN_ID", summary: "choose an IPP plan for the payment in progress", run: cmdPlan},
		{name: "status", usage: cl + " [-json]", summary: "show the POS link, the payment in progress and counters", run: cmdStatus},
		{name: "journal", usage: cl + " [-unknown] [-n N] [-json]", summary: "list recent payments from the journal", run: cmdJournal},
		{name: "review", usage: cl + " [-all] [-json]", summary: "list payments that need an operator", run: cmdReview, subs: []command{
			{name: "settle", usage: cl + " -note TEXT TXN_ID", summary: "record how a payment under review was settled", run: cmdReviewSettle},
		}},
		{name: "logs", usage: cl + " [-n N]", summary: "show the running kioskd's recent log lines", run: cmdLogs},
		{name: "selftest", usage: cl + " [-relay] [-json]", summary: "check LEDs, printer and watchdog (and the relay with -relay) through the running kioskd", run: cmdSelftest},
		{name: "pair", usage: cl + " [-print] [-light]", summary: "show (and print) the address and QR code the POS terminal connects to", run: cmdPair},
		// possim.go names its own usage line; TestHelpFromTable keeps the
		// two the same.
		{name: "possim", usage: "-addr HOST:PORT [-behaviour NAME] " + secret + " [-delay D] [-pos-id ID]",
			summary: "simulate a MobyPay POS terminal connecting to a kiosk", run: cmdPossim},
		{name: "sig", summary: "check or make MobyPay signatures", subs: []command{
			{name: "verify", usage: secret + " [-v] < envelopes.ndjson", summary: "check the signature of each envelope on stdin", run: sigVerify},
			{name: "sign", usage: secret + " [-fresh] [-v] < payloads.ndjson", summary: "sign each payload object on stdin", run: sigSign},
		}},
		{name: "config", summary: "print the default config or check one", subs: []command{
			{name: "default", summary: "print the embedded default config, every key documented", run: cmdConfigDefault},
			{name: "check", usage: "FILE", summary: "check a config as run does before it touches anything", run: cmdConfigCheck},
		}},
		{name: "version", summary: "print version and build information", run: cmdVersion},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := command{subs: commands()}
	return root.dispatch(e, "", args)
}

// dispatch runs c, or the sub its first argument names.
func (c *command) dispatch(e *env, path string, args []string) int {
	if len(args) > 0 {
		for i := range c.subs {
			if s := &c.subs[i]; s.name == args[0] {
				return s.dispatch(e, strings.TrimSpace(path+" "+s.name), args[1:])
			}
		}
	}
	if c.run != nil {
		e.path, e.cmd = path, c
		return c.run(e, args)
	}
	switch {
	case len(args) == 0:
		c.help(e.stderr, path)
		return exitUsage
	case isHelp(args[0]):
		c.help(e.stderr, path)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "kioskd: unknown command %q\n\n", strings.TrimSpace(path+" "+args[0]))
	c.help(e.stderr, path)
	return exitUsage
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// help lists the commands under c: at the top, each by its path and
// summary; in a group (config, sig), small enough for it, each by its
// whole usage line too.
func (c *command) help(w io.Writer, path string) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags] [arguments]\n\n", usageLine(path, ""))
	c.list(w, path, path != "")
	fmt.Fprintf(w, "\nRun %s COMMAND -h for its flags.\n", usageLine(path, ""))
}

// list writes the commands below c, nested ones by their path below c.
func (c *command) list(w io.Writer, path string, full bool) {
	type row struct{ name, usage, summary string }
	var rows []row
	var walk func(prefix string, cs []command)
	walk = func(prefix string, cs []command) {
		for _, s := range cs {
			name := strings.TrimSpace(prefix + " " + s.name)
			if s.run != nil {
				rows = append(rows, row{name, s.usage, s.summary})
			}
			walk(name, s.subs)
		}
	}
	walk("", c.subs)
	if full {
		for _, r := range rows {
			fmt.Fprintf(w, "  %s\n    \t%s\n", usageLine(path+" "+r.name, r.usage), r.summary)
		}
		return
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.name, r.summary)
	}
}

// usageLine is a command's synopsis: kioskd, its path, its usage.
func usageLine(path, usage string) string {
	return strings.Join(strings.Fields("kioskd "+path+" "+usage), " ")
}

// flags returns the flag set of the command being run, its usage line
// taken from the command table; one with subs lists them too.
func (e *env) flags() *flag.FlagSet {
	fs := newFlags(e, e.path, e.cmd.usage)
	if len(e.cmd.subs) > 0 {
		usage := fs.Usage
		fs.Usage = func() {
			usage()
			fmt.Fprintln(e.stderr, "\nor:")
			e.cmd.list(e.stderr, e.path, true)
		}
	}
	return fs
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: %s\n", usageLine(name, args))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses the flags and checks that min to max arguments are left,
// turning -h, a bad flag and wrong arguments into an exit code. Go's
// flag package stops at the first argument that is not a flag, so a
// flag typed after an argument would be taken as one: it is refused
// with the order the usage line shows.
func (e *env) parse(fs *flag.FlagSet, args []string, min, max int) (int, bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return code, false
	}
	for i, a := range fs.Args() {
		if i > 0 && len(a) > 1 && a[0] == '-' {
			fmt.Fprintf(e.stderr, "kioskd: %s: flag %s after the argument %s: flags go before the arguments\n", fs.Name(), a, fs.Arg(0))
			fs.Usage()
			return exitUsage, false
		}
	}
	if n := fs.NArg(); n < min || n > max {
		if n > max {
			fmt.Fprintf(e.stderr, "kioskd: %s: unexpected argument %q\n", fs.Name(), fs.Arg(max))
		}
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
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
	fs := e.flags()
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "kioskd %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func cmdConfigDefault(e *env, args []string) int {
	fs := e.flags()
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	e.stdout.Write(defaultConfig)
	return exitOK
}

// cmdConfigCheck exits 0 for a config run accepts, 1 for one it refuses
// and 2 for a usage error: kioskd-run starts kioskd only on a 0.
func cmdConfigCheck(e *env, args []string) int {
	fs := e.flags()
	if code, ok := e.parse(fs, args, 1, 1); !ok {
		return code
	}
	file := fs.Arg(0)
	cfg, err := loadConfig(file)
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
	fmt.Fprintf(e.stdout, "ok %s\n", file)
	if isDevSecret(p.secret) {
		fmt.Fprintln(e.stdout, "warning: pos secret is the public development key")
	}
	return exitOK
}
