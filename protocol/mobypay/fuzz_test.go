package mobypay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
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
	signer := NewCodec([]byte(DevSecret))
	f.Fuzz(func(t *testing.T, frame []byte) {
		err := c.Open(frame)
		switch {
		case err == nil:
		case errors.Is(err, ErrSignature):
			// A mutated frame almost never carries the right HMAC: sign
			// its payload, so that the properties below see every payload
			// the fuzzer can spell, as a peer that signs it would send it.
			canon := bytes.Clone(c.Canonical())
			sealed, serr := signer.Seal(nil, canon)
			if serr != nil {
				t.Fatalf("Seal refused a payload Open canonicalised: %v\n%q", serr, canon)
			}
			if err := c.Open(bytes.TrimSuffix(sealed, []byte("\n"))); err != nil {
				t.Fatalf("a sealed payload does not open: %v\n%s", err, sealed)
			}
			if !bytes.Equal(c.Canonical(), canon) {
				t.Fatalf("canonical payload changed on resealing: %q -> %q", canon, c.Canonical())
			}
		case errors.Is(err, ErrMalformed):
			var m Message
			if c.Decode(&m) == nil {
				t.Fatalf("Decode succeeded after a malformed frame (%v)", err)
			}
			return
		default:
			t.Fatalf("unclassified error: %v", err)
		}
		checkDecode(t, c)
	})
}

// checkDecode asserts what must hold of Decode after any successful Open:
// it succeeds, keeps the canonical payload, and its TxnID and AmountText
// are the text of the signed values, read here by a second parse.
func checkDecode(t *testing.T, c *Codec) {
	t.Helper()
	var m Message
	if err := c.Decode(&m); err != nil {
		t.Fatalf("Decode failed after a successful Open: %v\n%s", err, c.Canonical())
	}
	if m.Payload != string(c.Canonical()) {
		t.Fatalf("payload evidence %q differs from the canonical payload %q", m.Payload, c.Canonical())
	}
	if !json.Valid(pyTokensAsNull([]byte(m.Payload))) {
		t.Fatalf("payload evidence is not JSON: %q", m.Payload)
	}
	txnID, amount := signedText(t, m.Payload)
	if m.TxnID != txnID {
		t.Fatalf("TxnID %q, want %q, in %s", m.TxnID, txnID, m.Payload)
	}
	if m.AmountText != amount {
		t.Fatalf("AmountText %q, want %q, in %s", m.AmountText, amount, m.Payload)
	}
	if m.HasAmount && (math.IsNaN(m.Amount) || math.IsInf(m.Amount, 0)) {
		t.Fatalf("HasAmount with amount %v", m.Amount)
	}
	if !m.HasAmount && m.Amount != 0 {
		t.Fatalf("amount %v without HasAmount", m.Amount)
	}
	if m.IsSuccess() && !m.LooksLikeSuccess() {
		t.Fatalf("a success that does not look like one: %+v", m)
	}
	if m.Clean() != (len(m.Odd) == 0) {
		t.Fatalf("Clean() = %v with Odd %q", m.Clean(), m.Odd)
	}
	for _, o := range m.Odd {
		if o == "" {
			t.Fatalf("empty Odd entry in %q", m.Odd)
		}
	}
	var again Message
	if err := c.Decode(&again); err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("a second Decode differs: %v\n%+v\n%+v", err, again, m)
	}
}

// signedText reads the canonical payload again and returns txn_id as text
// (a string's value through encoding/json, null as "", otherwise the
// value's canonical text) and the amount's canonical text.
func signedText(t *testing.T, payload string) (txnID, amount string) {
	t.Helper()
	var p Parser
	root, err := p.Parse([]byte(payload))
	if err != nil {
		t.Fatalf("canonical payload does not parse: %v", err)
	}
	nd := p.nodes[root]
	for _, k := range p.kids[nd.kids : nd.kids+nd.nkids] {
		kn := p.nodes[k]
		raw := payload[kn.start:kn.end] // canonical text: the payload is canonical
		switch string(p.key(k)) {
		case "txn_id":
			switch kn.kind {
			case kString:
				if err := json.Unmarshal([]byte(raw), &txnID); err != nil {
					t.Fatalf("txn_id %s: %v", raw, err)
				}
			case kNull:
			default:
				txnID = raw
			}
		case "amount":
			amount = raw
		}
	}
	return txnID, amount
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
