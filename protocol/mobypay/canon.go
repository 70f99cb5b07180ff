package mobypay

// The JSON parser behind canonicalisation: a flat tree of what CPython's json.loads accepts.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds nesting of received JSON. Real payloads nest two deep
// (plans[].installmentDetails[]); the bound keeps a hostile frame from
// exhausting the stack.
const MaxDepth = 32

// maxIntDigits mirrors CPython's default int string conversion limit
// (sys.get_int_max_str_digits): json.loads refuses longer integers, so a
// peer using Python could never have signed one.
const maxIntDigits = 4300

// SyntaxError reports why a received payload cannot be canonicalised.
type SyntaxError struct {
	Offset int // byte offset in the input
	Msg    string
}

func (e *SyntaxError) Error() string { return errPrefix + e.detail() }

// detail is the text without the package prefix, for the envelope error
// that wraps it (see errorf).
func (e *SyntaxError) detail() string {
	return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset)
}

type kind uint8

const (
	kObject kind = iota + 1
	kArray
	kString
	kNumber // integer literal
	kFloat  // literal with '.', 'e' or 'E'
	kTrue
	kFalse
	kNull
	kNaN // the token NaN
	kInf // the token Infinity or -Infinity
)

// node is one JSON value in a parsed document. Spans index the input; a
// member's decoded key lives in Parser.keys.
type node struct {
	kind       kind
	plain      bool  // the wire text of this value is its canonical text
	keyPlain   bool  // a member whose key is written as the wire spelled it
	start, end int32 // value span in the input (strings include quotes)
	keyStart   int32 // decoded key span of an object member: in the input
	keyEnd     int32 // if keyPlain, else in Parser.keys
	kids       int32 // first child index in Parser.kids
	nkids      int32
	oStart     int32 // span of this value in the last AppendCanonical output
	oEnd       int32
	keyPrefix  uint64 // the key's first 8 bytes, big-endian, zero-padded
}

// Parser parses JSON into a flat tree and writes it back in the form
// Python's json.dumps(obj, sort_keys=True, separators=(',', ':')) produces.
// A Parser is reused across messages so that steady-state parsing allocates
// nothing; it is not safe for concurrent use.
//
// It accepts what CPython's json.loads accepts, which is JSON plus the
// tokens NaN, Infinity and -Infinity; a float literal beyond the double
// range (1e400) is read as ±Infinity. They are written back as NaN,
// Infinity and -Infinity, as json.dumps does. Python writes them by
// default (allow_nan=True), so a peer can sign them without meaning to,
// and a correctly signed message must never be dropped before the journal:
// refusing them here would turn a paid outcome into a timeout. Deciding what
// such a value means is the decoder's job (see Codec.Decode). What the
// canonicaliser still refuses it refuses on purpose: duplicate keys, lone
// surrogates, invalid UTF-8 and nesting deeper than MaxDepth, where two
// parties could disagree about which bytes were signed, and integers longer
// than Python's digit limit, which no Python peer can sign.
type Parser struct {
	in    []byte
	nodes []node
	kids  []int32
	stack []int32
	keys  []byte
	str   []byte // scratch for decoding string values
	depth int
}

// Canonical appends the canonical form of the JSON text src to dst.
func (p *Parser) Canonical(dst, src []byte) ([]byte, error) {
	root, err := p.Parse(src)
	if err != nil {
		return dst, err
	}
	return p.AppendCanonical(dst, root)
}

// Canonical is a convenience wrapper for one-off use.
func Canonical(src []byte) ([]byte, error) {
	var p Parser
	return p.Canonical(nil, src)
}

// Parse parses src as one JSON value, surrounded only by whitespace, and
// returns the root node. The tree stays valid until the next Parse.
func (p *Parser) Parse(src []byte) (int32, error) {
	if len(src) > 1<<30 {
		return 0, &SyntaxError{0, "input too large"}
	}
	p.in = src
	p.nodes = p.nodes[:0]
	p.kids = p.kids[:0]
	p.stack = p.stack[:0]
	p.keys = p.keys[:0]
	p.depth = 0
	i := skipWS(src, 0)
	root, i, err := p.value(i)
	if err != nil {
		return 0, err
	}
	if i = skipWS(src, i); i != len(src) {
		return 0, &SyntaxError{i, "trailing data after JSON value"}
	}
	return root, nil
}

func skipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' { // most calls: a token follows at once
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// add appends a node and returns its index. The node is written in place:
// appending a node value built on the stack was a sixth of Verify, its
// narrow field stores read back as wide loads for the copy (a failed
// store-to-load forward on every value).
func (p *Parser) add(k kind, plain bool, start, end int) int32 {
	n := len(p.nodes)
	if n < cap(p.nodes) {
		p.nodes = p.nodes[:n+1]
	} else {
		p.nodes = append(p.nodes, node{})
	}
	nd := &p.nodes[n]
	*nd = node{}
	nd.kind, nd.plain, nd.start, nd.end = k, plain, int32(start), int32(end)
	return int32(n)
}

func (p *Parser) value(i int) (int32, int, error) {
	b := p.in
	if i >= len(b) {
		return 0, i, &SyntaxError{i, "unexpected end of input"}
	}
	// Strings and numbers first: they are most of the values.
	switch c := b[i]; {
	case c == '"':
		end, plain, err := scanString(b, i)
		if err != nil {
			return 0, i, err
		}
		return p.add(kString, plain, i, end), end, nil
	case c >= '0' && c <= '9' || c == '-' && !bytes.HasPrefix(b[i:], []byte("-Infinity")):
		end, isFloat, err := scanNumber(b, i)
		if err != nil {
			return 0, i, err
		}
		if isFloat {
			return p.add(kFloat, floatIsRepr(b[i:end]), i, end), end, nil
		}
		plain := end-i != 2 || c != '-' || b[i+1] != '0' // Python's int("-0") is 0
		return p.add(kNumber, plain, i, end), end, nil
	case c == '{':
		return p.object(i)
	case c == '[':
		return p.array(i)
	case c == '-': // -Infinity
		return p.add(kInf, true, i, i+9), i + 9, nil
	case bytes.HasPrefix(b[i:], []byte("true")):
		return p.add(kTrue, true, i, i+4), i + 4, nil
	case bytes.HasPrefix(b[i:], []byte("false")):
		return p.add(kFalse, true, i, i+5), i + 5, nil
	case bytes.HasPrefix(b[i:], []byte("null")):
		return p.add(kNull, true, i, i+4), i + 4, nil
	case bytes.HasPrefix(b[i:], []byte("NaN")):
		return p.add(kNaN, true, i, i+3), i + 3, nil
	case bytes.HasPrefix(b[i:], []byte("Infinity")):
		return p.add(kInf, true, i, i+8), i + 8, nil
	default:
		return 0, i, &SyntaxError{i, fmt.Sprintf("unexpected character %q", c)}
	}
}

// enter counts a level of nesting. Its error is built out of line so that
// enter inlines into object and array.
func (p *Parser) enter(i int) error {
	if p.depth++; p.depth > MaxDepth {
		return tooDeep(i)
	}
	return nil
}

//go:noinline
func tooDeep(i int) error {
	return &SyntaxError{i, fmt.Sprintf("nesting deeper than %d", MaxDepth)}
}

// finish moves the children collected on the stack since mark into kids.
func (p *Parser) finish(self int32, mark int) {
	n := &p.nodes[self]
	n.kids = int32(len(p.kids))
	n.nkids = int32(len(p.stack) - mark)
	p.kids = append(p.kids, p.stack[mark:]...)
	p.stack = p.stack[:mark]
	p.depth--
}

