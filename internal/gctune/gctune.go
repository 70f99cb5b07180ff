// Package gctune sets the garbage collector the way kioskd runs it.
//
// Most of what a payment allocates is bbolt's: each write transaction
// reads the leaf pages it touches into nodes (ReadInodeFromPage,
// node.put), about 140 KB a card payment, all garbage at commit. At
// Go's default GOGC=100 over kioskd's small live heap that is a
// collection every few dozen payments, and a payment whose success
// arrives during one waits for the mark assist and the stolen core:
// over 10,000 payments the success-to-relay time beyond the commit's
// disk time was 735–850 µs at p99 with GOGC=100 and 245–430 µs with
// 400, the p50 alike (BenchmarkResultToRelay, three interleaved runs
// each). Four times fewer collections cost a peak heap of five times
// the live one, a few tens of MiB on a board with 1 GiB; the memory
// limit makes the collector work harder instead of letting a leak grow
// past it.
package gctune

import (
	"os"
	"runtime/debug"
)

const (
	// Percent is kioskd's GOGC.
	Percent = 400
	// MemoryLimit is kioskd's GOMEMLIMIT, in bytes: a soft limit, above
	// which the collector runs as often as it must.
	MemoryLimit = 128 << 20
)

// Apply sets Percent and MemoryLimit, each unless the environment
// already sets it (GOGC, GOMEMLIMIT), so that an operator can still
// tune a board by hand.
func Apply() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(Percent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
