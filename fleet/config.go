package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultStatusEvery is how often the retained status is republished
// when nothing in it changed: often enough that an operator's dashboard
// can tell a kiosk that went quiet from one that is idle.
const DefaultStatusEvery = time.Minute

// Config is the [fleet] section as the shipper and the operator's tools
// need it. Validate checks its shape; Credentials reads the files it
// names, so that `kioskd config check` can refuse a kiosk whose key or
// password file is missing before it is deployed.
type Config struct {
	Broker       string // broker: mqtt://host:port or mqtts://host:port
	CAFile       string // ca_file: PEM roots for the broker's certificate (mqtts only)
	CertFile     string // cert_file: PEM client certificate (mqtts only, with key_file)
	KeyFile      string // key_file: PEM key of cert_file
	Username     string // username (with password_file)
	PasswordFile string // password_file: the password, one line
	KioskID      string // kiosk_id: names the kiosk on the broker
	Version      string // the firmware's version, for the status
	StatusEvery  time.Duration
	Log          *slog.Logger

	// backoff replaces the reconnect back-off (tests: a broker that comes
	// back should be found in milliseconds, not seconds).
	backoff func(int) time.Duration
}

// Validate reports every problem of the section at once, each naming the
// TOML key, as the rest of the config does.
func (c *Config) Validate() error {
	return errors.Join(c.validate(true)...)
}

// validate checks the section; the operator's tools (withKiosk false)
// need no kiosk_id.
func (c *Config) validate(withKiosk bool) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("fleet."+format, a...))
	}
	tlsOn := false
	switch u, err := url.Parse(c.Broker); {
	case c.Broker == "":
		bad("broker: missing (mqtt://host:port or mqtts://host:port)")
	case err != nil:
		bad("broker %q: %v", c.Broker, err)
	case u.Scheme != "mqtt" && u.Scheme != "mqtts":
		bad("broker %q: the scheme must be mqtt or mqtts", c.Broker)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		bad("broker %q: only mqtt(s)://host:port (credentials go in username and password_file)", c.Broker)
	default:
		tlsOn = u.Scheme == "mqtts"
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			bad("broker %q: needs host:port", c.Broker)
		}
	}
	if !tlsOn && strings.HasPrefix(c.Broker, "mqtt://") {
		// A certificate configured for a plain broker is a mistake that
		// would otherwise send the password in clear without a word.
		for _, f := range []struct{ key, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
			if f.v != "" {
				bad("%s: TLS files need an mqtts:// broker", f.key)
			}
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert_file and key_file: set both or neither")
	}
	if (c.Username == "") != (c.PasswordFile == "") {
		bad("username and password_file: set both or neither")
	}
	if withKiosk {
		if c.KioskID == "" {
			bad("kiosk_id: missing (it names the kiosk on the broker)")
		} else if strings.ContainsAny(c.KioskID, "/+#\x00") || strings.TrimSpace(c.KioskID) != c.KioskID || len(c.KioskID) > 64 {
			// It is a topic level: a slash or a wildcard would publish
			// into, or subscribe to, another kiosk's topics.
			bad("kiosk_id %q: no '/', '+', '#', NUL or surrounding blanks, at most 64 bytes", c.KioskID)
		}
	}
	if c.StatusEvery < 0 || (c.StatusEvery > 0 && c.StatusEvery < time.Second) {
		bad("status_every %v: at least 1s (0 takes the default %v)", c.StatusEvery, DefaultStatusEvery)
	}
	return errs
}

// Credentials is what Load read from the files the section names.
type Credentials struct {
	TLS      *tls.Config // nil for mqtt://
	Username string
	Password []byte
}

// Load validates the section and reads its files, reporting every file
// that is missing or unreadable. The shipper calls it once in New; a
// key rotated later takes a restart, as every other file of the config.
func (c *Config) Load() (*Credentials, error) {
	return c.load(true)
}

func (c *Config) load(withKiosk bool) (*Credentials, error) {
	if errs := c.validate(withKiosk); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var errs []error
	cr := &Credentials{Username: c.Username}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("fleet.password_file: %w", err))
		default:
			cr.Password = []byte(strings.TrimRight(string(b), "\r\n"))
			if len(cr.Password) == 0 {
				errs = append(errs, fmt.Errorf("fleet.password_file %s: empty", c.PasswordFile))
			}
		}
	}
	if strings.HasPrefix(c.Broker, "mqtts://") {
		t, err := c.TLS()
		if err != nil {
			errs = append(errs, err)
		}
		cr.TLS = t
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cr, nil
}

// TLS builds the client's TLS configuration from ca_file, cert_file and
// key_file. Without ca_file the system roots are used.
func (c *Config) TLS() (*tls.Config, error) {
	u, err := url.Parse(c.Broker)
	if err != nil {
		return nil, fmt.Errorf("fleet.broker %q: %w", c.Broker, err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	var errs []error
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet.ca_file: %w", err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("fleet.ca_file %s: no PEM certificate in it", c.CAFile))
			}
			t.RootCAs = pool
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet.cert_file, fleet.key_file: %w", err))
		} else {
			t.Certificates = []tls.Certificate{cert}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}
