// Package diskspace tells how full the file system under a path is: the
// journal's compaction asks before it writes a copy, and the machine
// warns when the data partition nears full.
package diskspace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Usage is a file system's size and what an unprivileged writer may
// still use of it (the blocks reserved for root do not count: kioskd may
// not run as root, and they are the system's last resort anyway).
type Usage struct {
	Total uint64 // bytes
	Avail uint64 // bytes an unprivileged writer can still use
}

// Of returns the usage of the file system holding path.
func Of(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, fmt.Errorf("diskspace: statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return Usage{Total: uint64(st.Blocks) * bs, Avail: uint64(st.Bavail) * bs}, nil
}
