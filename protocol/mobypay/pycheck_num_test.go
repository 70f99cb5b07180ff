package mobypay

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The random numbers of the cross-check's JSON text: integers, floats
// at and between the boundaries, non-finite spellings and exponents.

func (g *jsonGen) integer() {
	r := g.r
	switch x := r.IntN(100); {
	case x < 10:
		g.b = append(g.b, "0"...)
	case x < 15:
		g.b = append(g.b, "-0"...)
	case x < 50:
		g.b = strconv.AppendInt(g.b, r.Int64N(2001)-1000, 10)
	case x < 65:
		edges := []string{"2147483647", "-2147483648", "9007199254740992", "9007199254740993",
			"9223372036854775807", "-9223372036854775808", "9223372036854775808",
			"18446744073709551616", "-18446744073709551617", "1000000000000000", "10000000000000000"}
		g.b = append(g.b, edges[r.IntN(len(edges))]...)
	case x < 99:
		g.bigInt(1 + r.IntN(100))
	default:
		g.bigInt(1 + r.IntN(maxIntDigits))
	}
}

func (g *jsonGen) bigInt(digits int) {
	if g.r.IntN(5) < 2 {
		g.b = append(g.b, '-')
	}
	g.b = append(g.b, byte('1'+g.r.IntN(9)))
	for range digits - 1 {
		g.b = append(g.b, byte('0'+g.r.IntN(10)))
	}
}

var floatBoundaries = []float64{
	1e-5, 1e-4, 1e-3, 0.1, 1, 1e15, 1e16, 1e17, 1e21, 1e22, 1e23,
	1 << 53, 1 << 63, 1 << 64, 9999999999999998, math.SmallestNonzeroFloat64,
	0x1p-1022, math.MaxFloat64, 0.5, 12.5,
}

// randFloat picks a finite float64 from the kinds that exercise repr.
func (g *jsonGen) randFloat() float64 {
	r := g.r
	neg := func(f float64) float64 {
		if r.IntN(10) < 3 {
			return -f
		}
		return f
	}
	switch x := r.IntN(100); {
	case x < 20:
		for {
			if f := math.Float64frombits(r.Uint64()); !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f
			}
		}
	case x < 28: // subnormal
		return neg(math.Float64frombits(r.Uint64() & (1<<52 - 1)))
	case x < 40:
		specials := []float64{0, math.Copysign(0, -1), pointOne + pointTwo, 1.0 / 3, 2.0 / 3,
			math.Pi, math.E, 9.999999999999999e-05, 123456789012345678, 2, 100, 10, 12.5,
			0.05, 0.3, 1e100, 1.23e-100, 4.35, 0.07, 1.005, 0x1p-1022 - 0x1p-1074}
		return neg(specials[r.IntN(len(specials))])
	case x < 55: // a few ulps either side of a formatting boundary
		f := floatBoundaries[r.IntN(len(floatBoundaries))]
		for range r.IntN(4) {
			f = math.Nextafter(f, math.Inf(1))
		}
		for range r.IntN(4) {
			f = math.Nextafter(f, 0)
		}
		if math.IsInf(f, 0) {
			f = math.MaxFloat64
		}
		return neg(f)
	case x < 70: // money
		return float64(r.Int64N(int64(math.Pow10(1+r.IntN(11))))) / 100
	case x < 85: // short decimals at any scale
		for {
			m := r.Int64N(int64(math.Pow10(1+r.IntN(17)))) + 1
			f, err := strconv.ParseFloat(fmt.Sprintf("%de%d", m, r.IntN(641)-340), 64)
			if err == nil {
				return neg(f)
			}
		}
	case x < 93:
		return math.Ldexp(1, r.IntN(2098)-1074)
	default:
		return float64(r.Int64N(1<<62) - 1<<61)
	}
}

// float writes a number Python reads as a float, in one of many spellings.
func (g *jsonGen) float() {
	r := g.r
	if r.IntN(100) < 4 {
		g.nonFinite()
		return
	}
	switch x := r.IntN(100); {
	case x < 5: // zero
		zeros := []string{"0.0", "-0.0", "0e0", "-0E-0", "0.000e+5", "-0.0e10", "0E+00", "0.0e-400"}
		g.b = append(g.b, zeros[r.IntN(len(zeros))]...)
		return
	case x < 15:
		g.randomDecimal()
		return
	case x < 22:
		g.midpoint(g.randFloat())
		return
	}
	f := g.randFloat()
	if math.Signbit(f) {
		g.b = append(g.b, '-')
		f = -f
	}
	// shortest digits d1d2...dn with value 0.d1d2...dn × 10^decpt
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1
	if f == 0 {
		digits, decpt = "0", 1
	}
	switch r.IntN(7) {
	case 0: // Go's own shortest forms, made floats if they look like ints
		s := strconv.FormatFloat(f, "efgEG"[r.IntN(5)], -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += []string{".0", ".000", "e0", "E+00"}[r.IntN(4)]
		}
		g.b = append(g.b, s...)
	case 1: // fixed notation with trailing zeros
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += "."
		} else if r.IntN(2) == 0 {
			s += strings.Repeat("0", r.IntN(4))
		}
		g.b = append(g.b, s+"0"...)
	case 2: // exact decimal expansion, up to 767 significant digits
		s := strconv.FormatFloat(f, 'e', 800, 64)
		m, ex, _ := strings.Cut(s, "e")
		m = strings.TrimRight(m, "0")
		m = strings.TrimSuffix(m, ".")
		g.b = append(g.b, m...)
		g.exponent(ex)
	default: // the shortest digits with the decimal point moved
		shift := r.IntN(25) - 12
		switch {
		case shift > 0: // leading zeros: 0.000ddd
			g.b = append(g.b, "0."...)
			g.b = append(g.b, strings.Repeat("0", shift)...)
			g.b = append(g.b, digits...)
			g.exponent(strconv.Itoa(decpt + shift))
		case shift < 0 && digits != "0": // an integer mantissa: ddd000e-k
			g.b = append(g.b, digits...)
			g.b = append(g.b, strings.Repeat("0", -shift)...)
			g.exponent(strconv.Itoa(decpt - len(digits) + shift))
		default: // d.ddd, maybe with trailing zeros
			g.b = append(g.b, digits[0])
			if len(digits) > 1 || r.IntN(2) == 0 {
				g.b = append(g.b, '.')
				g.b = append(g.b, digits[1:]...)
				if len(digits) == 1 {
					g.b = append(g.b, '0')
				}
				g.b = append(g.b, strings.Repeat("0", r.IntN(3))...)
			}
			g.exponent(strconv.Itoa(decpt - 1))
		}
	}
}

