package cli

import (
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
		ran    string
	}{
		{nil, ExitUsage, "usage: prog COMMAND", ""},
		{[]string{"frobnicate"}, ExitUsage, `prog: unknown command "frobnicate"`, ""},
		{[]string{"pay", "-nope"}, ExitUsage, "usage: prog pay -amount RM", ""},
		{[]string{"pay", "extra"}, ExitUsage, `prog: pay: unexpected argument "extra"`, ""},
		{[]string{"config"}, ExitUsage, "usage: prog config COMMAND", ""},
		{[]string{"config", "frobnicate"}, ExitUsage, `unknown command "config frobnicate"`, ""},
		{[]string{"config", "check"}, ExitUsage, "usage: prog config check FILE", ""},
		{[]string{"review", "frobnicate"}, ExitUsage, `prog: review: unexpected argument "frobnicate"`, ""},
		{[]string{"-h"}, ExitOK, "usage: prog COMMAND", ""},
		{[]string{"help"}, ExitOK, "usage: prog COMMAND", ""},
		{[]string{"config", "-h"}, ExitOK, "usage: prog config COMMAND", ""},
		{[]string{"pay"}, ExitOK, "", "pay "},
		{[]string{"review", "-json"}, ExitOK, "", "review "},
		{[]string{"review", "settle", "-note", "cash", "TXN1"}, ExitOK, "", "review settle TXN1"},
		{[]string{"config", "check", "a.toml"}, ExitOK, "", "config check a.toml"},
	} {
		r := runToy(tc.args...)
		r.check(t, tc.args, tc.code, tc.stderr)
		if got := strings.Join(r.ran, ";"); got != tc.ran {
			t.Errorf("%q: ran %q, want %q", tc.args, got, tc.ran)
		}
	}
}

// Go's flag package stops at the first argument, so `review settle TXN
// -note TEXT` would never see -note. It is refused before the command
// does anything, with the usage line that shows the order that works.
func TestFlagsAfterArguments(t *testing.T) {
	for _, args := range [][]string{
		{"review", "settle", "TXN1", "-note", "refunded"},
		{"review", "settle", "-json", "TXN1", "-note", "refunded"},
		{"config", "check", "kioskd.toml", "-v"},
	} {
		r := runToy(args...)
		r.check(t, args, ExitUsage, "flags go before the arguments", "usage: prog "+args[0])
		if len(r.ran) != 0 {
			t.Errorf("%q ran %q", args, r.ran)
		}
	}
	r := runToy("review", "settle", "TXN1", "-note", "refunded")
	r.check(t, nil, ExitUsage, "prog: review settle: flag -note after the argument TXN1",
		"usage: prog review settle -note TEXT TXN_ID\n")
}

// help in front of a path shows that command's usage as its -h does; a
// group's own help lists its commands.
func TestHelpCommand(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		code  int
		first string // the first line of stderr
		also  string
	}{
		{[]string{"help", "pay"}, ExitOK, "usage: prog pay -amount RM [-json]", "-json"},
		{[]string{"help", "review", "settle"}, ExitOK, "usage: prog review settle -note TEXT TXN_ID", "-note"},
		{[]string{"help", "review"}, ExitOK, "usage: prog review [-json]", "\n  prog review settle -note TEXT TXN_ID\n"},
		{[]string{"help", "config"}, ExitOK, "usage: prog config COMMAND [flags] [arguments]", "\n  prog config check FILE\n"},
		{[]string{"review", "help"}, ExitOK, "usage: prog review [-json]", "\n  prog review settle -note TEXT TXN_ID\n"},
		{[]string{"config", "help"}, ExitOK, "usage: prog config COMMAND [flags] [arguments]", "\n  prog config default\n"},
		{[]string{"config", "help", "check"}, ExitOK, "usage: prog config check FILE", ""},
		{[]string{"help", "nosuch"}, ExitUsage, `prog: unknown command "nosuch"`, "usage: prog COMMAND"},
		{[]string{"help", "pay", "extra"}, ExitUsage, `prog: unknown command "pay extra"`, ""},
		{[]string{"help", "config", "nosuch"}, ExitUsage, `prog: unknown command "config nosuch"`, "usage: prog config COMMAND"},
	} {
		r := runToy(tc.args...)
		r.check(t, tc.args, tc.code, tc.also)
		if first, _, _ := strings.Cut(r.stderr, "\n"); first != tc.first {
			t.Errorf("%q: first line %q, want %q", tc.args, first, tc.first)
		}
		if len(r.ran) != 0 {
			t.Errorf("%q ran %q", tc.args, r.ran)
		}
	}
}

// Every command's -h prints the usage line made from the table, and the
// top-level help lists every command by the path that runs it, nested
// ones too.
func TestHelpFromTable(t *testing.T) {
	top := runToy("-h").stderr
	n := 0
	var walk func(path string, cs []Command)
	walk = func(path string, cs []Command) {
		for _, c := range cs {
			p := strings.TrimSpace(path + " " + c.Name)
			walk(p, c.Subs)
			if c.Run == nil {
				continue
			}
			n++
			if !strings.Contains(top, "\n  "+p+" ") {
				t.Errorf("top-level help lacks %q:\n%s", p, top)
			}
			r := runToy(append(strings.Fields(p), "-h")...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if want := "usage: " + UsageLine("prog", p, c.Usage); r.code != ExitOK || first != want {
				t.Errorf("%s -h: exit %d, first line\n%s\nwant\n%s", p, r.code, first, want)
			}
		}
	}
	walk("", toy(new([]string)))
	if n != 5 {
		t.Errorf("walked %d commands, want the toy's 5", n)
	}
}
