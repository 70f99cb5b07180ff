package mobypay

import (
	"bytes"
	"strings"
	"testing"
)

// checkMemberKeys holds every member's key span and sort prefix, however
// object() found them (the one-word path for short plain keys or
// scanString), to the decoded wire key and prefix8.
func checkMemberKeys(t *testing.T, src []byte) {
	t.Helper()
	var p Parser
	if _, err := p.Parse(src); err != nil {
		return
	}
	for _, o := range p.nodes {
		if o.kind != kObject {
			continue
		}
		for _, k := range p.kids[o.kids : o.kids+o.nkids] {
			nd := &p.nodes[k]
			// The wire key ends at the quote before the ':' ahead of the value.
			colon := bytes.LastIndexByte(src[:nd.start], ':')
			q := bytes.LastIndexByte(src[:colon], '"')
			open := q - 1
			for ; ; open-- { // the opening quote: not preceded by an odd run of '\\'
				if src[open] != '"' {
					continue
				}
				n := 0
				for open-1-n >= 0 && src[open-1-n] == '\\' {
					n++
				}
				if n%2 == 0 {
					break
				}
			}
			want, err := decodeString(nil, src[open:q+1])
			if err != nil {
				t.Fatalf("%q: key %q does not decode: %v", src, src[open:q+1], err)
			}
			if got := p.key(k); !bytes.Equal(got, want) {
				t.Fatalf("%q: key %q, want %q", src, got, want)
			}
			if nd.keyPrefix != prefix8(want) {
				t.Fatalf("%q: key %q has prefix %#x, want %#x", src, want, nd.keyPrefix, prefix8(want))
			}
		}
	}
}

// TestMemberKeys tries keys of every length to 12, each byte in turn
// replaced by one that is not plain or by an escape, with and without
// room for a word load after the key (the end of the input).
func TestMemberKeys(t *testing.T) {
	odd := []string{`\"`, `\\`, `\n`, `\u00e9`, "é", "\x7f", "~", " ", "!"}
	for n := range 13 {
		base := strings.Repeat("planIdxy", 2)[:n]
		keys := []string{base}
		for i := range n {
			for _, o := range odd {
				keys = append(keys, base[:i]+o+base[i+1:])
			}
		}
		for _, k := range keys {
			for _, pad := range []string{"", " ", "        "} {
				checkMemberKeys(t, []byte(`{"`+k+`":1}`+pad))
				checkMemberKeys(t, []byte(`{"b":[],"`+k+`": "v" ,"a":{"`+k+`":0}}`+pad))
			}
		}
	}
}

func FuzzMemberKeys(f *testing.F) {
	addVectorSeeds(f)
	f.Add([]byte(`{"no":1,"amount":16.67,"a\"b":2,"é":3}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 { // checkMemberKeys searches back from each value
			return
		}
		checkMemberKeys(t, src)
	})
}
