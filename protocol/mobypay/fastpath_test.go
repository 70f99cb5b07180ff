package mobypay

// Differential checks of the canonicaliser's fast paths: each must write
// exactly what the general path writes, on every input.

import (
	"bytes"
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
