//go:build !unix

package atomicfile

// syncDir is a no-op where a directory cannot be opened for syncing
// (Windows): the firmware runs on Linux; other builds are for
// development tools only.
func syncDir(string) error { return nil }
