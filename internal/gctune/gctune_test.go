package gctune

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// TestApply runs in a child process, so that the settings it makes and
// the environment it varies stay there.
func TestApply(t *testing.T) {
	if os.Getenv("GCTUNE_CHILD") == "1" {
		Apply()
		gc := debug.SetGCPercent(-1)
		limit := debug.SetMemoryLimit(-1)
		fmt.Printf("%d %d\n", gc, limit)
		return
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "400 134217728"},
		{[]string{"GOGC=150"}, "150 134217728"},
		{[]string{"GOMEMLIMIT=64MiB"}, "400 67108864"},
		{[]string{"GOGC=off", "GOMEMLIMIT=1GiB"}, "-1 1073741824"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestApply$")
		cmd.Env = append(cleanEnv(), append(c.env, "GCTUNE_CHILD=1")...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		got, _, _ := strings.Cut(string(out), "\n")
		if got != c.want {
			t.Errorf("env %v: GOGC and limit %q, want %q", c.env, got, c.want)
		}
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	return env
}
