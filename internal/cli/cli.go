// Package cli is the command framework of kioskd's command line: a
// table of commands, each run in-process against the streams it is
// given, and help and usage lines made from that table, so that what is
// printed is what is parsed.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// The exit codes the framework itself returns; the commands add their
// own (the program's documentation lists them all).
const (
	ExitOK = 0
	// ExitUsage is a bad command line: nothing was tried, and trying
	// again the same way fails the same way.
	ExitUsage = 2
)

// Command is one entry of the command table. One with Run is a command;
// one with Subs dispatches its first argument to them; one with both
// runs when that argument names none of its subs.
type Command struct {
	Name    string
	Usage   string // after `PROG PATH` on the usage line; flags go before arguments
	Summary string
	Run     func(e *Env, args []string) int
	Subs    []Command
}

// Env is what a command may touch, so that tests run commands
// in-process against buffers.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Prog is the program's name; Path and Cmd are the command being
	// run ("review settle" and its table entry), set by Main so that
	// its flag set prints the usage line the help shows.
	Prog string
	Path string
	Cmd  *Command
}

// Main runs the command args name in cmds, the program's table.
func Main(e *Env, cmds []Command, args []string) int {
	root := Command{Subs: cmds}
	return root.dispatch(e, "", args)
}

// dispatch runs c, or the sub its first argument names. "help" before
// a path among c's subs shows that command's usage, as its -h does.
func (c *Command) dispatch(e *Env, path string, args []string) int {
	if len(args) > 0 && args[0] == "help" && len(c.Subs) > 0 {
		return c.helpFor(e, path, args[1:])
	}
	if len(args) > 0 {
		if s, p := c.sub(path, args[0]); s != nil {
			return s.dispatch(e, p, args[1:])
		}
	}
	if c.Run != nil {
		e.Path, e.Cmd = path, c
		return c.Run(e, args)
	}
	switch {
	case len(args) == 0:
		c.help(e, path)
		return ExitUsage
	case isHelp(args[0]):
		c.help(e, path)
		return ExitOK
	}
	return c.unknown(e, path, args[0])
}

func (c *Command) sub(path, name string) (*Command, string) {
	for i := range c.Subs {
		if s := &c.Subs[i]; s.Name == name {
			return s, strings.TrimSpace(path + " " + s.Name)
		}
	}
	return nil, ""
}

func (c *Command) unknown(e *Env, path, name string) int {
	fmt.Fprintf(e.Stderr, "%s: unknown command %q\n\n", e.Prog, strings.TrimSpace(path+" "+name))
	c.help(e, path)
	return ExitUsage
}

// helpFor is `help PATH…`: the usage of the command PATH names below c
// (its -h, flags and all), or the list of a group.
func (c *Command) helpFor(e *Env, path string, names []string) int {
	for _, name := range names {
		s, p := c.sub(path, name)
		if s == nil {
			return c.unknown(e, path, name)
		}
		c, path = s, p
	}
	if c.Run != nil {
		e.Path, e.Cmd = path, c
		return c.Run(e, []string{"-h"})
	}
	c.help(e, path)
	return ExitOK
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// help lists the commands under c: at the top, each by its path and
// summary; in a group (config, sig), small enough for it, each by its
// whole usage line too.
func (c *Command) help(e *Env, path string) {
	fmt.Fprintf(e.Stderr, "usage: %s COMMAND [flags] [arguments]\n\n", UsageLine(e.Prog, path, ""))
	c.list(e, path, path != "")
	fmt.Fprintf(e.Stderr, "\nRun %s COMMAND -h for its flags.\n", UsageLine(e.Prog, path, ""))
}

// list writes the commands below c, nested ones by their path below c.
func (c *Command) list(e *Env, path string, full bool) {
	type row struct{ name, usage, summary string }
	var rows []row
	var walk func(prefix string, cs []Command)
	walk = func(prefix string, cs []Command) {
		for _, s := range cs {
			name := strings.TrimSpace(prefix + " " + s.Name)
			if s.Run != nil {
				rows = append(rows, row{name, s.Usage, s.Summary})
			}
			walk(name, s.Subs)
		}
	}
	walk("", c.Subs)
	if full {
		for _, r := range rows {
			fmt.Fprintf(e.Stderr, "  %s\n    \t%s\n", UsageLine(e.Prog, path+" "+r.name, r.usage), r.summary)
		}
		return
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	for _, r := range rows {
		fmt.Fprintf(e.Stderr, "  %-*s  %s\n", width, r.name, r.summary)
	}
}

// UsageLine is a command's synopsis: the program, its path, its usage.
func UsageLine(prog, path, usage string) string {
	return strings.Join(strings.Fields(prog+" "+path+" "+usage), " ")
}

// Flags returns the flag set of the command being run, its usage line
// taken from the command table; one with subs lists them too.
func (e *Env) Flags() *flag.FlagSet {
	fs := NewFlags(e.Stderr, e.Prog, e.Path, e.Cmd.Usage)
	if len(e.Cmd.Subs) > 0 {
		usage := fs.Usage
		fs.Usage = func() {
			usage()
			fmt.Fprintln(e.Stderr, "\nor:")
			e.Cmd.list(e, e.Path, true)
		}
	}
	return fs
}

// NewFlags returns a flag set named path that reports errors on w
// instead of exiting, with the usage line `prog path usage`.
func NewFlags(w io.Writer, prog, path, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: %s\n", UsageLine(prog, path, usage))
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses the flags and checks that min to max arguments are left,
// turning -h, a bad flag and wrong arguments into an exit code. Go's
// flag package stops at the first argument that is not a flag, so a
// flag typed after an argument would be taken as one: it is refused
// with the order the usage line shows.
func (e *Env) Parse(fs *flag.FlagSet, args []string, min, max int) (int, bool) {
	if code, ok := ParseFlags(fs, args); !ok {
		return code, false
	}
	for i, a := range fs.Args() {
		if i > 0 && len(a) > 1 && a[0] == '-' {
			fmt.Fprintf(e.Stderr, "%s: %s: flag %s after the argument %s: flags go before the arguments\n", e.Prog, fs.Name(), a, fs.Arg(0))
			fs.Usage()
			return ExitUsage, false
		}
	}
	if n := fs.NArg(); n < min || n > max {
		if n > max {
			fmt.Fprintf(e.Stderr, "%s: %s: unexpected argument %q\n", e.Prog, fs.Name(), fs.Arg(max))
		}
		fs.Usage()
		return ExitUsage, false
	}
	return 0, true
}

// ParseFlags parses and turns -h and bad flags into an exit code.
func ParseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}
