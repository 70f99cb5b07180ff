package kpos

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
)

// Config is a KPOS link as an operator writes it down: the host, where
// notifications arrive, and the files the keys are read from. Validate
// checks it without reading a file; LoadKeys reads them. The receiver's
// and the client's own configs take built keys, which is why this one
// exists beside them.
type Config struct {
	HostURL string // base URL of the Finexus host
	// MID is the merchant id Finexus assigned: the payment layer sends it
	// in every submit, and without it the host refuses them all.
	MID string
	// SourceSystem is our sourceSystem header; FinexusSourceSystem, when
	// set, must be the notifications' (see ReceiverConfig).
	SourceSystem, FinexusSourceSystem string

	Listen string // notification receiver, host:port
	Path   string // its HTTP path
	// TLSCert and TLSKey are the receiver's PEM pair. Without them it
	// serves plain HTTP, and only if AllowPlainHTTP says so.
	TLSCert, TLSKey string
	AllowPlainHTTP  bool

	// The content key: ContentKey (hex or base64, see ParseRawKey), or
	// derived by ECDH between the PEM files ECDHPrivateKey (ours) and
	// FinexusECDHPublic with KDFOtherInfo (see ParseOtherInfo).
	ContentKey                        string
	ECDHPrivateKey, FinexusECDHPublic string
	KDFOtherInfo                      string
	// SigningKey (ours) and FinexusSigningPub are PEM files.
	SigningKey, FinexusSigningPub string
	JWEKid, EPKKid                string // see Header

	SerialDevice string // serial notifications' device, "" for none
	SerialBaud   int
	ReplyMTI     string
	Codes        Codes
}

// Validate reports every problem at once, each naming its key as the
// config file spells it (host_url, tls_cert) so that the caller needs
// only to put its section before it. Nothing is read: a key file is
// checked by LoadKeys.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, r := range []struct{ key, v string }{{"host_url", c.HostURL}, {"mid", c.MID},
		{"signing_key", c.SigningKey}, {"finexus_signing_public_key", c.FinexusSigningPub}} {
		if r.v == "" {
			bad("%s: required", r.key)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q: %v", c.Listen, err)
	}
	if !strings.HasPrefix(c.Path, "/") {
		bad("path %q: must start with /", c.Path)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert and tls_key: set both, or neither")
	}
	// Notifications move money: plain HTTP must be asked for.
	if c.TLSCert == "" && !c.AllowPlainHTTP {
		bad("tls_cert: not set; set allow_plain_http = true to receive notifications over plain HTTP")
	}
	if (c.ContentKey == "") == (c.ECDHPrivateKey == "" || c.FinexusECDHPublic == "") {
		bad("content_key: set it, or both ecdh_private_key and finexus_ecdh_public_key, not both")
	}
	if _, err := ParseOtherInfo(c.KDFOtherInfo); err != nil {
		bad("kdf_other_info: %v", err)
	}
	if c.SerialDevice != "" && (c.SerialBaud < 1200 || c.SerialBaud > 921600) {
		bad("serial_baud %d: want 1200 to 921600", c.SerialBaud)
	}
	if !ValidMTI(c.ReplyMTI) {
		bad("reply_mti %q: want 4 digits", c.ReplyMTI)
	}
	for _, r := range []struct{ key, code string }{{"code_bad_signature", c.Codes.BadSignature},
		{"code_bad_message", c.Codes.BadMessage}, {"code_unknown_mrn", c.Codes.UnknownMRN}, {"code_busy", c.Codes.Busy}} {
		if len(r.code) != 5 || r.code == ResultSuccess {
			bad("%s %q: want 5 characters, not %s", r.key, r.code, ResultSuccess)
		}
	}
	return errors.Join(errs...)
}

// LoadKeys reads every key file the config names and builds the keys
// both the client and the receiver use. An error names the key whose
// file is missing or wrong.
func (c Config) LoadKeys() (*Keys, error) {
	read := func(key, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return b, nil
	}
	keys := &Keys{Header: Header{Kid: c.JWEKid, EPKKid: c.EPKKid}}
	pem, err := read("signing_key", c.SigningKey)
	if err != nil {
		return nil, err
	}
	if keys.Ours, err = ParsePrivateKeyPEM(pem); err != nil {
		return nil, fmt.Errorf("signing_key: %w", err)
	}
	if pem, err = read("finexus_signing_public_key", c.FinexusSigningPub); err != nil {
		return nil, err
	}
	if keys.Theirs, err = ParsePublicKeyPEM(pem); err != nil {
		return nil, fmt.Errorf("finexus_signing_public_key: %w", err)
	}
	if c.ContentKey != "" {
		if keys.CEK, err = ParseRawKey(c.ContentKey); err != nil {
			return nil, fmt.Errorf("content_key: %w", err)
		}
		return keys, nil
	}
	if pem, err = read("ecdh_private_key", c.ECDHPrivateKey); err != nil {
		return nil, err
	}
	ours, err := ParsePrivateKeyPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("ecdh_private_key: %w", err)
	}
	if pem, err = read("finexus_ecdh_public_key", c.FinexusECDHPublic); err != nil {
		return nil, err
	}
	theirs, err := ParsePublicKeyPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("finexus_ecdh_public_key: %w", err)
	}
	info, err := ParseOtherInfo(c.KDFOtherInfo)
	if err != nil {
		return nil, fmt.Errorf("kdf_other_info: %w", err)
	}
	if keys.CEK, err = DeriveKey(ours, theirs, info); err != nil {
		return nil, fmt.Errorf("ecdh_private_key, finexus_ecdh_public_key: deriving the content key: %w", err)
	}
	keys.Header.EPK = &ours.PublicKey
	return keys, nil
}

// Client is the host client of this config.
func (c Config) Client(keys *Keys, hc *http.Client) *Client {
	return &Client{BaseURL: c.HostURL, Keys: keys, SourceSystem: c.SourceSystem, HTTP: hc}
}

// ReceiverConfig is the HTTP notification receiver's config.
func (c Config) ReceiverConfig(keys *Keys, log *slog.Logger) ReceiverConfig {
	return ReceiverConfig{Keys: keys, SourceSystem: c.FinexusSourceSystem, OurSourceSystem: c.SourceSystem,
		ReplyMTI: c.ReplyMTI, Codes: c.Codes, Log: log}
}
