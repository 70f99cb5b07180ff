package kpos_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// validConfig is a KPOS config that validates, its key files absent.
func validConfig() kpos.Config {
	return kpos.Config{HostURL: "https://host/fnx", MID: "000000000012345", Listen: "127.0.0.1:8443", Path: "/kpos/notification",
		TLSCert: "tls.crt", TLSKey: "tls.key", ContentKey: "k", KDFOtherInfo: "raw", SigningKey: "sign.pem",
		FinexusSigningPub: "finexus.pem", SerialBaud: 9600, ReplyMTI: kpos.MTINotificationOK, Codes: kpos.DefaultCodes}
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, c := range []struct {
		name string
		set  func(*kpos.Config)
		want []string // every one; none: valid
	}{
		{"no host", func(c *kpos.Config) { c.HostURL = "" }, []string{"host_url: required"}},
		{"no mid", func(c *kpos.Config) { c.MID = "" }, []string{"mid: required"}},
		{"no signing keys", func(c *kpos.Config) { c.SigningKey, c.FinexusSigningPub = "", "" },
			[]string{"signing_key: required", "finexus_signing_public_key: required"}},
		{"listen without port", func(c *kpos.Config) { c.Listen = "8443" }, []string{`listen "8443": `}},
		{"relative path", func(c *kpos.Config) { c.Path = "kpos" }, []string{`path "kpos": must start with /`}},
		{"cert without key", func(c *kpos.Config) { c.TLSKey = "" }, []string{"tls_cert and tls_key: set both, or neither"}},
		{"key without cert", func(c *kpos.Config) { c.TLSCert = "" }, []string{"tls_cert and tls_key: set both, or neither",
			"tls_cert: not set; set allow_plain_http = true"}},
		{"plain HTTP not asked for", func(c *kpos.Config) { c.TLSCert, c.TLSKey = "", "" }, []string{"tls_cert: not set"}},
		{"plain HTTP asked for", func(c *kpos.Config) { c.TLSCert, c.TLSKey, c.AllowPlainHTTP = "", "", true }, nil},
		{"no content key", func(c *kpos.Config) { c.ContentKey = "" }, []string{"content_key: set it, or both"}},
		{"half an ECDH pair", func(c *kpos.Config) { c.ContentKey, c.ECDHPrivateKey = "", "ecdh.pem" }, []string{"content_key: set it, or both"}},
		{"ECDH pair", func(c *kpos.Config) { c.ContentKey, c.ECDHPrivateKey, c.FinexusECDHPublic = "", "e.pem", "f.pem" }, nil},
		{"both content keys", func(c *kpos.Config) { c.ECDHPrivateKey, c.FinexusECDHPublic = "e.pem", "f.pem" }, []string{"content_key: set it, or both"}},
		{"other info", func(c *kpos.Config) { c.KDFOtherInfo = "fancy" }, []string{"kdf_other_info: "}},
		{"serial baud unused", func(c *kpos.Config) { c.SerialBaud = 0 }, nil},
		{"serial baud 1200", func(c *kpos.Config) { c.SerialDevice, c.SerialBaud = "/dev/ttyUSB0", 1200 }, nil},
		{"serial baud 921600", func(c *kpos.Config) { c.SerialDevice, c.SerialBaud = "/dev/ttyUSB0", 921600 }, nil},
		{"serial baud 1199", func(c *kpos.Config) { c.SerialDevice, c.SerialBaud = "/dev/ttyUSB0", 1199 }, []string{"serial_baud 1199: want 1200 to 921600"}},
		{"serial baud 921601", func(c *kpos.Config) { c.SerialDevice, c.SerialBaud = "/dev/ttyUSB0", 921601 }, []string{"serial_baud 921601: want 1200 to 921600"}},
		{"reply MTI", func(c *kpos.Config) { c.ReplyMTI = "26" }, []string{`reply_mti "26": want 4 digits`}},
		{"success as a refusal", func(c *kpos.Config) { c.Codes.Busy = kpos.ResultSuccess }, []string{`code_busy "00000": want 5 characters, not 00000`}},
		{"short codes", func(c *kpos.Config) {
			c.Codes.BadSignature, c.Codes.BadMessage, c.Codes.UnknownMRN = "KP09", "", "KP0490"
		},
			[]string{`code_bad_signature "KP09"`, `code_bad_message ""`, `code_unknown_mrn "KP0490"`}},
	} {
		cfg := validConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: valid, want %q", c.name, c.want)
			continue
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != len(c.want) {
			t.Errorf("%s: %d problems, want %d:\n%v", c.name, n, len(c.want), err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: does not say %q:\n%v", c.name, w, err)
			}
		}
	}
}

func TestConfigLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub := func(name, privPEM string) string {
		der, err := x509.MarshalPKIXPublicKey(&kpostest.MustPrivateKey(privPEM).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	kiosk, _ := kpostest.Peers()
	cfg := validConfig()
	cfg.SigningKey = write("sign.pem", []byte(kpostest.KioskSignPEM))
	cfg.FinexusSigningPub = pub("finexus-sign.pem", kpostest.FinexusSignPEM)
	cfg.ContentKey, cfg.ECDHPrivateKey, cfg.FinexusECDHPublic = "", write("ecdh.pem", []byte(kpostest.KioskECDHPEM)), pub("finexus-ecdh.pem", kpostest.FinexusECDHPEM)
	cfg.JWEKid, cfg.EPKKid = "123", kpostest.KioskEPKKid

	keys, err := cfg.LoadKeys()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.CEK, kiosk.CEK) || !keys.Ours.Equal(kiosk.Ours) || !keys.Theirs.Equal(kiosk.Theirs) ||
		!keys.Header.EPK.Equal(kiosk.Header.EPK) || keys.Header.Kid != "123" || keys.Header.EPKKid != kpostest.KioskEPKKid {
		t.Errorf("ECDH keys differ from the fixed peers'")
	}

	raw := bytes.Repeat([]byte{7}, 64)
	withCEK := cfg
	withCEK.ContentKey, withCEK.ECDHPrivateKey, withCEK.FinexusECDHPublic = base64.StdEncoding.EncodeToString(raw), "", ""
	if keys, err := withCEK.LoadKeys(); err != nil || !bytes.Equal(keys.CEK, raw) || keys.Header.EPK != nil {
		t.Errorf("content key: %v", err)
	}

	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		name string
		set  func(*kpos.Config)
		want string
	}{
		{"signing key missing", func(c *kpos.Config) { c.SigningKey = missing }, "signing_key: open " + missing},
		{"signing key not a key", func(c *kpos.Config) { c.SigningKey = c.FinexusSigningPub }, "signing_key: "},
		{"finexus signing key missing", func(c *kpos.Config) { c.FinexusSigningPub = missing }, "finexus_signing_public_key: open " + missing},
		{"ecdh key missing", func(c *kpos.Config) { c.ECDHPrivateKey = missing }, "ecdh_private_key: open " + missing},
		{"finexus ecdh key missing", func(c *kpos.Config) { c.FinexusECDHPublic = missing }, "finexus_ecdh_public_key: open " + missing},
		{"short content key", func(c *kpos.Config) {
			c.ContentKey = base64.StdEncoding.EncodeToString(raw[:32])
		}, "content_key: kpos: raw key: 32 bytes, want 64"},
	} {
		bad := cfg
		c.set(&bad)
		if _, err := bad.LoadKeys(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
