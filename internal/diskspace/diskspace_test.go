package diskspace

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOf(t *testing.T) {
	u, err := Of(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if u.Total == 0 || u.Avail > u.Total {
		t.Fatalf("usage %+v: want 0 < avail <= total", u)
	}
	_, err = Of(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing dir: err %v, want ENOENT", err)
	}
}
