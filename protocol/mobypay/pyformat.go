package mobypay

// Writing JSON as Python's json.dumps does: the canonical form and its str and float formatters.

import (
	"bytes"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

const hexdigits = "0123456789abcdef"

// AppendPyString appends s (UTF-8) as Python's json.dumps writes a str with
// ensure_ascii: short escapes for the usual controls, \u00XX for the rest of
// C0 and DEL, \uXXXX (surrogate pairs above U+FFFF) for everything outside
// ASCII, and nothing else escaped (not '/', '<', '>' or '&').
func AppendPyString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		// Realistic text is all printable ASCII: copy runs of it at once.
		j := plainRun(s, i)
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
			i++
			continue
		case '\n':
			dst = append(dst, '\\', 'n')
			i++
			continue
		case '\r':
			dst = append(dst, '\\', 'r')
			i++
			continue
		case '\t':
			dst = append(dst, '\\', 't')
			i++
			continue
		case '\b':
			dst = append(dst, '\\', 'b')
			i++
			continue
		case '\f':
			dst = append(dst, '\\', 'f')
			i++
			continue
		}
		var r rune
		size := 1
		if c < utf8.RuneSelf {
			r = rune(c)
		} else {
			r, size = decodeRune(s[i:])
		}
		i += size
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			dst = appendU(dst, r1)
			dst = appendU(dst, r2)
		} else {
			dst = appendU(dst, r)
		}
	}
	return append(dst, '"')
}

// plainRun returns the end of the run of pyPlain bytes from s[i], a word
// at a time. The loop branches on whether a word is all plain, so the
// next load does not wait for the bit scan. Fewer than 8 bytes left, as
// at the end of most strings, are checked with the string's last word
// when there is one: the bytes before them are known plain.
func plainRun[S ~string | ~[]byte](s S, i int) int {
	for i+8 <= len(s) {
		if bad := notPlain(word(s, i)); bad != 0 {
			return i + bits.TrailingZeros64(bad)>>3
		}
		i += 8
	}
	if i < len(s) && len(s) >= 8 && notPlain(word(s, len(s)-8)) == 0 {
		return len(s)
	}
	for i < len(s) && pyPlain[s[i]] {
		i++
	}
	return i
}

// word loads s[i:i+8] little-endian; it is assembled bytewise because S
// may be a string, and the compiler merges the loads.
func word[S ~string | ~[]byte](s S, i int) uint64 {
	w := s[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// plainLen returns how many of the eight bytes packed little-endian in w
// are pyPlain before the first that is not, 8 if all are: strings, most
// of a frame, are checked a word at a time. Each term of notPlain sets bit 7 of
// a byte that is not plain (at or above 0x80; below 0x20; 0x7f; '"' or
// '\\'). Carries and borrows only run upwards from a byte that is not
// plain, so they can flag bytes above the first such byte but never one
// below it: the lowest flag is exact. TestPlainLen and FuzzPlainLen hold
// it to the table.
func plainLen(w uint64) int {
	return bits.TrailingZeros64(notPlain(w)) >> 3
}

// notPlain returns the flags plainLen counts to: zero if all eight bytes
// are plain, else bit 7 set in the first byte that is not (and maybe in
// bytes above it). Loops test it against zero to step a whole word.
func notPlain(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) &^ x }
	bad := w | (w - 0x20*ones) | (w + ones) | zero(w^('"'*ones)) | zero(w^('\\'*ones))
	return bad & highs
}

// pyPlain marks the bytes json.dumps with ensure_ascii writes as they are
// inside a string: printable ASCII but the quote and the backslash.
var pyPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// decodeRune decodes through a stack buffer so that one generic body serves
// string and []byte without converting (and allocating) either.
func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(buf[:n])
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexdigits[r>>12&0xf], hexdigits[r>>8&0xf], hexdigits[r>>4&0xf], hexdigits[r&0xf])
}

// appendPyNumber appends f as json.dumps writes a float: repr for finite
// values, NaN, Infinity and -Infinity otherwise.
func appendPyNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return AppendPyFloat(dst, f)
}

