// Package diskspace tells how full the file system under a path is: the
// journal's compaction asks before it writes a copy, and the machine
// warns when the data partition nears full.
package diskspace

// Usage is a file system's size and what an unprivileged writer may
// still use of it (the blocks reserved for root do not count: kioskd may
// not run as root, and they are the system's last resort anyway).
type Usage struct {
	Total uint64 // bytes
	Avail uint64 // bytes an unprivileged writer can still use
}
