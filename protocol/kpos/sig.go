package kpos

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
)

// maxSignatureHeader bounds the Signature header before any decoding: a
// P-521 DER signature is at most 139 bytes, 188 in base64, about 200
// once percent-encoded.
const maxSignatureHeader = 1024

// Sign computes the Signature header value for body (Appendix 1):
// SHA512withECDSA over the exact body bytes, ASN.1 DER, standard base64,
// URL-encoded as Java's URLEncoder and JavaScript's encodeURIComponent do
// ('+', '/', '=' become %2B, %2F, %3D).
func Sign(priv *ecdsa.PrivateKey, body []byte) (string, error) {
	if priv == nil {
		return "", errors.New("kpos: sign: missing key")
	}
	h := sha512.Sum512(body)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
	if err != nil {
		return "", fmt.Errorf("kpos: sign: %w", err)
	}
	return url.QueryEscape(base64.StdEncoding.EncodeToString(sig)), nil
}

// Verify checks a Signature header value against the exact body bytes.
// The header's decoding is lenient, since only the verification decides:
// percent-encoding is optional, '+' stays '+' (and a space that some layer
// made of a '+' inside the value turns back into one; at either end it is
// trimmed, as net/http trims it), padding is optional, either base64
// alphabet is read, and a raw r||s signature is accepted besides DER.
// Every error wraps ErrSignature.
func Verify(pub *ecdsa.PublicKey, body []byte, header string) error {
	if err := verify(pub, body, header); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

func verify(pub *ecdsa.PublicKey, body []byte, header string) error {
	if pub == nil || pub.Curve == nil {
		return errors.New("no verification key")
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return errors.New("signature header is empty")
	}
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("signature header of %d bytes exceeds %d", len(header), maxSignatureHeader)
	}
	// PathUnescape, unlike QueryUnescape, leaves '+' alone: an un-encoded
	// base64 value keeps its '+'.
	s, err := url.PathUnescape(header)
	if err != nil {
		return errors.New("signature header has bad percent-encoding")
	}
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer(" ", "+", "-", "+", "_", "/").Replace(s)
	sig, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return errors.New("signature header is not base64")
	}
	h := sha512.Sum512(body)
	if ecdsa.VerifyASN1(pub, h[:], sig) {
		return nil
	}
	// Some signers (JOSE-style or WebCrypto) emit r||s, each left-padded
	// to the curve's byte size.
	if n := (pub.Curve.Params().BitSize + 7) / 8; len(sig) == 2*n {
		r := new(big.Int).SetBytes(sig[:n])
		ss := new(big.Int).SetBytes(sig[n:])
		if ecdsa.Verify(pub, h[:], r, ss) {
			return nil
		}
	}
	return errors.New("signature does not verify")
}