func (p *Parser) object(start int) (int32, int, error) {
	if err := p.enter(start); err != nil {
		return 0, start, err
	}
	b := p.in
	self := p.add(kObject, false, start, 0)
	mark := len(p.stack)
	// canon: the object's wire text is already canonical (see node.plain);
	// it stays true while no whitespace, escape or unsorted key turns up.
	i := skipWS(b, start+1)
	canon := i == start+1
	prev, prevPrefix := int32(-1), uint64(0)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, i, &SyntaxError{i, "expected object key"}
			}
			// Most keys are plain and shorter than 8 bytes: the one word
			// load that finds the closing quote also gives the key's sort
			// prefix, and scanString is not called.
			var kend int
			var kplain, short bool
			var prefix uint64
			var err error
			if i+9 <= len(b) {
				w := binary.LittleEndian.Uint64(b[i+1:])
				if bad := notPlain(w); bad != 0 {
					k := bits.TrailingZeros64(bad) // bit 7 of the stopping byte
					if short = byte(w>>(k&^7)) == '"'; short {
						kend, kplain = i+2+k>>3, true
						prefix = bits.ReverseBytes64(w) &^ (^uint64(0) >> (k &^ 7))
					}
				}
			}
			if !short {
				if kend, kplain, err = scanString(b, i); err != nil {
					return 0, i, err
				}
			}
			ks, ke := i+1, kend-1 // a plain key is its wire text: no copy
			if !kplain {
				ks = len(p.keys)
				if p.keys, err = decodeString(p.keys, b[i:kend]); err != nil {
					return 0, i, err
				}
				ke = len(p.keys)
			}
			i = skipWS(b, kend)
			if i >= len(b) || b[i] != ':' {
				return 0, i, &SyntaxError{i, "expected ':' after object key"}
			}
			vs := skipWS(b, i+1)
			canon = canon && kplain && i == kend && vs == i+1
			var v int32
			var next int
			if vs < len(b) && b[vs] == '"' { // most values: spare value's dispatch
				var plain bool
				if next, plain, err = scanString(b, vs); err != nil {
					return 0, vs, err
				}
				v = p.add(kString, plain, vs, next)
			} else if vs < len(b) && b[vs] >= '1' && b[vs] <= '9' { // and most numbers
				var n int
				var isFloat, plain bool
				if vs+8 <= len(b) {
					n, isFloat, plain = shortNumber(binary.LittleEndian.Uint64(b[vs:]))
				}
				if next = vs + n; n == 0 {
					if next, isFloat, err = scanNumber(b, vs); err != nil {
						return 0, vs, err
					}
					plain = !isFloat || floatIsRepr(b[vs:next]) // no sign, so not -0
				}
				k := kNumber
				if isFloat {
					k = kFloat
				}
				v = p.add(k, plain, vs, next)
			} else if v, next, err = p.value(vs); err != nil {
				return 0, next, err
			}
			vn := &p.nodes[v]
			vn.keyStart, vn.keyEnd, vn.keyPlain = int32(ks), int32(ke), kplain
			if !short {
				if kplain && ks+8 <= len(b) { // mask a load
					prefix = binary.BigEndian.Uint64(b[ks:]) & (^uint64(0) << (64 - 8*min(ke-ks, 8)))
				} else {
					prefix = prefix8(p.key(v))
				}
			}
			vn.keyPrefix = prefix
			p.stack = append(p.stack, v)
			// The previous key's prefix is kept here: most keys differ in
			// their first eight bytes, and the order is settled without
			// reading the previous node back.
			canon = canon && vn.plain && (prev < 0 || prefix > prevPrefix || prefix == prevPrefix && p.compareKeys(prev, v) < 0)
			prev, prevPrefix = v, prefix
			i = skipWS(b, next)
			canon = canon && i == next
			if i < len(b) && b[i] == ',' {
				j := skipWS(b, i+1)
				canon = canon && j == i+1
				i = j
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return 0, i, &SyntaxError{i, "expected ',' or '}' in object"}
		}
	}
	p.nodes[self].end = int32(i)
	p.nodes[self].plain = canon
	p.finish(self, mark)
	if canon { // sorted, and strictly: no duplicates either
		return self, i, nil
	}
	if err := p.sortMembers(self); err != nil {
		return 0, start, err
	}
	return self, i, nil
}

func (p *Parser) array(start int) (int32, int, error) {
	if err := p.enter(start); err != nil {
		return 0, start, err
	}
	b := p.in
	self := p.add(kArray, false, start, 0)
	mark := len(p.stack)
	i := skipWS(b, start+1)
	canon := i == start+1 // as in object
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			v, next, err := p.value(i)
			if err != nil {
				return 0, next, err
			}
			p.stack = append(p.stack, v)
			i = skipWS(b, next)
			canon = canon && p.nodes[v].plain && i == next
			if i < len(b) && b[i] == ',' {
				j := skipWS(b, i+1)
				canon = canon && j == i+1
				i = j
				continue
			}
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			return 0, i, &SyntaxError{i, "expected ',' or ']' in array"}
		}
	}
	p.nodes[self].end = int32(i)
	p.nodes[self].plain = canon
	p.finish(self, mark)
	return self, i, nil
}

