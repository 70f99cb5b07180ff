package kpos

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// MaxBody bounds a KPOS body. The documented messages are a few hundred
// bytes of JSON; 64 KiB leaves room for advMsg (1000 characters) and any
// future field while keeping a hostile peer from making us hash, decode
// and decrypt megabytes.
const MaxBody = 64 << 10

// MTILen is the length of the message type indicator that starts a body.
const MTILen = 4

// Body is a KPOS HTTP body split into its message type and its JWE.
type Body struct {
	MTI string // 4 characters, e.g. "0025", "001X"
	JWE string // compact serialization, 5 parts, the second empty
}

// jweParts names the five compact JWE parts for error messages.
var jweParts = [5]string{"protected header", "encrypted key", "IV", "ciphertext", "tag"}

// ParseBody splits a body into MTI and JWE, checking its form only:
// nothing is decrypted or verified. Every error wraps ErrBody.
func ParseBody(b []byte) (Body, error) {
	if err := parseBody(b); err != nil {
		return Body{}, fmt.Errorf("%w: %w", ErrBody, err)
	}
	return Body{MTI: string(b[:MTILen]), JWE: string(b[MTILen:])}, nil
}

func parseBody(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("empty")
	case len(b) > MaxBody:
		return fmt.Errorf("%d bytes exceeds %d", len(b), MaxBody)
	case len(b) <= MTILen:
		return fmt.Errorf("%d bytes is too short for an MTI and a JWE", len(b))
	}
	if err := checkMTI(b[:MTILen]); err != nil {
		return err
	}
	jwe := b[MTILen:]
	// Bytes first, then the count of parts, then each part: the error then
	// names the first thing wrong from the outside in.
	dots := 0
	for i, c := range jwe {
		if c == '.' {
			dots++
			continue
		}
		if !isBase64URL(c) {
			what := "a byte that is not base64url"
			switch c {
			case ' ', '\t', '\r', '\n', '\v', '\f':
				what = "whitespace"
			case '=':
				what = "base64 padding"
			}
			return fmt.Errorf("JWE has %s (%q) at body offset %d", what, c, MTILen+i)
		}
	}
	if dots != len(jweParts)-1 {
		return fmt.Errorf("JWE has %d parts, want %d", dots+1, len(jweParts))
	}
	for i := range jweParts {
		var p []byte
		p, jwe, _ = bytes.Cut(jwe, []byte{'.'})
		if err := checkPart(i, p); err != nil {
			return err
		}
	}
	return nil
}

func checkPart(i int, p []byte) error {
	if i == 1 {
		if len(p) != 0 {
			return errors.New("JWE encrypted key is not empty, as alg dir requires")
		}
		return nil
	}
	if len(p) == 0 {
		return fmt.Errorf("JWE %s is empty", jweParts[i])
	}
	// Strict: a sender using a real base64url encoder never sets the
	// unused trailing bits, and refusing them keeps one encoding per value.
	if _, err := base64.RawURLEncoding.Strict().DecodeString(string(p)); err != nil {
		return fmt.Errorf("JWE %s is not valid base64url", jweParts[i])
	}
	return nil
}

// checkMTI accepts four digits, or three and an 'X': "001X" is written
// literally in every inquiry sample and in Appendix 1, and whether X
// stands for a digit is undocumented. X appears nowhere else.
func checkMTI(m []byte) error {
	for i, c := range m {
		if (c < '0' || c > '9') && (c != 'X' || i != MTILen-1) {
			return fmt.Errorf("MTI %q is not 4 digits (or 3 and X)", m)
		}
	}
	return nil
}

// ValidMTI reports whether s is a well-formed MTI.
func ValidMTI(s string) bool {
	return len(s) == MTILen && checkMTI([]byte(s)) == nil
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
