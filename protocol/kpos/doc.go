// Package kpos speaks Finexus KayaakuPOS (KPOS): bodies of a 4-character
// message type (MTI) followed by a compact JWE (alg dir, enc
// A256CBC-HS512), a Signature header of ECDSA/SHA-512 over the exact body,
// payment notifications (0025) over HTTP and over a serial cable, and the
// host calls (0011 submit, 001X inquiry, 0031 abort).
//
// What the public documentation leaves open is configurable; see
// shared/spec/kpos-notes.md for the readings taken by default.
package kpos