// AppendPyFloat appends f as Python's repr(float) writes it: the shortest
// digits that round-trip, fixed notation for 1e-4 <= |f| < 1e16 with at
// least one fractional digit, otherwise d.ddde±XX.
func AppendPyFloat(dst []byte, f float64) []byte {
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		dst = append(dst, '-')
	}
	ePos := bytes.IndexByte(e, 'e')
	mant, exp := e[:ePos], e[ePos+1:]
	x := 0
	for _, c := range exp[1:] {
		x = x*10 + int(c-'0')
	}
	if exp[0] == '-' {
		x = -x
	}
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	decpt := x + 1 // value = 0.d1d2... × 10^decpt
	if f == 0 {
		decpt = 1
	}
	if decpt <= -4 || decpt > 16 {
		dst = append(dst, digits[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'e')
		if x < 0 {
			dst = append(dst, '-')
			x = -x
		} else {
			dst = append(dst, '+')
		}
		if x < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(x), 10)
	}
	switch {
	case decpt <= 0:
		dst = append(dst, '0', '.')
		for range -decpt {
			dst = append(dst, '0')
		}
		dst = append(dst, digits[:nd]...)
	case decpt >= nd:
		dst = append(dst, digits[:nd]...)
		for range decpt - nd {
			dst = append(dst, '0')
		}
		dst = append(dst, '.', '0')
	default:
		dst = append(dst, digits[:decpt]...)
		dst = append(dst, '.')
		dst = append(dst, digits[decpt:nd]...)
	}
	return dst
}

// floatIsRepr reports whether a float literal scanNumber accepted is
// already what Python's repr writes for its value, so that the canonical
// writer can copy it instead of parsing and formatting it (amounts such as
// 16.67 and 100.0 always are). It accepts only [-]I.F with no exponent,
// no trailing zero in F unless F is "0", at most 15 digits in all and,
// below 1, at most three zeros after the point. Why that is the repr:
// IEEE doubles carry 15 decimal digits (DBL_DIG), so distinct decimals of
// at most 15 significant digits in the normal range are distinct doubles;
// the shortest digits that round-trip are therefore the literal's own
// digits without trailing zeros, and with the decimal exponent between -3
// and 15 repr writes them in fixed notation, which is the literal again.
// FuzzFloatIsRepr holds it to the parse-and-format path.
func floatIsRepr(raw []byte) bool {
	i := 0
	if raw[0] == '-' {
		i = 1
	}
	dot := i
	for dot < len(raw) && raw[dot] != '.' {
		if raw[dot] < '0' || raw[dot] > '9' { // an exponent
			return false
		}
		dot++
	}
	frac := raw[min(dot+1, len(raw)):]
	digits := len(raw) - i - 1
	if len(frac) == 1 && frac[0] == '0' {
		digits-- // a whole value: the ".0" is repr's, not a digit of it
	}
	if len(frac) == 0 || digits > 15 {
		return false
	}
	for _, c := range frac {
		if c < '0' || c > '9' {
			return false
		}
	}
	if frac[len(frac)-1] == '0' && len(frac) > 1 {
		return false
	}
	if dot-i == 1 && raw[i] == '0' && len(frac) > 3 { // below 1, not 0.0
		return frac[0] != '0' || frac[1] != '0' || frac[2] != '0' || frac[3] != '0'
	}
	return true
}

// shortNumber reads, from the eight bytes packed little-endian in w, a
// number that starts with a digit 1-9 and ends inside them: D+ or D+.D+
// and then a byte that is neither a digit nor an exponent. It returns its
// length, whether Python makes it a float, and, for a float, floatIsRepr
// of it: at most six digits and no sign, so the repr only asks that the
// fraction not end in a zero it does not need. end is 0 for anything else
// (longer, an exponent, no digit after the point), which scanNumber reads.
// Most numbers in a payload are such (6, 16.67, 100.0); two loops of
// scanNumber and floatIsRepr's were 5% of Verify. A byte is a digit when
// its xor with '0' is below ten; as in notPlain, carries run only upwards
// from a byte already flagged, so the lowest flags are exact, and the
// point, a digit and a flagless byte, carry none. TestShortNumber holds it
// to scanNumber and floatIsRepr.
func shortNumber(w uint64) (end int, isFloat, plain bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	t := w ^ '0'*ones
	other := (t | (t + 0x76*ones)) & highs // bit 7 of each byte not a digit
	if other == 0 {
		return 0, false, false
	}
	k := bits.TrailingZeros64(other) // bit 7 of the first non-digit
	switch byte(w >> (k &^ 7)) {
	case 'e', 'E':
		return 0, false, false
	case '.':
	default:
		return k >> 3, false, true
	}
	other &^= 1<<(k+1) - 1 // the flags after the point's
	if other == 0 {
		return 0, false, false
	}
	k2 := bits.TrailingZeros64(other)
	if k2>>3 == k>>3+1 {
		return 0, false, false
	}
	switch byte(w >> (k2 &^ 7)) {
	case 'e', 'E':
		return 0, false, false
	}
	last := byte(w >> (k2&^7 - 8))
	return k2 >> 3, true, last != '0' || k2>>3 == k>>3+2
}

