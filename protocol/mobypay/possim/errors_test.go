package possim

import (
	"strings"
	"testing"
)

// New's refusals name the package once, so the CLI prints them as they
// are ("kioskd: possim: no secret") without trimming a prefix.
func TestNewErrorsNamePackageOnce(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no address":        {Secret: []byte("k")},
		"no secret":         {Addr: "127.0.0.1:1"},
		"unknown behaviour": {Addr: "127.0.0.1:1", Secret: []byte("k"), Behaviour: "bogus"},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if s := err.Error(); strings.Count(s, "possim: ") != 1 || !strings.HasPrefix(s, "possim: ") {
			t.Errorf("%s: %q, want the package named once at the front", name, s)
		}
	}
}
