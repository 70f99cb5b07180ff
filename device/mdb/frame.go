package mdb

import "github.com/kioskd/kioskd/protocol/mdb"

// blockLen is the length in words (address and checksum included) of the
// cashless block that starts with addrCmd and sub, when the standard fixes
// it for the options protocol/mdb's Device offers: it never offers 32-bit
// money or multi-currency, the two options that lengthen Setup Max/Min
// Prices, Vend Request and Cash Sale. Zero means "not known here": the
// block is cut by the gap or the next marked word. Only the two cashless
// addresses are known; other peripherals' commands mean other lengths.
func blockLen(addrCmd, sub byte) int {
	switch addrCmd &^ 7 {
	case mdb.AddrCashless1, mdb.AddrCashless2:
	default:
		return 0
	}
	switch addrCmd & 7 {
	case 0, 2: // Reset, Poll
		return 2
	case 1: // Setup: Config Data, Max/Min Prices
		if sub <= 1 {
			return 7
		}
	case 3: // Vend
		switch sub {
		case 0, 5: // Request, Cash Sale: price, item
			return 7
		case 1, 3, 4: // Cancel, Failure, Session Complete
			return 3
		case 2: // Success: item
			return 5
		}
	case 4: // Reader Disable, Enable, Cancel
		if sub <= 2 {
			return 3
		}
	case 5: // Revalue Request (amount), Limit Request
		switch sub {
		case 0:
			return 5
		case 1:
			return 3
		}
	case 7: // Expansion
		switch sub {
		case 0: // Request ID: manufacturer, serial, model, version
			return 32
		case 4: // Enable Options
			return 7
		}
	}
	return 0
}

// complete reports whether unit (a block being assembled) is a whole
// block of a known length with a good checksum, to be handed over without
// waiting for the gap. A block of a known length that fails its checksum
// is not cut: it is corrupt, and the gap or the VMC's next block ends it.
func complete(unit []mdb.Word) bool {
	n := len(unit)
	if n < 2 || !unit[0].Mode() {
		return false
	}
	var sub byte
	if n > 2 {
		sub = unit[1].Byte()
	}
	if blockLen(unit[0].Byte(), sub) != n {
		return false
	}
	var sum byte
	for _, w := range unit[:n-1] {
		sum += w.Byte()
	}
	return sum == unit[n-1].Byte()
}
