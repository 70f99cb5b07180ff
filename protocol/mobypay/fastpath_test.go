package mobypay

// Differential checks of the canonicaliser's fast paths: each must write
// exactly what the general path writes, on every input.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// appendPyStringRef is AppendPyString as it was before it copied runs:
// one byte or rune at a time, the obvious reading of json.dumps.
func appendPyStringRef(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			if c == '"' || c == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
			i++
			continue
		}
		switch c {
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

func FuzzPyString(f *testing.F) {
	for _, s := range []string{"", "TXN1757492757556", `a"b\c`, "é😀\x7f\x00\n", "K6LQxCh2CAE2NB8Do3HOrw==", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := appendPyStringRef([]byte("x"), s)
		if got := AppendPyString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("AppendPyString(%q) = %q, want %q", s, got, want)
		}
		if got := AppendPyString([]byte("x"), []byte(s)); !bytes.Equal(got, want) {
			t.Fatalf("AppendPyString([]byte(%q)) = %q, want %q", s, got, want)
		}
	})
}

// FuzzScanStringPlain: a string scanString calls plain, which the
// canonical writer copies as it came, decodes and re-escapes to itself.
func FuzzScanStringPlain(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"\u00e9"`, "\"é\"", "\"\x7f\"", `"/<>&"`, `""`, `"x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return
		}
		end, plain, err := scanString(b, 0)
		if err != nil || !plain {
			return
		}
		raw := b[:end]
		dec, err := decodeString(nil, raw)
		if err != nil {
			t.Fatalf("plain string %q does not decode: %v", raw, err)
		}
		if got := AppendPyString(nil, dec); !bytes.Equal(got, raw) {
			t.Fatalf("plain string %q is written back as %q", raw, got)
		}
	})
}

// checkFloatIsRepr fails if floatIsRepr claims a literal the general
// path (parse, then Python's repr) would write differently.
func checkFloatIsRepr(t *testing.T, s string) {
	t.Helper()
	b := []byte(s)
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return
	}
	end, isFloat, err := scanNumber(b, 0)
	if err != nil || !isFloat || end != len(b) {
		return
	}
	want := appendPyNumber(nil, parseFloat(b))
	if floatIsRepr(b) && string(want) != s {
		t.Fatalf("floatIsRepr(%q) but its repr is %q", s, want)
	}
}

func FuzzFloatIsRepr(f *testing.F) {
	for _, s := range []string{"16.67", "100.0", "0.0001", "0.00001", "-0.0", "0.0", "123456789012345.0",
		"12345678901234.5", "0.12345678901234", "999999999999999.9", "1e5", "1.5e3", "12.50", "0.1"} {
		f.Add(s)
	}
	f.Fuzz(checkFloatIsRepr)
}

// TestFloatIsRepr runs the fuzz property over random decimals around the
// edges of floatIsRepr (15 digits, 1e-4, 1e15) on every test run.
func TestFloatIsRepr(t *testing.T) {
	for _, s := range []string{"16.67", "100.0", "0.0001", "-0.0", "0.0", "123456789012345.0", "0.12345678901234"} {
		if !floatIsRepr([]byte(s)) {
			t.Errorf("floatIsRepr(%q) = false, want the fast path", s)
		}
		checkFloatIsRepr(t, s)
	}
	r := rand.New(rand.NewPCG(14, 4))
	claimed := 0
	for range 200000 {
		nd := 1 + r.IntN(17)
		digits := strconv.FormatUint(r.Uint64N(1e17), 10)
		digits = (digits + "00000000000000000")[:nd]
		point := r.IntN(nd+5) - 4 // digits before the point; < 1 pads zeros
		var s string
		switch {
		case point <= 0:
			s = "0." + string(bytes.Repeat([]byte("0"), -point)) + digits
		case point >= nd:
			s = digits + string(bytes.Repeat([]byte("0"), point-nd)) + ".0"
		default:
			s = digits[:point] + "." + digits[point:]
		}
		if s[0] == '0' && len(s) > 1 && s[1] != '.' { // a leading zero is no JSON
			continue
		}
		if r.IntN(2) == 0 {
			s = "-" + s
		}
		if floatIsRepr([]byte(s)) {
			claimed++
		}
		checkFloatIsRepr(t, s)
	}
	if claimed < 10000 {
		t.Fatalf("only %d random literals took the fast path", claimed)
	}
}

