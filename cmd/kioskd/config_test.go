package main

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// provisionFiles are the key files of a KPOS kiosk, all valid.
type provisionFiles struct {
	dir                        string
	signing, finexusSigningPub string
	cert, key, otherKey        string
	contentKey                 string // base64 of 64 bytes
}

func writeProvisionFiles(t *testing.T) provisionFiles {
	t.Helper()
	dir := t.TempDir()
	f := provisionFiles{dir: dir}
	f.signing, _ = writeKey(t, dir, "kiosk-sign", genKey(t, elliptic.P521()))
	_, f.finexusSigningPub = writeKey(t, dir, "finexus-sign", genKey(t, elliptic.P521()))
	var err error
	if f.cert, f.key, _, err = kpostest.TLSPair(dir); err != nil {
		t.Fatal(err)
	}
	f.otherKey, _ = writeKey(t, dir, "other", genKey(t, elliptic.P256()))
	f.contentKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	return f
}

// kposTable is a [kpos] table that provisions; set overrides its keys.
func (f provisionFiles) kposTable(set map[string]string) string {
	keys := []struct{ k, v string }{
		{"enabled", "true"}, {"host_url", `"http://127.0.0.1:9/fnx"`}, {"mid", `"000000000012345"`},
		{"listen", `"127.0.0.1:0"`}, {"tls_cert", fmt.Sprintf("%q", f.cert)}, {"tls_key", fmt.Sprintf("%q", f.key)},
		{"content_key", fmt.Sprintf("%q", f.contentKey)}, {"signing_key", fmt.Sprintf("%q", f.signing)},
		{"finexus_signing_public_key", fmt.Sprintf("%q", f.finexusSigningPub)},
	}
	var b strings.Builder
	b.WriteString("[kpos]\n")
	seen := map[string]bool{}
	for _, kv := range keys {
		v := kv.v
		if o, ok := set[kv.k]; ok {
			v = o
		}
		seen[kv.k] = true
		fmt.Fprintf(&b, "%s = %s\n", kv.k, v)
	}
	for k, v := range set {
		if !seen[k] {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	return b.String()
}

// provisionConfig writes a loopback kiosk's config in its own directory:
// posSecret is the [pos] secret line, body the further tables.
func provisionConfig(t *testing.T, posSecret, body string) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	conf := fmt.Sprintf("kiosk_id = \"KIOSK-T\"\ndata_dir = %q\n\n[pos]\nlisten = \"127.0.0.1:0\"\n%s\n\n[control]\nsocket = %q\n\n%s",
		filepath.Join(dir, "data"), posSecret, filepath.Join(dir, "ctl.sock"), body)
	cfgPath = filepath.Join(dir, "kioskd.toml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dir
}

// Defect 11: `config check` passed what `run` refuses. Both now run the
// same provisioning, and run does it before it opens the journal, binds
// the control socket, arms the watchdog or records a start.
func TestConfigCheckRefusesWhatRunRefuses(t *testing.T) {
	f := writeProvisionFiles(t)
	secret := fmt.Sprintf("secret = %q", testSecret)
	missing := filepath.Join(f.dir, "does-not-exist.pem")
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cases := []struct {
		name, pos, body string
		want            []string
	}{
		{"32-byte content_key", secret, f.kposTable(map[string]string{"content_key": fmt.Sprintf("%q", short)}),
			[]string{"kpos.content_key: kpos: raw key: 32 bytes, want 64"}},
		{"signing_key missing", secret, f.kposTable(map[string]string{"signing_key": fmt.Sprintf("%q", missing)}),
			[]string{"kpos.signing_key: open " + missing + ": no such file or directory"}},
		{"finexus signing key missing", secret, f.kposTable(map[string]string{"finexus_signing_public_key": fmt.Sprintf("%q", missing)}),
			[]string{"kpos.finexus_signing_public_key: open " + missing}},
		{"signing_key not a key", secret, f.kposTable(map[string]string{"signing_key": fmt.Sprintf("%q", f.cert)}),
			[]string{"kpos.signing_key: "}},
		{"tls_cert missing", secret, f.kposTable(map[string]string{"tls_cert": fmt.Sprintf("%q", missing)}),
			[]string{"kpos.tls_cert, kpos.tls_key: open " + missing}},
		{"tls pair mismatched", secret, f.kposTable(map[string]string{"tls_key": fmt.Sprintf("%q", f.otherKey)}),
			[]string{"kpos.tls_cert, kpos.tls_key: tls: private key does not match public key"}},
		{"pos secret_file missing", fmt.Sprintf("secret_file = %q", missing), "",
			[]string{"pos: secret file: open " + missing}},
		{"board pin twice", secret, "[board]\nled_red = \"SIM_RELAY\"\n",
			[]string{`board.led_red "SIM_RELAY" is also relay_pin`}},
		{"generic board without its keys", secret, "[board]\nkind = \"generic\"\nled_green = \"gpiochip0:\"\n",
			[]string{"board.relay_pin: required", "board.watchdog_device: required", "board.printer_device: required",
				`board.led_green "gpiochip0:": line offset ""`}},
		{"every problem at once", fmt.Sprintf("secret_file = %q", missing),
			f.kposTable(map[string]string{"signing_key": fmt.Sprintf("%q", missing), "tls_key": fmt.Sprintf("%q", f.otherKey)}),
			[]string{"pos: secret file: open " + missing, "kpos.signing_key: open " + missing, "tls: private key does not match public key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfgPath, dir := provisionConfig(t, c.pos, c.body)
			code, out, errs := kioskd(t, "", "config", "check", cfgPath)
			if code != exitFail || out != "" {
				t.Fatalf("config check: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("config check does not say %q:\n%s", w, errs)
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			code = runService(ctx, &cli.Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr}, cfgPath, nil)
			if ctx.Err() != nil {
				t.Fatalf("run served with a config it must refuse:\n%s", stderr.String())
			}
			if code != exitFail {
				t.Errorf("run: exit %d, want %d", code, exitFail)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("run does not say %q:\n%s", w, stderr.String())
				}
			}
			for _, p := range []string{"data/journal.db", "ctl.sock", "data/restarts"} {
				if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
					t.Errorf("run created %s before refusing the config (stat: %v)", p, err)
				}
			}
		})
	}
}

// The positive control: the same KPOS tables with every file in order
// pass the check, TLS pair included, and with ECDH keys instead of a
// content key.
func TestConfigCheckProvisionsKPOS(t *testing.T) {
	f := writeProvisionFiles(t)
	ecdh, _ := writeKey(t, f.dir, "kiosk-ecdh", genKey(t, elliptic.P256()))
	_, fECDH := writeKey(t, f.dir, "finexus-ecdh", genKey(t, elliptic.P256()))
	for name, body := range map[string]string{
		"content key": f.kposTable(nil),
		"ecdh": f.kposTable(map[string]string{"content_key": `""`, "ecdh_private_key": fmt.Sprintf("%q", ecdh),
			"finexus_ecdh_public_key": fmt.Sprintf("%q", fECDH)}),
	} {
		cfgPath, _ := provisionConfig(t, fmt.Sprintf("secret = %q", testSecret), body)
		if code, out, errs := kioskd(t, "", "config", "check", cfgPath); code != exitOK || !strings.HasPrefix(out, "ok ") {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errs)
		}
	}
}