// nonFinite writes what Python reads as NaN or ±inf, or a literal whose
// exponent is far outside the double range either way.
func (g *jsonGen) nonFinite() {
	r := g.r
	sign := func() {
		if r.IntN(2) == 0 {
			g.b = append(g.b, '-')
		}
	}
	switch r.IntN(6) {
	case 0:
		g.b = append(g.b, "NaN"...)
	case 1:
		g.b = append(g.b, "Infinity"...)
	case 2:
		g.b = append(g.b, "-Infinity"...)
	case 3: // beyond the double range
		sign()
		g.b = append(g.b, byte('1'+r.IntN(9)))
		if r.IntN(2) == 0 {
			g.b = append(g.b, '.')
			for range 1 + r.IntN(20) {
				g.b = append(g.b, byte('0'+r.IntN(10)))
			}
		}
		g.exponent(strconv.Itoa(309 + r.IntN(1000)))
	case 4: // an exponent no float64 or int64 holds, either sign
		sign()
		g.b = append(g.b, "0123456789"[r.IntN(10)])
		g.b = append(g.b, "eE"[r.IntN(2)])
		if r.IntN(2) == 0 {
			g.b = append(g.b, '-')
		}
		g.b = append(g.b, "99999999999999999999999"...)
	default: // about the midpoint of MaxFloat64 and 2^1024: ties round to inf
		sign()
		m := new(big.Int).Lsh(big.NewInt(1), 1024)
		m.Sub(m, new(big.Int).Lsh(big.NewInt(1), 970))
		digits := m.String()
		switch r.IntN(3) {
		case 0:
			digits += ".0000000000000000000001"
		case 1:
			digits = new(big.Int).Sub(m, big.NewInt(1)).String() + ".9999999999999999999"
		}
		g.b = append(g.b, digits...)
		if r.IntN(2) == 0 {
			g.exponent("0")
		}
	}
}

// exponent writes e/E, an optional '+', leading zeros and the exponent.
func (g *jsonGen) exponent(ex string) {
	r := g.r
	g.b = append(g.b, "eE"[r.IntN(2)])
	n, _ := strconv.Atoi(ex)
	if n < 0 {
		g.b = append(g.b, '-')
		n = -n
	} else if r.IntN(2) == 0 {
		g.b = append(g.b, '+')
	}
	g.b = append(g.b, strings.Repeat("0", r.IntN(3))...)
	g.b = strconv.AppendInt(g.b, int64(n), 10)
}

// randomDecimal writes an arbitrary decimal that both sides must round to
// the same nearest float: up to 40 significant digits, exponent kept clear
// of overflow.
func (g *jsonGen) randomDecimal() {
	r := g.r
	if r.IntN(3) == 0 {
		g.b = append(g.b, '-')
	}
	nd := 1 + r.IntN(40)
	ip := 1 + r.IntN(nd)
	g.b = append(g.b, byte('1'+r.IntN(9)))
	for range ip - 1 {
		g.b = append(g.b, byte('0'+r.IntN(10)))
	}
	if frac := nd - ip; frac > 0 || r.IntN(2) == 0 {
		g.b = append(g.b, '.')
		for range max(frac, 1) {
			g.b = append(g.b, byte('0'+r.IntN(10)))
		}
		if r.IntN(2) == 0 {
			return
		}
	}
	g.exponent(strconv.Itoa(r.IntN(600) - 330 - ip))
}

// midpoint writes the exact decimal halfway between f and the next float
// away from zero (ties go to even), sometimes nudged just below or above.
func (g *jsonGen) midpoint(f float64) {
	f = math.Abs(f)
	next := math.Nextafter(f, math.Inf(1))
	if math.IsInf(next, 0) {
		next, f = f, math.Nextafter(f, 0)
	}
	m := new(big.Float).SetPrec(64).SetFloat64(f)
	m.Add(m, new(big.Float).SetFloat64(next))
	m.SetMantExp(m, -1) // exact: 64 bits hold the 54-bit midpoint
	if g.r.IntN(2) == 0 {
		g.b = append(g.b, '-')
	}
	s := m.Text('e', 1100)
	mant, ex, _ := strings.Cut(s, "e")
	mant = strings.TrimRight(mant, "0")
	switch g.r.IntN(4) {
	case 0: // a hair above the midpoint
		if !strings.Contains(mant, ".") {
			mant += "."
		}
		mant += "000000000000000000001"
	case 1: // a hair below: the midpoint's last digit is 5
		if strings.HasSuffix(mant, "5") {
			mant = mant[:len(mant)-1] + "49999999999999999999"
		}
	}
	mant = strings.TrimSuffix(mant, ".")
	g.b = append(g.b, mant...)
	g.exponent(ex)
}