// key returns the decoded key of member n.
func (p *Parser) key(n int32) []byte {
	nd := &p.nodes[n]
	if nd.keyPlain {
		return p.in[nd.keyStart:nd.keyEnd]
	}
	return p.keys[nd.keyStart:nd.keyEnd]
}

// scanString returns the index just past the closing quote of the string
// starting at b[i]. It checks structure only; decodeString validates content.
// It also reports whether the string is plain: printable ASCII without
// escapes, which json.dumps writes back byte for byte, so the canonical
// writer can copy it with neither a decode nor a re-escape.
func scanString(b []byte, i int) (end int, plain bool, err error) {
	j := i + 1
	// The loop branches on whether a word is all plain, not on where its
	// first other byte is, so the next load does not wait for the bit
	// scan; that byte, usually the closing quote, is read from the word.
	for j+8 <= len(b) {
		w := binary.LittleEndian.Uint64(b[j:])
		if bad := notPlain(w); bad != 0 {
			k := bits.TrailingZeros64(bad)
			j += k >> 3
			if byte(w>>(k&^7)) == '"' {
				return j + 1, true, nil
			}
			goto slow
		}
		j += 8
	}
	for j < len(b) && pyPlain[b[j]] {
		j++
	}
	if j < len(b) && b[j] == '"' {
		return j + 1, true, nil
	}
slow:
	for ; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, false, nil
		case c == '\\':
			j++
		case c < 0x20:
			return 0, false, &SyntaxError{j, "control character in string"}
		}
	}
	return 0, false, &SyntaxError{i, "unterminated string"}
}

// scanNumber accepts the JSON number grammar, which is also what Python's
// json scanner accepts, and reports whether Python would make it a float.
// (-Infinity is a token of its own, matched before a number is tried.)
func scanNumber(b []byte, i int) (end int, isFloat bool, err error) {
	start := i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - s
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			return 0, false, &SyntaxError{i, "leading zero in number"}
		}
	case digits() == 0:
		return 0, false, &SyntaxError{i, "invalid number"}
	}
	intEnd := i
	if i < len(b) && b[i] == '.' {
		isFloat = true
		i++
		if digits() == 0 {
			return 0, false, &SyntaxError{i, "digit expected after decimal point"}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isFloat = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false, &SyntaxError{i, "digit expected in exponent"}
		}
	}
	ndigits := intEnd - start
	if b[start] == '-' {
		ndigits--
	}
	if !isFloat && ndigits > maxIntDigits {
		return 0, false, &SyntaxError{start, "integer has too many digits"}
	}
	return i, isFloat, nil
}

// decodeString appends the UTF-8 text of the quoted JSON string raw to dst.
// Invalid UTF-8 and lone surrogates are refused: neither survives a trip
// through a signer that encodes text, so accepting them only widens the
// ways two parties could disagree about the signed bytes.
func decodeString(dst, raw []byte) ([]byte, error) {
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return dst, &SyntaxError{i, "bad escape"}
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(s[i+2:])
				if !ok {
					return dst, &SyntaxError{i, "bad \\u escape"}
				}
				i += 6
				if utf16.IsSurrogate(r) {
					var r2 rune = -1
					if r < 0xdc00 && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2, ok = hex4(s[i+2:])
						if !ok {
							return dst, &SyntaxError{i, "bad \\u escape"}
						}
					}
					r = utf16.DecodeRune(r, r2)
					if r == utf8.RuneError {
						return dst, &SyntaxError{i, "lone surrogate in string"}
					}
					i += 6
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, &SyntaxError{i, fmt.Sprintf("bad escape \\%c", e)}
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return dst, &SyntaxError{i, "invalid UTF-8 in string"}
			}
			dst = append(dst, s[i:i+size]...)
			i += size
		}
	}
	return dst, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// parseFloat reads a literal scanNumber accepted as Python's float() does:
// correctly rounded, and ±Inf beyond the double range (strconv reports that
// as ErrRange, the only error it can give after scanNumber).
func parseFloat(raw []byte) float64 {
	f, _ := strconv.ParseFloat(string(raw), 64)
	return f
}