// FuzzSortMembers holds sortMembers (insertion sort on key prefixes for
// small objects) to a plain sort of the keys, duplicates included. The
// input is a list of keys separated by 0xff.
func FuzzSortMembers(f *testing.F) {
	f.Add([]byte("type\xfftxn_id\xfftimestamp\xffstatus\xffpos_id\xffplans\xffnonce\xffamount"))
	f.Add([]byte("a\xffa\x00\xffa\x00b\xff\xffabcdefgh\xffabcdefghi\xffabcdefgh\x00"))
	f.Add([]byte("k\xffk"))
	f.Add(bytes.Repeat([]byte("ab\xffb\xffc\xff"), 7))
	f.Fuzz(func(t *testing.T, in []byte) {
		keys := strings.Split(strings.ToValidUTF8(string(in), "?"), "\xff")
		if len(keys) > 64 {
			return
		}
		doc := []byte{'{'}
		for i, k := range keys {
			if i > 0 {
				doc = append(doc, ',')
			}
			doc = AppendPyString(doc, k)
			doc = append(doc, ':', '0')
		}
		doc = append(doc, '}')
		var p Parser
		root, err := p.Parse(doc)
		want := slices.Clone(keys)
		slices.Sort(want)
		dup := len(slices.Compact(slices.Clone(want))) != len(want)
		if dup != (err != nil) {
			t.Fatalf("keys %q: duplicate %v, Parse error %v", keys, dup, err)
		}
		if dup {
			return
		}
		nd := p.nodes[root]
		for i, k := range p.kids[nd.kids : nd.kids+nd.nkids] {
			if got := string(p.key(k)); got != want[i] {
				t.Fatalf("keys %q: member %d is %q, want %q", keys, i, got, want[i])
			}
		}
	})
}

// TestBuilderWordsArePlain: the builders write types and payment modes
// without escaping, which is their canonical form only while they are
// plain.
func TestBuilderWordsArePlain(t *testing.T) {
	for _, w := range []string{TypeTransactionRequest, TypeIPPPlanSelection, TypeCancelTransaction, ModeCard, ModeBNPL, ModeDuitNowQR, ModeIPP} {
		if got := string(AppendPyString(nil, w)); got != `"`+w+`"` {
			t.Errorf("%q is written %s by json.dumps", w, got)
		}
	}
	for _, m := range []string{ModeCard, ModeBNPL, ModeDuitNowQR, ModeIPP, "new\"mode"} {
		if got, want := string(appendMode(nil, m)), string(AppendPyString(nil, m)); got != want {
			t.Errorf("appendMode(%q) = %s, want %s", m, got, want)
		}
	}
}

func plainLenRef(w uint64) int {
	for i := range 8 {
		if !pyPlain[byte(w)] {
			return i
		}
		w >>= 8
	}
	return 8
}

