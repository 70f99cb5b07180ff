package sim

import (
	"path/filepath"
	"testing"

	"github.com/kioskd/kioskd/board"
)

// openSim opens the sim board of the default profile over a fresh data
// directory, which it returns with the board and its sidecar.
func openSim(t *testing.T, edit func(*board.Profile)) (*board.Board, *simBoard, string) {
	t.Helper()
	p, err := board.Lookup(Kind)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&p)
	}
	dir := t.TempDir()
	b, err := board.Open(p, board.WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := b.Sidecar.(*simBoard)
	if !ok {
		t.Fatalf("sim board's sidecar is %T", b.Sidecar)
	}
	t.Cleanup(s.Close)
	return b, s, filepath.Join(dir, "sim")
}
