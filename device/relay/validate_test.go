package relay

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		pulse time.Duration
		ok    bool
	}{
		{0, false}, {-time.Second, false}, {10*time.Millisecond - 1, false}, {10 * time.Millisecond, true},
		{500 * time.Millisecond, true}, {30 * time.Second, true}, {30*time.Second + 1, false},
	} {
		err := Config{Pulse: c.pulse}.Validate()
		if (err == nil) != c.ok {
			t.Errorf("pulse %s: %v, want ok %v", c.pulse, err, c.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "pulse "+c.pulse.String()+": want 10ms to 30s") {
			t.Errorf("pulse %s: %q does not name the key and the bounds", c.pulse, err)
		}
	}
}