// TestPlainLen puts every byte value at every position of plain words and
// of words with other bytes near the edges of the plain range.
func TestPlainLen(t *testing.T) {
	for _, base := range []uint64{0x6161616161616161, 0x2020202020202020, 0x7e7e7e7e7e7e7e7e, 0, 0x2121212121212121, 0x5d5d5d5d5d5d5d5d, 0x2323232323232323, 0x5b5b5b5b5b5b5b5b, 0x0101010101010101, 0xffffffffffffffff, 0x2222222222222222} {
		for pos := range 8 {
			for c := range 256 {
				w := base&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
				if got, want := plainLen(w), plainLenRef(w); got != want {
					t.Fatalf("plainLen(%#016x) = %v, want %v", w, got, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(8, 8))
	for range 1 << 20 {
		w := r.Uint64()
		if r.IntN(2) == 0 { // mostly plain bytes, so that every answer occurs
			w = w&0x3f3f3f3f3f3f3f3f | 0x4040404040404040
			w ^= uint64(r.IntN(256)) << (8 * r.IntN(8))
			w ^= uint64(r.IntN(256)) << (8 * r.IntN(8))
		}
		if got, want := plainLen(w), plainLenRef(w); got != want {
			t.Fatalf("plainLen(%#016x) = %v, want %v", w, got, want)
		}
	}
}

func FuzzPlainLen(f *testing.F) {
	f.Add(uint64(0x6161616161616161))
	f.Add(uint64(0x617f616161226161))
	f.Fuzz(func(t *testing.T, w uint64) {
		if got, want := plainLen(w), plainLenRef(w); got != want {
			t.Fatalf("plainLen(%#016x) = %v, want %v", w, got, want)
		}
	})
}

func TestAppendHex32(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 32))
	var sum [32]byte
	for i := range 1 << 14 {
		switch i {
		case 0:
		case 1:
			sum = [32]byte{0: 0xff, 1: 0x9a, 2: 0xa9, 3: 0x09, 31: 0xf0}
		default:
			for j := range sum {
				sum[j] = byte(r.Uint32())
			}
		}
		got := appendHex32([]byte("x"), sum[:])
		if want := "x" + hex.EncodeToString(sum[:]); string(got) != want {
			t.Fatalf("appendHex32(%x) = %s", sum, got)
		}
	}
}

// FuzzPlainContainers holds the verbatim copy of canonical containers to
// the member-by-member writer: the same bytes and the same spans for every
// node. Each input is tried as it is and in its canonical form, which is
// where containers are plain.
func FuzzPlainContainers(f *testing.F) {
	addVectorSeeds(f)
	f.Add([]byte(plansPayload))
	f.Add([]byte(`{"a":{"b":[1,{"c":"d"}],"e":[]},"f":{}}`))
	f.Add([]byte(`{"b":1,"a":2}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[{"a":-0},{"b":1.50},"\u00e9"]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkPlainContainers(t, in)
		if canon, err := Canonical(in); err == nil {
			checkPlainContainers(t, canon)
		}
	})
}

func checkPlainContainers(t *testing.T, in []byte) {
	t.Helper()
	var p Parser
	root, err := p.Parse(in)
	if err != nil {
		return
	}
	fast, ferr := p.AppendCanonical(nil, root)
	type span struct{ s, e int32 }
	spans := make([]span, len(p.nodes))
	for i, n := range p.nodes {
		spans[i] = span{n.oStart, n.oEnd}
	}
	plain := 0
	for i := range p.nodes {
		n := &p.nodes[i]
		if n.kind != kObject && n.kind != kArray || !n.plain {
			continue
		}
		plain++
		n.plain = false
		if n.kind == kObject {
			if err := p.sortMembers(int32(i)); err != nil {
				t.Fatalf("plain object %s: %v", in[n.start:n.end], err)
			}
		}
	}
	if plain == 0 {
		return
	}
	slow, serr := p.AppendCanonical(nil, root)
	if !bytes.Equal(fast, slow) || (ferr == nil) != (serr == nil) {
		t.Fatalf("%q: verbatim %q (%v), written %q (%v)", in, fast, ferr, slow, serr)
	}
	for i, n := range p.nodes {
		if (span{n.oStart, n.oEnd}) != spans[i] {
			t.Fatalf("%q: node %d at %v verbatim, %v written", in, i, spans[i], span{n.oStart, n.oEnd})
		}
	}
}

// shortNumberRef is what shortNumber must return for the word w: the
// number scanNumber reads at its first byte when it ends inside the word
// without an exponent, else nothing.
func shortNumberRef(w uint64) (end int, isFloat, plain bool) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], w)
	end, isFloat, err := scanNumber(b[:], 0)
	if err != nil || end == len(b) || bytes.ContainsAny(b[:end], "eE") {
		return 0, false, false
	}
	return end, isFloat, !isFloat || floatIsRepr(b[:end])
}

func checkShortNumber(t *testing.T, w uint64) {
	t.Helper()
	if c := byte(w); c < '1' || c > '9' {
		w = w&^0xff | uint64('1'+c%9)
	}
	e, f, p := shortNumber(w)
	we, wf, wp := shortNumberRef(w)
	if e != we || f != wf || p != wp {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		t.Fatalf("shortNumber(%q) = %d, %v, %v, want %d, %v, %v", b, e, f, p, we, wf, wp)
	}
}

// TestShortNumber tries every word of the bytes that matter to a number
// in each place (a digit, both exponents, the point, a byte that ends the
// number, one that carries): 2 * 7^7 words.
func TestShortNumber(t *testing.T) {
	const alphabet = "07.eE,\xff"
	var b [8]byte
	fast := 0
	var try func(i int)
	try = func(i int) {
		if i == len(b) {
			w := binary.LittleEndian.Uint64(b[:])
			checkShortNumber(t, w)
			if n, _, _ := shortNumber(w); n > 0 {
				fast++
			}
			return
		}
		for _, c := range []byte(alphabet) {
			b[i] = c
			try(i + 1)
		}
	}
	for _, c := range []byte("19") {
		b[0] = c
		try(1)
	}
	if fast < 5e5 {
		t.Fatalf("only %d words took the fast path", fast)
	}
}

func FuzzShortNumber(f *testing.F) {
	for _, s := range []string{"16.67,\"n", "100.0}}x", "6,\"plans", "1.50,xxx", "1e5,xxxx", "1234567,", "12345678", "1.}xxxxx"} {
		f.Add(binary.LittleEndian.Uint64([]byte(s)))
	}
	f.Fuzz(checkShortNumber)
}
