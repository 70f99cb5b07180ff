package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	// The process's settings, as they were, for the tests after this.
	gc0, limit0 := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc0); debug.SetMemoryLimit(limit0) })
	for _, c := range []struct {
		env       map[string]string
		gc        int
		limit     int64
		wantGC    int
		wantLimit int64
	}{
		{nil, 100, 1 << 40, Percent, MemoryLimit},
		// An operator's GOGC or GOMEMLIMIT is the runtime's already (it
		// read them at start); Apply leaves that one alone.
		{map[string]string{"GOGC": "150"}, 150, 1 << 40, 150, MemoryLimit},
		{map[string]string{"GOMEMLIMIT": "64MiB"}, 100, 64 << 20, Percent, 64 << 20},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, -1, 1 << 30, -1, 1 << 30},
	} {
		for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
			if v, ok := c.env[k]; ok {
				t.Setenv(k, v)
			} else {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}
		debug.SetGCPercent(c.gc)
		debug.SetMemoryLimit(c.limit)
		Apply()
		if gc, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != c.wantGC || limit != c.wantLimit {
			t.Errorf("env %v: GOGC %d, limit %d after Apply; want %d, %d", c.env, gc, limit, c.wantGC, c.wantLimit)
		}
	}
}
