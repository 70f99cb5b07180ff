//go:build !unix

package atomicfile

// SyncDir is a no-op where a directory cannot be opened for syncing
// (Windows): the firmware runs on Linux; other builds are for
// development tools only.
func SyncDir(string) error { return nil }
