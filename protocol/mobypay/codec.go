package mobypay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
)

// DevSecret is the shared secret printed in MobyPay's integration document.
// It is public, so a deployment that uses it is not authenticated at all.
const DevSecret = "POS-KIOSK-SECRET-KEY-2024"

// Errors returned by Codec.Open. Callers match them with errors.Is; the
// wrapped text says which part of the envelope was wrong.
var (
	ErrMalformed = newError("malformed envelope")
	ErrSignature = newError("invalid signature")
)

// Codec signs outgoing and verifies incoming envelopes
// {"payload": {...}, "signature": "<hex HMAC-SHA256>"}. It keeps its
// buffers between messages; it is not safe for concurrent use.
type Codec struct {
	mac   hash.Hash
	p     Parser
	canon []byte // the payload signed or checked last: in buf, or a builder's output
	buf   []byte // owned buffer for the canonical payloads of Open and Seal
	sum   [sha256.Size]byte
	ts    tsDigits // the last timestamp's high digits, for appendTimestamp
	root  int32    // payload node of the last Open, -1 if none to decode
	// wire is the payload's offset in the frame when the last Open took
	// its canonical bytes from the frame itself, -1 when they were written
	// to buf: it says where span finds a node's canonical text.
	wire int32
}

// NewCodec returns a codec for the shared secret.
func NewCodec(secret []byte) *Codec {
	return &Codec{mac: hmac.New(sha256.New, secret), buf: make([]byte, 0, 1024), root: -1, wire: -1}
}

func (c *Codec) macOf(canonical []byte) []byte {
	c.mac.Reset()
	c.mac.Write(canonical)
	return c.mac.Sum(c.sum[:0])
}

// Open parses one received envelope, canonicalises its payload and checks
// the signature in constant time. The wire bytes are verified as they
// are only when they are canonical already: the POS sends keys unsorted
// with varying spacing.
//
// After Open returns, Canonical and ExpectedSignature describe the payload
// even when the signature was wrong, for diagnostics; they and Decode stay
// valid until the next Open, and Canonical and Decode while the frame is
// not reused: Canonical may be the frame's own bytes.
func (c *Codec) Open(frame []byte) error {
	c.canon = c.buf[:0]
	c.root, c.wire = -1, -1
	root, err := c.p.Parse(frame)
	if err != nil {
		return errorf("%w: %w", ErrMalformed, err)
	}
	env := c.p.nodes[root]
	if env.kind != kObject {
		return errorf("%w: not a JSON object", ErrMalformed)
	}
	payload, sig := int32(-1), int32(-1)
	for _, k := range c.p.kids[env.kids : env.kids+env.nkids] {
		switch string(c.p.key(k)) {
		case "payload":
			payload = k
		case "signature":
			sig = k
		}
	}
	if payload < 0 {
		return errorf("%w: no payload", ErrMalformed)
	}
	if c.p.nodes[payload].kind != kObject {
		return errorf("%w: payload is not an object", ErrMalformed)
	}
	if pn := &c.p.nodes[payload]; pn.plain {
		// The peer signed canonical JSON (possim, our Seal, a Python peer
		// with sort_keys and compact separators): the bytes to check are
		// the frame's own, which Decode needs unchanged anyway, so they are
		// neither copied nor their nodes' output spans written: 4% of
		// Verify.
		c.canon, c.wire = frame[pn.start:pn.end:pn.end], pn.start
	} else {
		c.canon, err = c.p.AppendCanonical(c.canon, payload)
		c.buf = c.canon[:0] // keep what it grew to
		if err != nil {
			return errorf("%w: payload: %w", ErrMalformed, err)
		}
	}
	c.root = payload
	c.macOf(c.canon)
	if sig < 0 {
		return errorf("%w: no signature", ErrSignature)
	}
	sn := c.p.nodes[sig]
	if sn.kind != kString {
		return errorf("%w: signature is not a string", ErrSignature)
	}
	// Hex digits need no JSON escapes; a signature that uses them is
	// refused rather than decoded.
	raw := frame[sn.start+1 : sn.end-1]
	if len(raw) != 2*sha256.Size {
		return errorf("%w: signature has %d characters, want %d hex digits", ErrSignature, len(raw), 2*sha256.Size)
	}
	if !hexEqual(raw, c.sum[:]) {
		var got [sha256.Size]byte // decoded only to name the refusal
		if _, err := hex.Decode(got[:], raw); err != nil {
			return errorf("%w: signature is not hex", ErrSignature)
		}
		return errorf("%w: does not match the payload", ErrSignature)
	}
	return nil
}

