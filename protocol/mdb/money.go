package mdb

import "errors"

// ErrAmount is the verdict on an amount that the wire cannot carry
// exactly: not a whole number of scaled units, negative, or too large for
// the 16-bit field.
var ErrAmount = errors.New("mdb: amount not representable in scaled units")

// Scale is the reader's money scaling as announced in its configuration
// data: a price P on the wire means P × Factor × 10^-Decimals currency
// units. kioskd keeps money as integer sen (hundredths of the currency
// unit), so one scaled unit is Factor × 100 / 10^Decimals sen, which is
// an integer only when Decimals ≤ 2 or Factor makes up the difference.
// Every conversion is exact or refused; there is no rounding of prices.
type Scale struct {
	Factor   uint8 // 1..255
	Decimals uint8 // 0..4
}

// maxScaled is the largest 16-bit amount that is a real amount: FFFFh is
// reserved (an electronic token in Vend Approved, "unknown" in Begin
// Session, "no maximum" in Max/Min Prices).
const maxScaled = 0xFFFE

var pow10 = [...]uint64{1, 10, 100, 1000, 10000}

func (s Scale) valid() bool { return s.Factor != 0 && int(s.Decimals) < len(pow10) }

// ToSen converts a scaled wire amount to sen. It fails with ErrAmount
// when the amount is not a whole number of sen (possible only with more
// than two decimals) or the scale is invalid.
func (s Scale) ToSen(scaled uint16) (int64, error) {
	if !s.valid() {
		return 0, ErrAmount
	}
	num := uint64(scaled) * uint64(s.Factor) * 100
	den := pow10[s.Decimals]
	if num%den != 0 {
		return 0, ErrAmount
	}
	return int64(num / den), nil
}

// FromSen converts sen to a scaled wire amount. It fails with ErrAmount
// for a negative amount, one that is not a whole number of scaled units
// (with factor 5 and two decimals, 12 sen), or one above FFFEh units.
func (s Scale) FromSen(sen int64) (uint16, error) {
	if !s.valid() || sen < 0 {
		return 0, ErrAmount
	}
	// sen ≤ maxScaled × 255 × 100 for anything representable; checking
	// first keeps the multiplication below from overflowing.
	if uint64(sen) > maxScaled*255*100 {
		return 0, ErrAmount
	}
	num := uint64(sen) * pow10[s.Decimals]
	unit := uint64(s.Factor) * 100
	if num%unit != 0 || num/unit > maxScaled {
		return 0, ErrAmount
	}
	return uint16(num / unit), nil
}

// floorScaled converts sen to scaled units rounding down and capping at
// FFFEh: the right rounding for Funds Available, a limit the patron may
// spend up to, never beyond.
func (s Scale) floorScaled(sen int64) uint16 {
	if !s.valid() || sen <= 0 {
		return 0
	}
	if uint64(sen) > maxScaled*255*100 {
		return maxScaled
	}
	v := uint64(sen) * pow10[s.Decimals] / (uint64(s.Factor) * 100)
	if v > maxScaled {
		return maxScaled
	}
	return uint16(v)
}
