package kpos

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// The only algorithms KPOS uses. Everything else is refused on receive so
// that a peer (or an attacker) cannot steer us into another key
// management mode.
const (
	AlgDir       = "dir"
	EncA256CBCHS = "A256CBC-HS512"
)

// Header is what we put in the protected header when sending, in the shape
// of Finexus's samples (notes §4.2):
//
//	{"epk":{"kty":"EC","crv":"P-256","kid":…,"x":…,"y":…},"kid":…,"enc":"A256CBC-HS512","alg":"dir"}
//
// epk is not the JOSE ephemeral key here: with alg "dir" it carries our
// static P-256 public key so that Finexus can tell which key pair the
// content key was derived from.
type Header struct {
	EPK    *ecdsa.PublicKey // nil: no epk member
	EPKKid string           // epk.kid, the id Finexus registered our key under; omitted if empty
	Kid    string           // top-level kid; omitted if empty
}

// JWK is an EC public key as it appears in an epk header member.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid,omitempty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// NewJWK writes pub as a JWK with full-length coordinates (RFC 7518
// §6.2.1.2), the field order of Finexus's samples.
func NewJWK(pub *ecdsa.PublicKey, kid string) (JWK, error) {
	x, y, err := publicPoint(pub)
	if err != nil {
		return JWK{}, fmt.Errorf("kpos: jwk: %w", err)
	}
	return JWK{
		Kty: "EC",
		Crv: curveName(pub.Curve),
		Kid: kid,
		X:   base64.RawURLEncoding.EncodeToString(x),
		Y:   base64.RawURLEncoding.EncodeToString(y),
	}, nil
}

// Matches reports whether j is pub. It compares encodings only, so nothing
// from a received header is ever turned into a key.
func (j *JWK) Matches(pub *ecdsa.PublicKey) bool {
	if j == nil {
		return false
	}
	want, err := NewJWK(pub, "")
	if err != nil {
		return false
	}
	return j.Kty == want.Kty && j.Crv == want.Crv && j.X == want.X && j.Y == want.Y
}

// ReceivedHeader is the protected header of a received JWE, for logging
// and for checking that the sender's epk is the key we expected. Nothing
// in it is used to decrypt.
type ReceivedHeader struct {
	Alg string
	Enc string
	Kid string
	EPK *JWK // nil when absent
	// Raw is the decoded header JSON.
	Raw []byte
}

// ReadHeader decodes the protected header of a compact JWE without
// decrypting anything.
func ReadHeader(compact string) (ReceivedHeader, error) {
	raw, m, err := protectedHeader(compact)
	if err != nil {
		return ReceivedHeader{}, fmt.Errorf("kpos: %w", err)
	}
	h := ReceivedHeader{Raw: raw}
	for name, dst := range map[string]*string{"alg": &h.Alg, "enc": &h.Enc, "kid": &h.Kid} {
		if v, ok := m[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return ReceivedHeader{}, fmt.Errorf("kpos: JWE header: %q is not a string", name)
			}
		}
	}
	if v, ok := m["epk"]; ok {
		var j JWK
		if err := json.Unmarshal(v, &j); err != nil {
			return ReceivedHeader{}, errors.New("kpos: JWE header: epk is not a JWK of strings")
		}
		h.EPK = &j
	}
	return h, nil
}

// protectedHeader decodes the first part of a compact JWE into its exact
// members. Keys are matched exactly (encoding/json would fold case into a
// struct field) and duplicates are refused, so no parser downstream can
// read a different alg or enc than the one we checked.
func protectedHeader(compact string) ([]byte, map[string]json.RawMessage, error) {
	first, _, _ := strings.Cut(compact, ".")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(first)
	if err != nil {
		return nil, nil, errors.New("JWE header: not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, errors.New("JWE header: not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("JWE header: %w", err)
		}
		name, _ := t.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("JWE header: member %q: %w", name, err)
		}
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("JWE header: duplicate member %q", name)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("JWE header: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("JWE header: data after the JSON object")
	}
	return raw, m, nil
}

