package mobypay

import (
	"strings"
	"testing"
	"time"
)

func TestServerConfigValidate(t *testing.T) {
	good := ServerConfig{Addr: "0.0.0.0:8080", Window: DefaultWindow, MaxFrame: MaxFrame}
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		name string
		set  func(*ServerConfig)
		want string // "" for valid
	}{
		{"no port", func(c *ServerConfig) { c.Addr = "8080" }, `listen "8080": `},
		{"empty listen", func(c *ServerConfig) { c.Addr = "" }, `listen "": `},
		{"port only", func(c *ServerConfig) { c.Addr = ":8080" }, ""},
		{"window 1s", func(c *ServerConfig) { c.Window = time.Second }, ""},
		{"window 10m", func(c *ServerConfig) { c.Window = 10 * time.Minute }, ""},
		{"window under 1s", func(c *ServerConfig) { c.Window = time.Second - 1 }, "timestamp_window 999.999999ms: want 1s to 10m"},
		{"window over 10m", func(c *ServerConfig) { c.Window = 10*time.Minute + 1 }, "timestamp_window 10m0.000000001s: want 1s to 10m"},
		{"window 0", func(c *ServerConfig) { c.Window = 0 }, "timestamp_window 0s: want 1s to 10m"},
		{"frame 1024", func(c *ServerConfig) { c.MaxFrame = 1024 }, ""},
		{"frame 1MiB", func(c *ServerConfig) { c.MaxFrame = 1 << 20 }, ""},
		{"frame 1023", func(c *ServerConfig) { c.MaxFrame = 1023 }, "max_frame 1023: want 1024 to 1048576"},
		{"frame over 1MiB", func(c *ServerConfig) { c.MaxFrame = 1<<20 + 1 }, "max_frame 1048577: want 1024 to 1048576"},
	} {
		cfg := good
		c.set(&cfg)
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := (ServerConfig{}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("every problem at once: %v", err)
	}
}