// hexEqual reports, in time independent of the contents, whether sig (64
// characters) is the hex of the 32-byte sum, in either case. It compares
// text, not bytes: the sum's hex is a table lookup per byte, where
// decoding sig went a character at a time, 2% of Verify. Setting bit 5
// folds A-F onto a-f and leaves the digits be; the only other bytes it
// folds onto a hex digit are control characters, which a JSON string
// cannot hold raw.
func hexEqual(sig, sum []byte) bool {
	var want [2 * sha256.Size]byte
	appendHex32(want[:0], sum)
	var diff uint64
	for i := 0; i < len(want); i += 8 {
		diff |= (binary.LittleEndian.Uint64(sig[i:]) | 0x2020202020202020) ^ binary.LittleEndian.Uint64(want[i:])
	}
	return diff == 0
}

// Canonical returns the canonical payload of the last Open (or of the
// last message built, see the Append* methods).
func (c *Codec) Canonical() []byte { return c.canon }

// ExpectedSignature returns the hex signature the last opened payload
// should have carried.
func (c *Codec) ExpectedSignature() string { return hex.EncodeToString(c.sum[:]) }

// AppendSignature appends the signature of a payload object: the hex
// HMAC-SHA256 of its canonical form. A peer that writes the payload its
// own way (another key order, Python's spacing), as the POS simulator
// does, puts this beside it. Seal and the Append* builders sign through
// the same appendSig, so there is one way a signature is made.
func (c *Codec) AppendSignature(dst, payload []byte) ([]byte, error) {
	if err := c.canonicalise(payload); err != nil {
		return dst, errorf("sign: %w", err)
	}
	return c.appendSig(dst), nil
}

// Seal appends a signed envelope for an arbitrary JSON payload object,
// followed by '\n'; the payload goes out in canonical form. It serves
// tools and tests; the kiosk's own messages are built by the Append*
// methods without a parse.
func (c *Codec) Seal(dst, payload []byte) ([]byte, error) {
	if err := c.canonicalise(payload); err != nil {
		return dst, errorf("seal: %w", err)
	}
	return c.envelope(dst), nil
}

// canonicalise parses payload, which must be a JSON object, and leaves its
// canonical form in c.canon.
func (c *Codec) canonicalise(payload []byte) error {
	c.root = -1 // the parse below replaces the tree Decode would read
	c.canon = c.buf[:0]
	root, err := c.p.Parse(payload)
	if err != nil {
		return err
	}
	if c.p.nodes[root].kind != kObject {
		return newError("payload is not a JSON object")
	}
	c.canon, err = c.p.AppendCanonical(c.canon, root)
	c.buf = c.canon[:0]
	return err
}

// envelopeHead opens an envelope; the payload follows it.
const envelopeHead = `{"payload":`

// envelope appends {"payload":<canon>,"signature":"<hex>"} and a newline.
func (c *Codec) envelope(dst []byte) []byte {
	dst = append(dst, envelopeHead...)
	dst = append(dst, c.canon...)
	return c.envelopeTail(dst)
}

// envelopeTail appends what follows the payload: its signature, the
// closing brace and the newline.
func (c *Codec) envelopeTail(dst []byte) []byte {
	dst = append(dst, `,"signature":"`...)
	dst = c.appendSig(dst)
	return append(dst, '"', '}', '\n')
}

// appendSig appends the hex HMAC of c.canon. Every signature the package
// writes is made here; Open checks against the same macOf.
func (c *Codec) appendSig(dst []byte) []byte {
	return appendHex32(dst, c.macOf(c.canon))
}

// appendHex32 appends the lower-case hex of a 32-byte sum, each byte's
// two digits from a table of pairs, four pairs to a word store: half the
// time of the shift-and-mask arithmetic it replaced, which was itself a
// tenth of Sign less than hex.AppendEncode (a nibble lookup and a store
// per digit). TestAppendHex32 holds it to encoding/hex.
func appendHex32(dst, sum []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, 64)[:n+64]
	out, sum := dst[n:n+64], sum[:32]
	for i := 0; i < 32; i += 4 {
		binary.LittleEndian.PutUint64(out[2*i:], uint64(hexPairs[sum[i]])|uint64(hexPairs[sum[i+1]])<<16|
			uint64(hexPairs[sum[i+2]])<<32|uint64(hexPairs[sum[i+3]])<<48)
	}
	return dst
}

// hexPairs[b] is the hex of b as two bytes, little-endian.
var hexPairs = func() (t [256]uint16) {
	const digits = "0123456789abcdef"
	for b := range t {
		t[b] = uint16(digits[b>>4]) | uint16(digits[b&15])<<8
	}
	return t
}()
