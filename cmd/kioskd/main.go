// Command kioskd is the payment brain of an unattended vending or parking
// machine: the kiosk side of MobyPay's POS <-> kiosk protocol, Finexus KPOS
// notifications, and the machine's relay, printer, LEDs and watchdog.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/internal/cli"
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

func commands() []cli.Command {
	const cl = "[-config FILE | -control PATH]" // how a client command finds the daemon
	const secret = "[-secret S | -secret-file F | -config FILE]"
	const broker = "[-config FILE | -broker URL [-ca-file F] [-cert-file F -key-file F] [-username U -password-file F]]"
	return []cli.Command{
		{Name: "run", Usage: "[-config FILE]", Summary: "start the service", Run: cmdRun},
		{Name: "pay", Usage: cl + " -amount RM [-mode card|bnpl|duitnow_qr|ipp] [-plan ID] [-provider NAME] [-key ORDER_ID] [-timeout D] [-json]",
			Summary: "ask the running kioskd for a payment and wait for the outcome", Run: cmdPay},
		{Name: "cancel", Usage: cl + " [TXN_ID]", Summary: "cancel the payment in progress (or TXN_ID)", Run: cmdCancel},
		{Name: "plan", Usage: cl + " TXN_ID PLAN_ID", Summary: "choose an IPP plan for the payment in progress", Run: cmdPlan},
		{Name: "status", Usage: cl + " [-json]", Summary: "show the POS link, the payment in progress and counters", Run: cmdStatus},
		{Name: "journal", Usage: cl + " [-unknown] [-n N] [-json]", Summary: "list recent payments from the journal", Run: cmdJournal},
		{Name: "review", Usage: cl + " [-all] [-json]", Summary: "list payments that need an operator", Run: cmdReview, Subs: []cli.Command{
			{Name: "settle", Usage: cl + " -note TEXT TXN_ID", Summary: "record how a payment under review was settled", Run: cmdReviewSettle},
		}},
		{Name: "health", Usage: cl + " [-min-up D] [-json]", Summary: "check that this boot is good (journal, pins, watchdog, uptime): exit 0 healthy, 1 not", Run: cmdHealth},
		{Name: "update", Usage: cl + " [-wait D] [-force] [-json] BUNDLE", Summary: "install a RAUC bundle once no payment is in progress, then reboot", Run: cmdUpdate},
		{Name: "logs", Usage: cl + " [-n N]", Summary: "show the running kioskd's recent log lines", Run: cmdLogs},
		{Name: "selftest", Usage: cl + " [-relay] [-json]", Summary: "check LEDs, printer and watchdog (and the relay with -relay) through the running kioskd", Run: cmdSelftest},
		{Name: "pair", Usage: cl + " [-print] [-light]", Summary: "show (and print) the address and QR code the POS terminal connects to", Run: cmdPair},
		// possim.go names its own usage line; TestHelpFromTable keeps the
		// two the same.
		{Name: "possim", Usage: "-addr HOST:PORT [-behaviour NAME] " + secret + " [-delay D] [-pos-id ID]",
			Summary: "simulate a MobyPay POS terminal connecting to a kiosk", Run: cmdPossim},
		{Name: "sig", Summary: "check or make MobyPay signatures", Subs: []cli.Command{
			{Name: "verify", Usage: secret + " [-v] < envelopes.ndjson", Summary: "check the signature of each envelope on stdin", Run: sigVerify},
			{Name: "sign", Usage: secret + " [-fresh] [-v] < payloads.ndjson", Summary: "sign each payload object on stdin", Run: sigSign},
		}},
		{Name: "mdb", Summary: "MDB (vending machine bus) tools", Subs: []cli.Command{
			{Name: "trace", Usage: mdbTraceUsage, Summary: "print the running kioskd's MDB bus trace, decoded and timestamped (with -device: answer a VMC as a bench reader)", Run: cmdMdbTrace},
		}},
		{Name: "fleet", Summary: "the operator's view of every kiosk on the MQTT broker", Subs: []cli.Command{
			{Name: "watch", Usage: broker, Summary: "print every kiosk's journal events and status as they arrive", Run: cmdFleetWatch},
			{Name: "audit", Usage: broker + " [-window D] [-json]", Summary: "listen, then report per kiosk gaps, resends and conflicts in seq (exit 1 on a gap)", Run: cmdFleetAudit},
		}},
		{Name: "sim", Summary: "act on a running kioskd's simulated board", Subs: []cli.Command{
			{Name: "press", Usage: cl + " NAME", Summary: "press and release the price button NAME", Run: cmdSimPress},
		}},
		{Name: "config", Summary: "print the default config or check one", Subs: []cli.Command{
			{Name: "default", Summary: "print the embedded default config, every key documented", Run: cmdConfigDefault},
			{Name: "check", Usage: "FILE", Summary: "check a config as run does before it touches anything", Run: cmdConfigCheck},
		}},
		{Name: "version", Summary: "print version and build information", Run: cmdVersion},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &cli.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Prog: "kioskd"}
	return cli.Main(e, commands(), args)
}

func cmdVersion(e *cli.Env, args []string) int {
	fs := e.Flags()
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return code
	}
	fmt.Fprintf(e.Stdout, "kioskd %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func cmdConfigDefault(e *cli.Env, args []string) int {
	fs := e.Flags()
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return code
	}
	e.Stdout.Write(config.Default())
	return exitOK
}

// cmdConfigCheck exits 0 for a config run accepts, 1 for one it refuses
// and 2 for a usage error: kioskd-run starts kioskd only on a 0.
func cmdConfigCheck(e *cli.Env, args []string) int {
	fs := e.Flags()
	if code, ok := e.Parse(fs, args, 1, 1); !ok {
		return code
	}
	file := fs.Arg(0)
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	// The very provisioning run does first: what passes here, run
	// accepts.
	p, err := config.Provision(cfg)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(e.Stdout, "ok %s\n", file)
	if config.IsDevSecret(p.Secret) {
		fmt.Fprintln(e.Stdout, "warning: pos secret is the public development key")
	}
	return exitOK
}
