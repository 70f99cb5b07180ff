// Command kioskd is the payment brain of an unattended vending or parking
// machine: the kiosk side of MobyPay's POS <-> kiosk protocol, Finexus KPOS
// notifications, and the machine's relay, printer, LEDs and watchdog.
package main

import (
	"flag"
	"fmt"
	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/internal/cli"
	"io"
	"os"
	"runtime"
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
	exitOK   = cli.ExitOK
	exitFail = 1 // it failed, or the daemon refused (config check: the config is refused)
	// exitDeclined is pay's "no money taken": declined or cancelled.
	exitDeclined = 1
	// exitUsage is a bad command line (or a -config that cannot be
	// loaded): nothing was tried, and trying again the same way fails
	// the same way.
	exitUsage = cli.ExitUsage
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
// against buffers: the streams (fields of its own, so that a test can run
// one command's function without the framework), and the framework's
// view of the command being run (nil then).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	cli            *cli.Env
}

// flags returns the flag set of the command being run, its usage line
// taken from the command table.
func (e *env) flags() *flag.FlagSet { return e.cli.Flags() }

// parse parses the flags and checks that min to max arguments are left;
// see cli.Env.Parse.
func (e *env) parse(fs *flag.FlagSet, args []string, min, max int) (int, bool) {
	return e.cli.Parse(fs, args, min, max)
}

// command is one entry of the command table, run in an env.
type command struct {
	name    string
	usage   string // after `kioskd PATH` on the usage line; flags go before arguments
	summary string
	run     func(e *env, args []string) int
	subs    []command
}

// table turns the commands into the framework's: each runs in an env
// made of the framework's.
func table(cs []command) []cli.Command {
	out := make([]cli.Command, len(cs))
	for i, c := range cs {
		out[i] = cli.Command{Name: c.name, Usage: c.usage, Summary: c.summary, Subs: table(c.subs)}
		if run := c.run; run != nil {
			out[i].Run = func(ce *cli.Env, args []string) int {
				return run(&env{stdin: ce.Stdin, stdout: ce.Stdout, stderr: ce.Stderr, cli: ce}, args)
			}
		}
	}
	return out
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
	e := &cli.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Prog: "kioskd"}
	return cli.Main(e, table(commands()), args)
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
	e.stdout.Write(config.Default())
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
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitFail
	}
	// The very provisioning run does first: what passes here, run
	// accepts.
	p, err := config.Provision(cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "ok %s\n", file)
	if config.IsDevSecret(p.Secret) {
		fmt.Fprintln(e.stdout, "warning: pos secret is the public development key")
	}
	return exitOK
}