// Encrypt seals plaintext as a compact JWE with alg "dir" and enc
// "A256CBC-HS512" under cek, with h's members in the protected header.
func Encrypt(cek []byte, plaintext []byte, h Header) (string, error) {
	if len(cek) != CEKSize {
		return "", fmt.Errorf("kpos: encrypt: content key of %d bytes, want %d", len(cek), CEKSize)
	}
	opts := &jose.EncrypterOptions{}
	if h.EPK != nil {
		jwk, err := NewJWK(h.EPK, h.EPKKid)
		if err != nil {
			return "", fmt.Errorf("%w (the epk header of an encryption)", err)
		}
		opts = opts.WithHeader("epk", jwk)
	}
	enc, err := jose.NewEncrypter(jose.A256CBC_HS512,
		jose.Recipient{Algorithm: jose.DIRECT, Key: cek, KeyID: h.Kid}, opts)
	if err != nil {
		return "", fmt.Errorf("kpos: encrypt: %w", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("kpos: encrypt: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("kpos: encrypt: %w", err)
	}
	return s, nil
}

// Decrypt opens a compact JWE sealed with alg "dir" and enc
// "A256CBC-HS512" under cek. Members such as epk and kid are tolerated and
// ignored: the key is always the configured one, never one derived from
// what the message says. (go-jose still insists that a kid be a string,
// as RFC 7516 says; the samples' "kid":"123" is one.) Every error wraps
// ErrDecrypt.
func Decrypt(cek []byte, compact string) ([]byte, error) {
	pt, err := decrypt(cek, compact)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	return pt, nil
}

func decrypt(cek []byte, compact string) ([]byte, error) {
	if len(cek) != CEKSize {
		return nil, fmt.Errorf("content key of %d bytes, want %d", len(cek), CEKSize)
	}
	if len(compact) > MaxBody {
		return nil, fmt.Errorf("JWE of %d bytes exceeds %d", len(compact), MaxBody)
	}
	parts := strings.Split(compact, ".")
	if len(parts) != 5 {
		return nil, fmt.Errorf("JWE has %d parts, want 5", len(parts))
	}
	// go-jose hands the key out for "dir" whatever this part holds; RFC
	// 7516 §5.2 wants it empty.
	if parts[1] != "" {
		return nil, errors.New("JWE encrypted key is not empty, as alg dir requires")
	}
	_, m, err := protectedHeader(compact)
	if err != nil {
		return nil, err
	}
	if err := wantString(m, "alg", AlgDir); err != nil {
		return nil, err
	}
	if err := wantString(m, "enc", EncA256CBCHS); err != nil {
		return nil, err
	}
	// KPOS messages are not compressed (and inflating attacker data is
	// best avoided), and we implement no critical extension.
	for _, name := range []string{"zip", "crit"} {
		if _, ok := m[name]; ok {
			return nil, fmt.Errorf("JWE header member %q is not supported", name)
		}
	}
	obj, err := jose.ParseEncryptedCompact(compact,
		[]jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256CBC_HS512})
	if err != nil {
		return nil, fmt.Errorf("parse JWE: %w", err)
	}
	pt, err := obj.Decrypt(cek)
	if err != nil {
		// go-jose already reduces every cryptographic failure to one
		// error, so no padding or MAC oracle leaks through it.
		return nil, fmt.Errorf("JWE does not authenticate under the content key: %w", err)
	}
	return pt, nil
}

func wantString(m map[string]json.RawMessage, name, want string) error {
	v, ok := m[name]
	if !ok {
		return fmt.Errorf("JWE header has no %q", name)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return fmt.Errorf("JWE header %q is not a string", name)
	}
	if s != want {
		return fmt.Errorf("JWE header %s %q is not supported, want %q", name, s, want)
	}
	return nil
}
