package mobypay

import (
	"math/rand/v2"
	"unicode/utf16"
	"unicode/utf8"
)

// The random JSON text the Go-to-Python cross-check spells: documents,
// containers, keys and strings (numbers are in pycheck_num_test.go).

// jsonGen writes random JSON text, spelling every token in one of the many
// ways the grammar allows for the same value.
type jsonGen struct {
	r *rand.Rand
	b []byte
}

func (g *jsonGen) document() []byte {
	g.b = nil
	g.ws()
	if g.r.IntN(100) == 0 {
		g.deep()
	} else {
		g.object(1)
	}
	g.ws()
	return g.b
}

// deep nests as far as an envelope allows: its payload sits one level down.
func (g *jsonGen) deep() {
	levels := 1 + g.r.IntN(MaxDepth-1)
	closers := make([]byte, 0, levels)
	g.b = append(g.b, '{')
	g.key(&keySet{})
	closers = append(closers, '}')
	for range levels - 1 {
		g.ws()
		if g.r.IntN(2) == 0 {
			g.b = append(g.b, '[')
			closers = append(closers, ']')
		} else {
			g.b = append(g.b, '{')
			g.key(&keySet{})
			closers = append(closers, '}')
		}
	}
	g.ws()
	g.scalar()
	for i := len(closers) - 1; i >= 0; i-- {
		g.ws()
		g.b = append(g.b, closers[i])
	}
}

func (g *jsonGen) ws() {
	if g.r.IntN(5) < 3 {
		return
	}
	for range 1 + g.r.IntN(3) {
		g.b = append(g.b, " \t\n\r"[g.r.IntN(4)])
	}
}

func (g *jsonGen) value(depth int) {
	if depth < 6 && g.r.IntN(100) < 45-7*depth {
		if g.r.IntN(2) == 0 {
			g.object(depth + 1)
		} else {
			g.array(depth + 1)
		}
		return
	}
	g.scalar()
}

func (g *jsonGen) object(depth int) {
	var taken keySet
	g.members('{', '}', func() {
		g.key(&taken)
		g.value(depth)
		g.ws()
	})
}

// keySet holds an object's keys; the slice keeps picks reproducible.
type keySet struct {
	seen map[string]bool
	list []string
}

// key writes `ws "key" ws : ws` for a key not yet in the object.
func (g *jsonGen) key(taken *keySet) {
	if taken.seen == nil {
		taken.seen = map[string]bool{}
	}
	var k []rune
	for {
		switch x := g.r.IntN(10); {
		case x < 3:
			k = []rune(pycheckKeyWords[g.r.IntN(len(pycheckKeyWords))])
		case x < 5 && len(taken.list) > 0:
			// a neighbour of an existing key stresses code-point order
			k = []rune(taken.list[g.r.IntN(len(taken.list))])
			k = append(k, []rune{0, 0x7f, ' ', 'a', 0xe9, 0xffff, 0x1f600, 0x10ffff}[g.r.IntN(8)])
		default:
			k = g.randRunes(8)
		}
		if !taken.seen[string(k)] {
			break
		}
	}
	taken.seen[string(k)] = true
	taken.list = append(taken.list, string(k))
	g.ws()
	g.str(k)
	g.ws()
	g.b = append(g.b, ':')
	g.ws()
}

func (g *jsonGen) array(depth int) {
	g.members('[', ']', func() {
		g.ws()
		g.value(depth)
		g.ws()
	})
}

// members writes a container: open, up to six members apart by commas,
// end. An empty one may hold whitespace.
func (g *jsonGen) members(open, end byte, member func()) {
	g.b = append(g.b, open)
	n := g.r.IntN(7)
	if n == 0 {
		g.ws()
	}
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		member()
	}
	g.b = append(g.b, end)
}

func (g *jsonGen) scalar() {
	switch x := g.r.IntN(100); {
	case x < 30:
		g.str(g.randRunes(12))
	case x < 50:
		g.integer()
	case x < 85:
		g.float()
	case x < 90:
		g.b = append(g.b, "true"...)
	case x < 95:
		g.b = append(g.b, "false"...)
	default:
		g.b = append(g.b, "null"...)
	}
}

