package board_test

import (
	"slices"
	"testing"

	"github.com/kioskd/kioskd/board"
	_ "github.com/kioskd/kioskd/board/sim" // registers "sim"
)

// The sim board is a kind like the others: linked, it is listed, looked
// up and opened through the registry, with the same slot checks.
func TestSimIsRegistered(t *testing.T) {
	if k := board.Kinds(); !slices.Equal(k, []string{"generic", "rpi3", "rpi4", "rpi5", "sim"}) {
		t.Errorf("kinds %v", k)
	}
	p, err := board.Lookup("sim")
	if err != nil || p.Kind != "sim" || p.Relay == "" {
		t.Fatalf("sim profile %+v %v", p, err)
	}
	p.Relay = ""
	if _, err := board.Open(p); err == nil || err.Error() != "board sim: no relay pin configured" {
		t.Errorf("sim without relay: %v", err)
	}
}
