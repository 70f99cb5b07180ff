package kpos

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// CEKSize is the length of the A256CBC-HS512 content key: a 32-byte MAC
// key followed by a 32-byte AES-256 key.
const CEKSize = 64

// ParsePrivateKeyPEM reads an EC private key from PEM. Finexus's samples
// use both encodings: PKCS#8 ("PRIVATE KEY") for the P-256 encryption key
// and traditional SEC1 ("EC PRIVATE KEY") for the P-521 signing key.
func ParsePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("kpos: private key: no PRIVATE KEY or EC PRIVATE KEY PEM block found")
		}
		if len(b.Headers) > 0 {
			// Proc-Type/DEK-Info: legacy PEM encryption, which the stdlib
			// deliberately no longer decrypts.
			return nil, fmt.Errorf("kpos: private key: PEM block %q has headers (encrypted keys are not supported)", b.Type)
		}
		switch b.Type {
		case "EC PARAMETERS":
			// `openssl ecparam -genkey` writes the curve before the key.
			continue
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("kpos: private key: SEC1: %w", err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("kpos: private key: PKCS#8: %w", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("kpos: private key: PKCS#8 holds a %T, want an EC (NIST curve) key", k)
			}
			return ek, nil
		default:
			return nil, fmt.Errorf("kpos: private key: unexpected PEM block %q", b.Type)
		}
	}
}

// ParsePublicKeyPEM reads an EC public key from a PKIX ("PUBLIC KEY") PEM
// block, the X509EncodedKeySpec form of Finexus's samples.
func ParsePublicKeyPEM(data []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("kpos: public key: no PEM block found")
	}
	if b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("kpos: public key: PEM block %q, want \"PUBLIC KEY\"", b.Type)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("kpos: public key: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("kpos: public key: holds a %T, want an EC (NIST curve) key", k)
	}
	return ek, nil
}

// ParseRawKey reads a 64-byte content key configured directly (for
// example one Finexus hands out instead of the ECDH key pair), as hex or
// as base64 in either alphabet, padded or not. The value never appears in
// an error.
func ParseRawKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("kpos: raw key: empty")
	}
	// 128 hex digits cannot be mistaken for base64 of 64 bytes (86-88
	// characters), so hex is tried first without ambiguity.
	if len(s) == 2*CEKSize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	b64 := strings.TrimRight(s, "=")
	b64 = strings.NewReplacer("-", "+", "_", "/").Replace(b64)
	k, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("kpos: raw key: neither 128 hex digits nor base64")
	}
	if len(k) != CEKSize {
		return nil, fmt.Errorf("kpos: raw key: %d bytes, want %d", len(k), CEKSize)
	}
	return k, nil
}

// OtherInfo selects the Concat KDF "other info" input. Finexus's Embed
// Code passes "1.0" as partyVInfo to a helper whose body the docs cut off,
// so which layout it feeds to the KDF is not documented (notes §4.2).
type OtherInfo int

const (
	// OtherInfoRaw feeds the three bytes "1.0" as they are, the shape of
	// nimbus ConcatKDF.deriveKey(Z, 512, otherInfo).
	OtherInfoRaw OtherInfo = iota
	// OtherInfoJOSE uses the JWA (RFC 7518 §4.6.2) layout of nimbus
	// ECDH.deriveSharedKey: AlgorithmID "A256CBC-HS512", empty PartyUInfo,
	// PartyVInfo "1.0", SuppPubInfo 512, each datum length-prefixed.
	OtherInfoJOSE
)

func (o OtherInfo) String() string {
	switch o {
	case OtherInfoRaw:
		return "raw"
	case OtherInfoJOSE:
		return "jose"
	}
	return fmt.Sprintf("OtherInfo(%d)", int(o))
}

// ParseOtherInfo reads the configuration spelling of an OtherInfo.
func ParseOtherInfo(s string) (OtherInfo, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "raw":
		return OtherInfoRaw, nil
	case "jose", "jwa":
		return OtherInfoJOSE, nil
	}
	return 0, fmt.Errorf("kpos: other info %q: want \"raw\" or \"jose\"", s)
}

// kdfPartyVInfo is the partyVInfo of the Embed Code, equal to msgVer.
const kdfPartyVInfo = "1.0"

func (o OtherInfo) bytes() ([]byte, error) {
	switch o {
	case OtherInfoRaw:
		return []byte(kdfPartyVInfo), nil
	case OtherInfoJOSE:
		var b []byte
		for _, datum := range []string{"A256CBC-HS512", "", kdfPartyVInfo} {
			b = binary.BigEndian.AppendUint32(b, uint32(len(datum)))
			b = append(b, datum...)
		}
		return binary.BigEndian.AppendUint32(b, CEKSize*8), nil
	}
	return nil, fmt.Errorf("kpos: unknown other info %d", int(o))
}

// DeriveKey computes the static content key shared by our and Finexus's
// P-256 keys: ECDH (the x-coordinate, as JCA's KeyAgreement returns it)
// then Concat KDF with SHA-256 to 512 bits. ECDH is symmetric, so Finexus
// derives the same key from its private key and our public key; one key
// serves both directions.
func DeriveKey(ours *ecdsa.PrivateKey, theirs *ecdsa.PublicKey, info OtherInfo) ([]byte, error) {
	if ours == nil || theirs == nil {
		return nil, errors.New("kpos: derive key: missing key")
	}
	if ours.Curve != elliptic.P256() || theirs.Curve != elliptic.P256() {
		return nil, fmt.Errorf("kpos: derive key: keys on %s and %s, want P-256 for both",
			curveName(ours.Curve), curveName(theirs.Curve))
	}
	other, err := info.bytes()
	if err != nil {
		return nil, err
	}
	priv, err := ours.ECDH()
	if err != nil {
		return nil, fmt.Errorf("kpos: derive key: our key: %w", err)
	}
	pub, err := theirs.ECDH()
	if err != nil {
		return nil, fmt.Errorf("kpos: derive key: their key: %w", err)
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("kpos: derive key: ECDH: %w", err)
	}
	return concatKDF(z, other), nil
}

// concatKDF is NIST SP 800-56A's single-step KDF with SHA-256, sized for
// a CEKSize key: two rounds, counter first.
func concatKDF(z, other []byte) []byte {
	key := make([]byte, 0, CEKSize)
	for i := uint32(1); len(key) < CEKSize; i++ {
		h := sha256.New()
		var ctr [4]byte
		binary.BigEndian.PutUint32(ctr[:], i)
		h.Write(ctr[:])
		h.Write(z)
		h.Write(other)
		key = h.Sum(key)
	}
	return key[:CEKSize]
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "no curve"
	}
	return c.Params().Name
}

// publicPoint returns the fixed-length big-endian coordinates of pub,
// going through crypto/ecdh so that a point off the curve is refused.
func publicPoint(pub *ecdsa.PublicKey) (x, y []byte, err error) {
	if pub == nil {
		return nil, nil, errors.New("missing key")
	}
	e, err := pub.ECDH()
	if err != nil {
		return nil, nil, err
	}
	return splitPoint(e)
}

func splitPoint(e *ecdh.PublicKey) (x, y []byte, err error) {
	b := e.Bytes() // 0x04 || X || Y
	if len(b) < 3 || b[0] != 4 || len(b)%2 != 1 {
		return nil, nil, errors.New("not an uncompressed EC point")
	}
	n := (len(b) - 1) / 2
	return b[1 : 1+n], b[1+n:], nil
}
