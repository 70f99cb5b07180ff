package mobypay

// Ordering an object's members as Python's sort_keys does.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// sortMembers orders an object's members by key, as Python sorts str keys
// (by code point, which is UTF-8 byte order), and refuses duplicates:
// Python would keep the last one silently, and a signer and a verifier that
// disagree on which one counts is a forgery waiting to happen.
func (p *Parser) sortMembers(obj int32) error {
	o := p.nodes[obj]
	m := p.kids[o.kids : o.kids+o.nkids]
	if len(m) > smallObject {
		cmp := func(a, b int32) int { return p.compareKeys(a, b) }
		slices.SortFunc(m, cmp)
		for i := 1; i < len(m); i++ {
			if cmp(m[i-1], m[i]) == 0 {
				return p.duplicate(obj, m[i])
			}
		}
		return nil
	}
	// Real objects have two to ten members. Insertion sort on the key
	// prefixes, kept beside the indices so the inner loop touches no
	// node; a prefix tie falls back to the whole keys. Every pair that
	// ends up adjacent is compared on the way, so an equal pair seen
	// here is the only duplicate check needed.
	type member struct {
		prefix uint64
		n      int32
	}
	var buf [smallObject]member
	ms := buf[:len(m)]
	for i, n := range m {
		ms[i] = member{p.nodes[n].keyPrefix, n}
	}
	for i := 1; i < len(ms); i++ {
		x := ms[i]
		j := i
		for ; j > 0; j-- {
			y := ms[j-1]
			if y.prefix < x.prefix {
				break
			}
			if y.prefix == x.prefix {
				c := p.compareKeys(y.n, x.n)
				if c == 0 {
					return p.duplicate(obj, x.n)
				}
				if c < 0 {
					break
				}
			}
			ms[j] = y
		}
		ms[j] = x
	}
	for i := range ms {
		m[i] = ms[i].n
	}
	return nil
}

// smallObject is the most members sortMembers sorts by insertion.
const smallObject = 16

func (p *Parser) compareKeys(a, b int32) int {
	na, nb := &p.nodes[a], &p.nodes[b]
	if na.keyPrefix != nb.keyPrefix {
		if na.keyPrefix < nb.keyPrefix {
			return -1
		}
		return 1
	}
	return bytes.Compare(p.key(a), p.key(b))
}

func (p *Parser) duplicate(obj, member int32) error {
	return &SyntaxError{int(p.nodes[obj].start), fmt.Sprintf("duplicate key %q", p.key(member))}
}

// prefix8 packs the first 8 bytes of k big-endian, zero-padded, so that
// comparing prefixes orders keys as bytes.Compare does whenever the
// prefixes differ: padding compares as the end of the shorter key, which
// sorts first either way.
func prefix8(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var v uint64
	for i, c := range k {
		v |= uint64(c) << (56 - 8*i)
	}
	return v
}
