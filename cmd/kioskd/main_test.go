package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

// TestMain lets the crash tests re-execute this test binary as kioskd.
func TestMain(m *testing.M) {
	if os.Getenv("KIOSKD_TEST_AS_DAEMON") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// kioskd runs a subcommand in-process and returns its exit code and output.
func kioskd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func seedWires(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../protocol/mobypay/testdata/mobypay-seed-vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var wires []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var v struct{ Wire string }
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		wires = append(wires, v.Wire)
	}
	return wires
}

func TestSigVerifySeedVectors(t *testing.T) {
	wires := seedWires(t)
	in := strings.Join(wires, "\r\n") + "\n\n"
	code, out, stderr := kioskd(t, in, "sig", "verify", "-secret", mobypay.DevSecret)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 1 || len(lines) != 6 {
		t.Fatalf("exit %d, %d lines:\n%s%s", code, len(lines), out, stderr)
	}
	for i, l := range lines[:5] {
		if !strings.HasPrefix(l, "ok ") {
			t.Errorf("line %d: %q, want ok", i+1, l)
		}
	}
	if lines[5] != "bad: mobypay: invalid signature: does not match the payload" {
		t.Errorf("line 6: %q", lines[5])
	}
	// All good: exit 0.
	if code, out, _ := kioskd(t, strings.Join(wires[:5], "\n"), "sig", "verify", "-secret", mobypay.DevSecret); code != 0 {
		t.Errorf("five valid vectors: exit %d\n%s", code, out)
	}
	// Wrong secret: every line bad.
	if code, out, _ := kioskd(t, wires[0], "sig", "verify", "-secret", "nope"); code != 1 || !strings.HasPrefix(out, "bad: mobypay: invalid signature") {
		t.Errorf("wrong secret: exit %d, %q", code, out)
	}
}

