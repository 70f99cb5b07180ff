package kpos

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
)

// Classes of failure when opening a message, for errors.Is. A caller
// answers each differently (and logs them apart), so they are never
// merged.
var (
	// ErrSignature: the Signature header is missing, unreadable or does
	// not verify over the exact body with the peer's key.
	ErrSignature = errors.New("kpos: signature")
	// ErrBody: the body is not an MTI followed by a compact JWE.
	ErrBody = errors.New("kpos: malformed body")
	// ErrDecrypt: the JWE uses other algorithms or does not authenticate
	// under the content key.
	ErrDecrypt = errors.New("kpos: decrypt")
)

// Keys is everything needed to exchange messages with Finexus.
type Keys struct {
	CEK    []byte            // 64-byte content key, see DeriveKey and ParseRawKey
	Ours   *ecdsa.PrivateKey // signs our messages (P-521 expected)
	Theirs *ecdsa.PublicKey  // verifies Finexus's messages
	Header Header            // members of the protected header we send
}

// Seal encrypts plaintext as it is, prepends mti and signs the result. It
// returns the HTTP body and the Signature header value.
func (k *Keys) Seal(mti string, plaintext []byte) (body []byte, signature string, err error) {
	if !ValidMTI(mti) {
		return nil, "", fmt.Errorf("kpos: seal: MTI %q is not 4 digits (or 3 and X)", mti)
	}
	if k.Ours == nil {
		return nil, "", errors.New("kpos: seal: no signing key")
	}
	jwe, err := Encrypt(k.CEK, plaintext, k.Header)
	if err != nil {
		return nil, "", fmt.Errorf("%w (sealing %s)", err, mti)
	}
	body = make([]byte, 0, len(mti)+len(jwe))
	body = append(append(body, mti...), jwe...)
	// A body our own ParseBody would refuse is likely refused by the peer.
	if len(body) > MaxBody {
		return nil, "", fmt.Errorf("kpos: seal %s: body of %d bytes exceeds %d", mti, len(body), MaxBody)
	}
	signature, err = Sign(k.Ours, body)
	if err != nil {
		return nil, "", fmt.Errorf("%w (sealing %s)", err, mti)
	}
	return body, signature, nil
}

// SealJSON is Seal for a value: []byte and json.RawMessage are sent as
// they are, anything else is marshalled with encoding/json.
func (k *Keys) SealJSON(mti string, v any) (body []byte, signature string, err error) {
	var pt []byte
	switch v := v.(type) {
	case []byte:
		pt = v
	case json.RawMessage:
		pt = v
	default:
		if pt, err = json.Marshal(v); err != nil {
			return nil, "", fmt.Errorf("kpos: seal %s: %w", mti, err)
		}
	}
	return k.Seal(mti, pt)
}

// Open checks a received body and returns its MTI and decrypted content.
// The signature is verified over the exact body bytes before anything in
// the body is parsed; only the size is looked at first, so that an
// oversized body is not even hashed. Errors wrap ErrSignature, ErrBody or
// ErrDecrypt, except a missing key in k.
func (k *Keys) Open(body []byte, signature string) (mti string, plaintext []byte, err error) {
	if k.Theirs == nil {
		return "", nil, errors.New("kpos: open: no verification key")
	}
	if len(k.CEK) != CEKSize {
		return "", nil, fmt.Errorf("kpos: open: content key of %d bytes, want %d", len(k.CEK), CEKSize)
	}
	if len(body) > MaxBody {
		return "", nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBody, len(body), MaxBody)
	}
	if err := Verify(k.Theirs, body, signature); err != nil {
		return "", nil, err
	}
	b, err := ParseBody(body)
	if err != nil {
		return "", nil, err
	}
	pt, err := Decrypt(k.CEK, b.JWE)
	if err != nil {
		return "", nil, fmt.Errorf("%w (MTI %s)", err, b.MTI)
	}
	return b.MTI, pt, nil
}