var pycheckKeyWords = []string{
	"type", "txn_id", "amount", "status", "nonce", "timestamp", "plans",
	"planId", "frequency", "totalInstallments", "installmentDetails", "a",
	"A", "b", "_", "Z", "z", "aa", "a_b", "aB", "",
}

var (
	runeSpecial    = []rune(`/<>&"\'`)
	runeBMPSpecial = []rune{0x2028, 0x2029, 0xfeff, 0xffff, 0xfffe, 0xfffd, 0x800, 0x7ff,
		0xd7ff, 0xe000, 0x200b, 0x200d, 0xa0, 0x20ac, 0x4e2d, 0x301, 0x100, 0x85}
	runeAstral = []rune{0x1f600, 0x1f4b3, 0x10000, 0x10ffff, 0x1f1f2, 0x1f1fe, 0x1f44d,
		0x20000, 0xe0001}
)

func (g *jsonGen) randRune() rune {
	r := g.r
	switch x := r.IntN(100); {
	case x < 35:
		return rune(0x20 + r.IntN(0x5f))
	case x < 45:
		return runeSpecial[r.IntN(len(runeSpecial))]
	case x < 55:
		if c := rune(r.IntN(0x21)); c < 0x20 {
			return c
		}
		return 0x7f
	case x < 65:
		return rune(0x80 + r.IntN(0x80))
	case x < 72:
		return runeBMPSpecial[r.IntN(len(runeBMPSpecial))]
	case x < 82:
		for {
			if c := rune(0x100 + r.IntN(0x10000-0x100)); !utf16.IsSurrogate(c) {
				return c
			}
		}
	case x < 90:
		return runeAstral[r.IntN(len(runeAstral))]
	default:
		return rune(0x10000 + r.IntN(0x110000-0x10000))
	}
}

func (g *jsonGen) randRunes(maxLen int) []rune {
	if g.r.IntN(10) == 0 {
		maxLen = 40
	}
	rs := make([]rune, g.r.IntN(maxLen+1))
	for i := range rs {
		rs[i] = g.randRune()
	}
	return rs
}

// str writes s as a JSON string. Each string has a preference, raw text
// or escapes, and each character still picks its own spelling.
func (g *jsonGen) str(s []rune) {
	escapeOdds := []int{0, 10, 50, 90, 100}[g.r.IntN(5)]
	g.b = append(g.b, '"')
	for _, c := range s {
		esc := g.r.IntN(100) < escapeOdds
		switch {
		case c == '"' || c == '\\':
			if esc {
				g.u(c)
			} else {
				g.b = append(g.b, '\\', byte(c))
			}
		case c < 0x20:
			short := map[rune]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}[c]
			if short != 0 && g.r.IntN(2) == 0 {
				g.b = append(g.b, '\\', short)
			} else {
				g.u(c)
			}
		case c == '/':
			switch g.r.IntN(3) {
			case 0:
				g.b = append(g.b, '/')
			case 1:
				g.b = append(g.b, '\\', '/')
			default:
				g.u(c)
			}
		case !esc:
			g.b = utf8.AppendRune(g.b, c)
		case c > 0xffff:
			hi, lo := utf16.EncodeRune(c)
			g.u(hi)
			g.u(lo)
		default:
			g.u(c)
		}
	}
	g.b = append(g.b, '"')
}

// u writes \uXXXX with hex digits in lower, upper or mixed case.
func (g *jsonGen) u(c rune) {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	mode := g.r.IntN(3)
	g.b = append(g.b, '\\', 'u')
	for shift := 12; shift >= 0; shift -= 4 {
		d := c >> shift & 0xf
		if mode == 1 || (mode == 2 && g.r.IntN(2) == 0) {
			g.b = append(g.b, upper[d])
		} else {
			g.b = append(g.b, lower[d])
		}
	}
}
