//go:build unix

package diskspace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Of returns the usage of the file system holding path.
func Of(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, fmt.Errorf("diskspace: statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return Usage{Total: uint64(st.Blocks) * bs, Avail: uint64(st.Bavail) * bs}, nil
}
