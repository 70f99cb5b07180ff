package mobypay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// Seeds beyond testdata/fuzz: the wire samples, so every run starts from
// real traffic.
func addVectorSeeds(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Wire))
	}
}

func FuzzCanonical(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(in)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !json.Valid(pyTokensAsNull(in)) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if !json.Valid(pyTokensAsNull(out)) {
			t.Fatalf("produced invalid JSON %q from %q", out, in)
		}
		for _, c := range out {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("non-ASCII byte %#x in canonical output %q", c, out)
			}
		}
		again, err := Canonical(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

// pyTokensAsNull replaces the three tokens CPython's json reads beyond JSON
// (NaN, Infinity, -Infinity) outside strings by null, so that
// encoding/json can judge the rest. A null that is not where a value may
// stand (-NaN, NaNNaN) stays invalid.
func pyTokensAsNull(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					out = append(out, b[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out, i = append(out, "null"...), i+len("-Infinity")-1
			continue
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out, i = append(out, "null"...), i+len("Infinity")-1
			continue
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out, i = append(out, "null"...), i+len("NaN")-1
			continue
		}
		out = append(out, c)
	}
	return out
}

func FuzzOpen(f *testing.F) {
	addVectorSeeds(f)
	c := NewCodec([]byte(DevSecret))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := c.Open(frame); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		var m Message
		_ = c.Decode(&m) // must not panic; a bad field is an error
		if m.Payload != "" && !json.Valid(pyTokensAsNull([]byte(m.Payload))) {
			t.Fatalf("payload evidence is not JSON: %q", m.Payload)
		}
	})
}

// chunkReader hands out data in chunk sizes taken from a fuzz input.
type chunkReader struct {
	data, sizes []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[0])%37 + 1
		r.sizes = r.sizes[1:]
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzFrameReader checks the reader against a plain split of the whole
// input, whatever the read sizes.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("{\"a\":1}\r\n\n{\"b\"\n"), []byte{1, 2, 3})
	f.Add(bytes.Repeat([]byte("x"), 40), []byte{36})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		const max = 24
		var want []string
		lines := bytes.Split(data, []byte("\n"))
		for i, l := range lines {
			if len(l) > max {
				want = append(want, "TOO LARGE")
				continue
			}
			if i == len(lines)-1 && len(l) == 0 {
				break
			}
			if l = trimLine(l); l != nil {
				want = append(want, string(l))
			}
		}
		fr := NewFrameReader(&chunkReader{data, sizes}, max)
		var got []string
		for {
			b, err := fr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, ErrFrameTooLarge) {
				got = append(got, "TOO LARGE")
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(b))
		}
		if len(got) != len(want) {
			t.Fatalf("frames %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("frames %q, want %q", got, want)
			}
		}
	})
}