// AppendCanonical writes the subtree rooted at n in canonical form. It
// records where each value landed in dst, so that a decoder can take field
// values as substrings of one copy of the canonical bytes.
func (p *Parser) AppendCanonical(dst []byte, n int32) ([]byte, error) {
	nd := &p.nodes[n] // nodes do not move while the tree is written
	start := len(dst)
	var err error
	switch {
	case nd.plain:
		dst = p.appendPlain(dst, n)
	case nd.kind == kObject || nd.kind == kArray:
		dst, err = p.appendContainer(dst, nd)
	default:
		dst, err = p.appendScalar(dst, nd)
	}
	nd.oStart, nd.oEnd = int32(start), int32(len(dst))
	return dst, err
}

// appendContainer writes an object or array. Members are written in the
// loop rather than through AppendCanonical: most are scalars, and a call
// per scalar was a tenth of verifying.
func (p *Parser) appendContainer(dst []byte, nd *node) ([]byte, error) {
	obj := nd.kind == kObject
	open, end := byte('['), byte(']')
	if obj {
		open, end = '{', '}'
	}
	dst = append(dst, open)
	var err error
	for i, k := range p.kids[nd.kids : nd.kids+nd.nkids] {
		if i > 0 {
			dst = append(dst, ',')
		}
		kn := &p.nodes[k]
		if obj {
			if kn.keyPlain { // the key as the wire has it, quotes included
				dst = append(dst, p.in[kn.keyStart-1:kn.keyEnd+1]...)
			} else {
				dst = AppendPyString(dst, p.keys[kn.keyStart:kn.keyEnd])
			}
			dst = append(dst, ':')
		}
		start := len(dst)
		switch {
		case kn.plain:
			dst = p.appendPlain(dst, k)
		case kn.kind == kObject || kn.kind == kArray:
			dst, err = p.appendContainer(dst, kn)
		default:
			dst, err = p.appendScalar(dst, kn)
		}
		kn.oStart, kn.oEnd = int32(start), int32(len(dst))
		if err != nil {
			return dst, err
		}
	}
	return append(dst, end), nil
}

// appendPlain copies a value whose wire text is canonical: a plain scalar,
// or a whole container when the peer signed canonical JSON (our own Seal
// and possim, a Python peer with sort_keys and compact separators). Its
// descendants, which are not visited, are placed by their offset in the
// copy: they are the nodes after it in preorder whose spans start inside
// its own.
func (p *Parser) appendPlain(dst []byte, n int32) []byte {
	nd := &p.nodes[n]
	shift := int32(len(dst)) - nd.start
	dst = append(dst, p.in[nd.start:nd.end]...)
	if nd.kind == kObject || nd.kind == kArray {
		rest, end := p.nodes[n+1:], nd.end
		for i := range rest {
			dn := &rest[i]
			if dn.start >= end {
				break
			}
			dn.oStart, dn.oEnd = dn.start+shift, dn.end+shift
		}
	}
	return dst
}

// appendScalar writes a scalar that is not plain (see node.plain).
func (p *Parser) appendScalar(dst []byte, nd *node) ([]byte, error) {
	raw := p.in[nd.start:nd.end]
	switch nd.kind {
	case kString:
		var err error
		p.str, err = decodeString(p.str[:0], raw)
		if err != nil {
			err.(*SyntaxError).Offset += int(nd.start) + 1
			return dst, err
		}
		return AppendPyString(dst, p.str), nil
	case kNumber: // -0
		return append(dst, '0'), nil
	case kFloat:
		return appendPyNumber(dst, parseFloat(raw)), nil
	default:
		return append(dst, raw...), nil
	}
}
