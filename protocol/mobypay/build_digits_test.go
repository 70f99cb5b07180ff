package mobypay

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestDigits8Constants checks the multiply-shift divisions digits8 relies
// on for every value they are used with.
func TestDigits8Constants(t *testing.T) {
	for y := uint64(0); y < 10000; y++ {
		if y*10486>>20 != y/100 {
			t.Fatalf("%d*10486>>20 != %d/100", y, y)
		}
	}
	for z := uint64(0); z < 100; z++ {
		if z*103>>10 != z/10 {
			t.Fatalf("%d*103>>10 != %d/10", z, z)
		}
	}
}

// tsCodec's appendTimestamp sees every value checkAppendDecimal checks,
// in the order checked, so its cached high digits are both reused and
// replaced.
var tsCodec = NewCodec([]byte(DevSecret))

func checkAppendDecimal(t *testing.T, v int64) {
	t.Helper()
	want := "x" + strconv.FormatInt(v, 10)
	if got := string(appendDecimal([]byte("x"), v)); got != want {
		t.Fatalf("appendDecimal(%d) = %q, want %q", v, got, want)
	}
	if got := string(tsCodec.appendTimestamp([]byte("x"), v)); got != want {
		t.Fatalf("appendTimestamp(%d) = %q, want %q", v, got, want)
	}
	if v < math.MaxInt64 {
		next := "x" + strconv.FormatInt(v+1, 10)
		if got := string(tsCodec.appendTimestamp([]byte("x"), v+1)); got != next {
			t.Fatalf("appendTimestamp(%d) after %d = %q, want %q", v+1, v, got, next)
		}
	}
}

// TestAppendDecimal holds appendDecimal to strconv: every value below
// 10^5, around each power of ten and each multiple of 10^4 and 10^8 that
// the digit splits turn on, the ends of int64, and random values.
func TestAppendDecimal(t *testing.T) {
	for v := range int64(100000) {
		checkAppendDecimal(t, v)
	}
	for p := int64(1); p <= 1e18; p *= 10 {
		for d := int64(-2); d <= 2; d++ {
			checkAppendDecimal(t, p+d)
			checkAppendDecimal(t, -p+d)
		}
	}
	for k := int64(1); k < 1000; k++ {
		for _, m := range []int64{1e4, 1e8, 1e12} {
			checkAppendDecimal(t, k*m-1)
			checkAppendDecimal(t, k*m)
			checkAppendDecimal(t, k*m+1)
		}
	}
	for _, v := range []int64{math.MinInt64, math.MinInt64 + 1, math.MaxInt64, 1e16 - 1, 1e16, 1757492341555} {
		checkAppendDecimal(t, v)
	}
	r := rand.New(rand.NewPCG(8, 8))
	for range 1 << 16 {
		checkAppendDecimal(t, int64(r.Uint64()>>r.IntN(64)))
		checkAppendDecimal(t, r.Int64N(1e16))
	}
}

func FuzzAppendDecimal(f *testing.F) {
	for _, v := range []int64{0, 7, 99999999, 100000000, 1757492341555, 1e16 - 1, -1} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		checkAppendDecimal(t, v)
		checkAppendDecimal(t, v%1e16)
		checkAppendDecimal(t, v%1e8)
	})
}
