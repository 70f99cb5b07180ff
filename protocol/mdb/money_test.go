package mdb

import (
	"errors"
	"testing"
)

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		s      Scale
		scaled uint16
		sen    int64
		err    error
	}{
		{Scale{1, 2}, 150, 150, nil},  // sen
		{Scale{5, 2}, 7, 35, nil},     // the standard's example: 7 × 5 × 10^-2 = 0.35
		{Scale{1, 0}, 3, 300, nil},    // whole ringgit
		{Scale{10, 1}, 12, 1200, nil}, // ten units of 0.1
		{Scale{1, 3}, 1500, 150, nil}, // thousandths that land on sen
		{Scale{1, 3}, 1505, 0, ErrAmount},
		{Scale{0, 2}, 1, 0, ErrAmount}, // invalid scale
		{Scale{1, 5}, 1, 0, ErrAmount},
	} {
		sen, err := tc.s.ToSen(tc.scaled)
		if !errors.Is(err, tc.err) || (err == nil && sen != tc.sen) {
			t.Errorf("%v.ToSen(%d) = %d, %v; want %d, %v", tc.s, tc.scaled, sen, err, tc.sen, tc.err)
		}
		if tc.err != nil {
			continue
		}
		back, err := tc.s.FromSen(tc.sen)
		if err != nil || back != tc.scaled {
			t.Errorf("%v.FromSen(%d) = %d, %v; want %d", tc.s, tc.sen, back, err, tc.scaled)
		}
	}
	for _, tc := range []struct {
		s   Scale
		sen int64
	}{
		{Scale{5, 2}, 12},      // not a multiple of 5 sen
		{Scale{1, 2}, -1},      // negative
		{Scale{1, 2}, 0xFFFF},  // FFFFh is reserved
		{Scale{1, 2}, 1 << 62}, // overflow guard
		{Scale{1, 0}, 150},     // half a ringgit
		{Scale{255, 0}, 255*100*0xFFFE + 25500},
	} {
		if v, err := tc.s.FromSen(tc.sen); !errors.Is(err, ErrAmount) {
			t.Errorf("%v.FromSen(%d) = %d, %v; want ErrAmount", tc.s, tc.sen, v, err)
		}
	}
	if got := (Scale{5, 2}).floorScaled(12); got != 2 {
		t.Errorf("floorScaled(12 sen, factor 5) = %d, want 2", got)
	}
	if got := (Scale{1, 2}).floorScaled(1 << 40); got != 0xFFFE {
		t.Errorf("floorScaled(huge) = %#x, want FFFEh", got)
	}
}

func FuzzScale(f *testing.F) {
	f.Add(uint8(1), uint8(2), int64(150))
	f.Add(uint8(5), uint8(2), int64(35))
	f.Add(uint8(3), uint8(4), int64(-7))
	f.Fuzz(func(t *testing.T, factor, decimals uint8, sen int64) {
		s := Scale{factor, decimals}
		scaled, err := s.FromSen(sen)
		if err != nil {
			return
		}
		back, err := s.ToSen(scaled)
		if err != nil || back != sen {
			t.Fatalf("%v: %d sen -> %d -> %d, %v", s, sen, scaled, back, err)
		}
	})
}