func TestSigVerifyVerbose(t *testing.T) {
	wires := seedWires(t)
	code, out, _ := kioskd(t, wires[5]+"\n{not json\n", "sig", "verify", "-v", "-secret", mobypay.DevSecret)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	want := []string{
		"bad: mobypay: invalid signature: does not match the payload",
		`  canonical: {"amount":80.0,"error_message":"USER_ABORT",`,
		"  expected:  ",
		"bad: mobypay: malformed envelope: json: ",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// A malformed line has no canonical form to show.
	if strings.Count(out, "canonical:") != 1 {
		t.Errorf("canonical shown for malformed input:\n%s", out)
	}
}

func TestSigVerifySecretSources(t *testing.T) {
	wires := seedWires(t)
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	if err := os.WriteFile(sf, []byte(mobypay.DevSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := kioskd(t, wires[0], "sig", "verify", "-secret-file", sf); code != 0 {
		t.Errorf("secret file with newline: exit %d %s %s", code, out, errs)
	}
	cfg := filepath.Join(dir, "kioskd.toml")
	conf := strings.Replace(string(config.Default()), `secret = "POS-KIOSK-SECRET-KEY-2024"`, `secret = ""`, 1)
	conf = strings.Replace(conf, `secret_file = ""`, `secret_file = "`+sf+`"`, 1)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := kioskd(t, wires[0], "sig", "verify", "-config", cfg); code != 0 {
		t.Errorf("secret from config: exit %d %s %s", code, out, errs)
	}
	code, _, errs := kioskd(t, wires[0], "sig", "verify")
	if code != 0 || !strings.Contains(errs, "public development key") {
		t.Errorf("default secret: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := kioskd(t, wires[0], "sig", "verify", "-secret", "a", "-secret-file", sf); code != 2 {
		t.Errorf("two secret sources: exit %d, want 2", code)
	}
	if code, _, _ := kioskd(t, "", "sig", "verify", "-secret", "a"); code != 1 {
		t.Errorf("empty input: exit %d, want 1", code)
	}
}

func TestSigSignThenVerify(t *testing.T) {
	payloads := `{"type":"transaction_result","status":"success","amount":2.0,"txn_id":"TXN1","nonce":"old","timestamp":"1"}` + "\n" +
		`{"type": "ack", "txn_id": "TXN1", "note": "caf\u00e9 </>"}` + "\n"
	code, signed, errs := kioskd(t, payloads, "sig", "sign", "-secret", "k")
	if code != 0 || strings.Count(signed, "\n") != 2 {
		t.Fatalf("sign: exit %d\n%s%s", code, signed, errs)
	}
	if !strings.Contains(signed, `"amount":2.0`) || !strings.Contains(signed, `"note":"caf\u00e9 </>"`) {
		t.Errorf("signed payload not in canonical form: %s", signed)
	}
	if code, out, _ := kioskd(t, signed, "sig", "verify", "-secret", "k"); code != 0 || strings.Count(out, "ok ") != 2 {
		t.Errorf("verify of signed output: exit %d\n%s", code, out)
	}
	code, fresh, _ := kioskd(t, payloads, "sig", "sign", "-fresh", "-secret", "k")
	if code != 0 || strings.Contains(fresh, `"nonce":"old"`) || strings.Contains(fresh, `"timestamp":"1"`) || !strings.Contains(fresh, `"amount":2.0`) {
		t.Errorf("-fresh: exit %d\n%s", code, fresh)
	}
	if code, _, errs := kioskd(t, "[1]\n", "sig", "sign", "-secret", "k"); code != 1 || !strings.Contains(errs, "not a JSON object") {
		t.Errorf("array payload: exit %d %s", code, errs)
	}
}

func TestConfigDefault(t *testing.T) {
	code, out, _ := kioskd(t, "", "config", "default")
	if code != 0 || out != string(config.Default()) {
		t.Errorf("config default: exit %d", code)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", string(config.Default()))
	code, out, _ := kioskd(t, "", "config", "check", good)
	if code != 0 || !strings.Contains(out, "public development key") {
		t.Errorf("check default: exit %d %q", code, out)
	}
	bad := map[string]string{
		"unknown key":   strings.Replace(string(config.Default()), "kind = ", "knd = ", 1),
		"both secrets":  strings.Replace(string(config.Default()), `secret_file = ""`, `secret_file = "/x"`, 1),
		"bad board":     strings.Replace(string(config.Default()), `kind = "sim"`, `kind = "pi"`, 1),
		"bad window":    strings.Replace(string(config.Default()), `"60s"`, `"60"`, 1),
		"tiny window":   strings.Replace(string(config.Default()), `"60s"`, `"1ms"`, 1),
		"bad listen":    strings.Replace(string(config.Default()), `"0.0.0.0:8080"`, `"8080"`, 1),
		"empty kiosk":   strings.Replace(string(config.Default()), `kiosk_id = "KIOSK001"`, `kiosk_id = ""`, 1),
		"not toml":      "kiosk_id = ",
		"bad timeout":   "[payment.timeouts.card]\nresult = \"2h\"\n",
		"bad mode":      "[payment.timeouts.cash]\nresult = \"2m\"\n",
		"bad allow":     "[pos]\nallow = [\"pos-terminal\"]\n",
		"bad pulse":     "[relay]\npulse = \"1m\"\n",
		"missing file":  "",
		"bad log level": strings.Replace(string(config.Default()), `log_level = "info"`, `log_level = "loud"`, 1),
	}
	for name, body := range bad {
		p := filepath.Join(dir, "missing.toml")
		if body != "" {
			p = write(strings.ReplaceAll(name, " ", "_")+".toml", body)
		}
		if code, _, errs := kioskd(t, "", "config", "check", p); code != 1 || errs == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, errs)
		}
	}
}

func TestUsage(t *testing.T) {
	if code, _, errs := kioskd(t, ""); code != 2 || !strings.Contains(errs, "usage: kioskd") {
		t.Errorf("no args: exit %d", code)
	}
	if code, _, _ := kioskd(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, _ := kioskd(t, "", "sig", "verify", "-nope"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if code, out, _ := kioskd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "kioskd ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	for _, args := range [][]string{
		{"config"},
		{"config", "frobnicate"},
		{"config", "check"},
		{"config", "check", "a.toml", "b.toml"},
		{"config", "default", "extra"},
		{"status", "-control", "/nonexistent.sock", "extra"},
		{"version", "extra"},
		{"sig"},
		{"sig", "frobnicate"},
		{"review", "frobnicate"},
	} {
		if code, _, errs := kioskd(t, "", args...); code != exitUsage || !strings.Contains(errs, "usage: kioskd "+args[0]) {
			t.Errorf("%q: exit %d, want 2 and the usage\n%s", args, code, errs)
		}
	}
	// The framework's order rule, with a real usage line.
	_, _, errs := kioskd(t, "", "review", "settle", "TXN1", "-note", "refunded")
	if !strings.Contains(errs, "kioskd: review settle: flag -note after the argument TXN1") ||
		!strings.Contains(errs, "usage: kioskd review settle [-config FILE | -control PATH] -note TEXT TXN_ID\n") {
		t.Errorf("settle with the note last:\n%s", errs)
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"config", "-h"}, {"sig", "help"}} {
		if code, _, errs := kioskd(t, "", args...); code != exitOK || !strings.Contains(errs, "usage: kioskd") {
			t.Errorf("%q: exit %d, want 0 and the usage\n%s", args, code, errs)
		}
	}
}

// TestHelpSubcommand: `kioskd help PATH` is PATH's -h, and a group's
// help lists it, with the real table.
func TestHelpSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		code  int
		first string
		also  string
	}{
		{[]string{"help", "pay"}, exitOK, "usage: kioskd pay [-config FILE | -control PATH] -amount RM", "-key string"},
		{[]string{"help", "review", "settle"}, exitOK, "usage: kioskd review settle [-config FILE | -control PATH] -note TEXT TXN_ID", "-note string"},
		{[]string{"review", "help"}, exitOK, "usage: kioskd review [-config FILE | -control PATH] [-all] [-json]", "\n  kioskd review settle "},
		{[]string{"config", "help"}, exitOK, "usage: kioskd config COMMAND [flags] [arguments]", "\n  kioskd config check FILE\n"},
		{[]string{"help", "nosuch"}, exitUsage, `kioskd: unknown command "nosuch"`, "usage: kioskd COMMAND"},
	} {
		code, out, errs := kioskd(t, "", tc.args...)
		first, _, _ := strings.Cut(errs, "\n")
		if code != tc.code || out != "" || !strings.HasPrefix(first, tc.first) || !strings.Contains(errs, tc.also) {
			t.Errorf("%q: exit %d, want %d; stdout %q; stderr\n%s", tc.args, code, tc.code, out, errs)
		}
	}
}

// TestHelpFromTable: every command's -h prints the usage line made from
// the command table, and the top-level help lists every command by the
// path that runs it, nested ones too.
func TestHelpFromTable(t *testing.T) {
	_, _, top := kioskd(t, "", "-h")
	var walk func(path string, cs []cli.Command)
	walk = func(path string, cs []cli.Command) {
		for _, c := range cs {
			p := strings.TrimSpace(path + " " + c.Name)
			walk(p, c.Subs)
			if c.Run == nil {
				continue
			}
			if !strings.Contains(top, "\n  "+p+" ") {
				t.Errorf("top-level help lacks %q:\n%s", p, top)
			}
			code, _, errs := kioskd(t, "", append(strings.Fields(p), "-h")...)
			first, _, _ := strings.Cut(errs, "\n")
			if want := "usage: " + cli.UsageLine("kioskd", p, c.Usage); code != exitOK || first != want {
				t.Errorf("%s -h: exit %d, first line\n%s\nwant\n%s", p, code, first, want)
			}
		}
	}
	walk("", commands())
	// A command with subcommands shows their usage lines in its own -h.
	_, _, errs := kioskd(t, "", "review", "-h")
	if !strings.Contains(errs, "\n  kioskd review settle [-config FILE | -control PATH] -note TEXT TXN_ID\n") {
		t.Errorf("review -h:\n%s", errs)
	}
}
