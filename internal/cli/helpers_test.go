package cli

import (
	"bytes"
	"strings"
	"testing"
)

// toy is a command table shaped like kioskd's: plain commands, a
// command with a sub (review), and groups without a run of their own.
func toy(ran *[]string) []Command {
	cmd := func(name, usage string, min, max int) Command {
		return Command{Name: name, Usage: usage, Summary: "the " + name + " command", Run: func(e *Env, args []string) int {
			fs := e.Flags()
			fs.Bool("json", false, "as JSON")
			fs.String("note", "", "a note")
			if code, ok := e.Parse(fs, args, min, max); !ok {
				return code
			}
			*ran = append(*ran, e.Path+" "+strings.Join(fs.Args(), " "))
			return ExitOK
		}}
	}
	review := cmd("review", "[-json]", 0, 0)
	review.Subs = []Command{cmd("settle", "-note TEXT TXN_ID", 1, 1)}
	return []Command{
		cmd("pay", "-amount RM [-json]", 0, 0),
		review,
		{Name: "config", Summary: "config things", Subs: []Command{
			cmd("check", "FILE", 1, 1),
			cmd("default", "", 0, 0),
		}},
	}
}

type result struct {
	code   int
	stdout string
	stderr string
	ran    []string
}

// runToy runs args against the toy table in-process.
func runToy(args ...string) result {
	var out, errb bytes.Buffer
	var ran []string
	code := Main(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Prog: "prog"}, toy(&ran), args)
	return result{code, out.String(), errb.String(), ran}
}

func (r result) check(t *testing.T, args []string, code int, stderr ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%q: exit %d, want %d\n%s", args, r.code, code, r.stderr)
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("%q: stderr lacks %q:\n%s", args, s, r.stderr)
		}
	}
}