// A generic board has no defaults to fall back on: `kioskd config check`
// (what run does first) names every key it lacks, and every pin whose
// syntax is wrong, at once, without touching any hardware.
func TestConfigCheckGenericBoard(t *testing.T) {
	const (
		noRelay    = `board.relay_pin: required for board kind "generic" (a GPIO line name such as "GPIO17", or "gpiochip0:17")`
		noWatchdog = `board.watchdog_device: required for board kind "generic" (the hardware watchdog, such as "/dev/watchdog")`
		noPrinter  = `board.printer_device: required for board kind "generic" (the receipt printer's serial device, such as "/dev/ttyS0", or printer.enabled = false)`
	)
	complete := "kind = \"generic\"\nrelay_pin = \"GPIO17\"\nwatchdog_device = \"/dev/watchdog\"\nprinter_device = \"/dev/ttyS0\"\n"
	cases := []struct {
		name, body string
		want, not  []string
	}{
		{"nothing named", "[board]\nkind = \"generic\"\n", []string{noRelay, noWatchdog, noPrinter}, nil},
		{"printer disabled", "[printer]\nenabled = false\n\n[board]\nkind = \"generic\"\n",
			[]string{noRelay, noWatchdog}, []string{"board.printer_device"}},
		{"only the relay", "[board]\nkind = \"generic\"\nrelay_pin = \"gpiochip0:17\"\n",
			[]string{noWatchdog, noPrinter}, []string{"board.relay_pin"}},
		{"pin syntax", "[board]\n" + strings.Replace(complete, `relay_pin = "GPIO17"`, `relay_pin = ":17"`, 1) +
			"led_green = \"gpiochip0:x\"\nled_amber = \"9030000.pl061:\"\nled_red = \"/dev/gpiochip0:-1\"\nrelay_sense_pin = \" GPIO27\"\n",
			[]string{
				`board.relay_pin ":17": no GPIO chip before ":" (want CHIP:OFFSET, e.g. "gpiochip0:17")`,
				`board.led_green "gpiochip0:x": line offset "x" after ":" is not a decimal number 0 or more`,
				`board.led_amber "9030000.pl061:": line offset "" after ":"`,
				`board.led_red "/dev/gpiochip0:-1": line offset "-1" after ":"`,
				`board.relay_sense_pin " GPIO27": leading or trailing space`,
			}, []string{noRelay, noWatchdog, noPrinter}},
		{"a pin twice", "[board]\n" + complete + "led_red = \"GPIO17\"\n",
			[]string{`board.led_red "GPIO17" is also relay_pin`}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfgPath, _ := provisionConfig(t, fmt.Sprintf("secret = %q", testSecret), c.body)
			code, out, errs := kioskd(t, "", "config", "check", cfgPath)
			if code != exitFail || out != "" {
				t.Fatalf("config check: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("config check does not say %q:\n%s", w, errs)
				}
			}
			for _, n := range c.not {
				if strings.Contains(errs, n) {
					t.Errorf("config check says %q:\n%s", n, errs)
				}
			}
		})
	}

	// The positive controls: the syntax check is no hardware check, so
	// these pass on a machine with no GPIO at all.
	for name, body := range map[string]string{
		"names": complete + "led_green = \"LED_G\"\nled_amber = \"PA7\"\n",
		"chip by name, path and label": strings.Replace(complete, `"GPIO17"`, `"gpiochip0:17"`, 1) +
			"led_green = \"/dev/gpiochip1:0\"\nled_red = \"9030000.pl061:7\"\n",
		"polarity and baud overridable": complete + "relay_active_low = false\nled_active_low = true\nprinter_baud = 19200\n",
		"no printer when disabled": "kind = \"generic\"\nrelay_pin = \"GPIO17\"\nwatchdog_device = \"/dev/watchdog0\"\n" +
			"\n[printer]\nenabled = false\n",
	} {
		cfgPath, _ := provisionConfig(t, fmt.Sprintf("secret = %q", testSecret), "[board]\n"+body)
		if code, out, errs := kioskd(t, "", "config", "check", cfgPath); code != exitOK || !strings.HasPrefix(out, "ok ") {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errs)
		}
	}
}
