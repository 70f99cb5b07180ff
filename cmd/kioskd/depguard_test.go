package main_test

// The dependency guard: kioskd as shipped (linux/arm GOARM=7 and
// linux/arm64, CGO_ENABLED=0, the `make cross` flags) links no cgo, none of
// the forbidden packages, and only modules someone has agreed to; it is a
// static ELF and -X really stamps the version. Adding a module to the
// firmware means adding it to depguardModules, on purpose; linking one of
// our fakes or simulators means adding it to depguardOwnFakes.

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const depguardMainModule = "github.com/kioskd/kioskd"

// Modules the production binary may link, besides our own.
var depguardModules = map[string]bool{
	"github.com/BurntSushi/toml":    true,
	"github.com/google/uuid":        true,
	"go.etcd.io/bbolt":              true,
	"github.com/go-jose/go-jose/v4": true,
	"github.com/tarm/serial":        true,
	"golang.org/x/sys":              true,
	"periph.io/x/conn/v3":           true,
	"periph.io/x/host/v3":           true,
	"rsc.io/qr":                     true,
	// The fleet shipper's MQTT v5 client; autopaho imports its websocket
	// transport, so gorilla/websocket and x/net come with it even though
	// kioskd dials plain TCP or TLS only.
	"github.com/eclipse/paho.golang": true,
	"github.com/gorilla/websocket":   true,
	"golang.org/x/net":               true,
	// Comes with periph.io/x/conn/v3/gpio/gpiotest (a fake clock), whose
	// pins board/sim uses for the simulated board.
	"github.com/jonboulle/clockwork": true,
}

// Packages that must not be in the production binary, with the reason.
var depguardForbidden = map[string]string{
	"net/http/pprof":    "profiling endpoints on the default mux",
	"expvar":            "publishes /debug/vars on the default mux",
	"runtime/cgo":       "cgo: the firmware is static, CGO_ENABLED=0",
	"plugin":            "loads code at run time (and needs cgo)",
	"net/http/httptest": "test helper; registers -httptest.serve",
	"testing":           "test code linked into the firmware",
	depguardMainModule + "/protocol/kpos/kpostest": "the fake Finexus host and the public test keys",
	depguardMainModule + "/fleet/fleettest":        "runs a test broker (os/exec of mosquitto)",
	depguardMainModule + "/control/controltest":    "the fake daemon for tests of control API clients",
}

// Our own packages that are fakes or simulators by name (…test, …sim) and
// are linked on purpose, with the reason. Any other such package of ours
// in the binary is an error: fakes live beside what they fake so that the
// firmware can leave them out.
var depguardOwnFakes = map[string]string{
	// `kioskd possim` is a firmware subcommand: the POS simulator, played
	// from a kiosk (or a laptop) against this or another kiosk.
	depguardMainModule + "/protocol/mobypay/possim": "kioskd possim",
	// The simulated board is a board kind of the firmware: the embedded
	// default config runs on it, so kioskd can be tried without hardware.
	depguardMainModule + "/board/sim": "board kind sim, the default config's board",
	// board/sim's printer model decodes what the simulated printer is
	// sent into data_dir/sim/receipts.txt.
	depguardMainModule + "/device/printer/printertest": "the sim board's printer, linked by board/sim",
}

var depguardTargets = []struct {
	name    string
	env     []string
	machine elf.Machine
	class   elf.Class
}{
	{"armv7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, elf.EM_ARM, elf.ELFCLASS32},
	{"arm64", []string{"GOOS=linux", "GOARCH=arm64"}, elf.EM_AARCH64, elf.ELFCLASS64},
}

func TestDependencyGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds kioskd twice; skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	for _, tg := range depguardTargets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			env := append(os.Environ(), "CGO_ENABLED=0")
			env = append(env, tg.env...)

			// Package level: everything `go build` would link.
			out := depguardRun(t, env, goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".")
			deps := strings.Fields(out)
			// Both ways: a fake listed but no longer linked is a reason
			// nobody checks any more, and would let it back in unasked.
			for p := range depguardOwnFakes {
				if !slices.Contains(deps, p) {
					t.Errorf("depguardOwnFakes lists %s, which kioskd no longer links: remove it", p)
				}
			}
			for _, p := range deps {
				if why, bad := depguardForbidden[p]; bad {
					t.Errorf("kioskd links %s: %s", p, why)
					continue
				}
				if depguardIsOwnFake(p) && depguardOwnFakes[p] == "" {
					t.Errorf("kioskd links %s, a fake or simulator by its name: keep it out of the firmware, or list it in depguardOwnFakes with the reason", p)
				}
			}

			// The binary, built as `make cross` builds it.
			const version, commit = "depguard-version-7f3a", "depguard-commit-7f3a"
			bin := filepath.Join(t.TempDir(), "kioskd-"+tg.name)
			depguardRun(t, env, goBin, "build", "-trimpath",
				"-ldflags", "-s -w -X main.version="+version+" -X main.commit="+commit,
				"-o", bin, ".")

			// Module level, from the build information in the binary.
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatalf("build info: %v", err)
			}
			if bi.Main.Path != depguardMainModule {
				t.Errorf("main module %q, want %q", bi.Main.Path, depguardMainModule)
			}
			for _, m := range bi.Deps {
				if !depguardModules[m.Path] {
					t.Errorf("kioskd links module %s %s, which is not in the allow-list (depguardModules)", m.Path, m.Version)
				}
				if m.Replace != nil {
					t.Errorf("module %s is replaced by %s %s in the firmware build", m.Path, m.Replace.Path, m.Replace.Version)
				}
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
				if got := settings[k]; got != want {
					t.Errorf("build setting %s=%q, want %q", k, got, want)
				}
			}
			for _, kv := range tg.env {
				k, want, _ := strings.Cut(kv, "=")
				if got := settings[k]; got != want {
					t.Errorf("build setting %s=%q, want %q", k, got, want)
				}
			}

			// -X names a variable that must exist: the linker ignores a
			// misspelled or renamed one without a word.
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{version, commit} {
				if !bytes.Contains(data, []byte(s)) {
					t.Errorf("-X did not stamp %q: are main.version and main.commit still string variables?", s)
				}
			}

			// Static: no dynamic loader, no dynamic section.
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != tg.machine || f.Class != tg.class {
				t.Errorf("ELF %v %v, want %v %v", f.Class, f.Machine, tg.class, tg.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("not static: program header %v", p.Type)
				}
			}
			for _, name := range []string{".interp", ".dynamic"} {
				if f.Section(name) != nil {
					t.Errorf("not static: section %s", name)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("needs shared libraries %v", libs)
			}
			if slices.ContainsFunc(f.Sections, func(s *elf.Section) bool { return s.Name == ".symtab" }) {
				t.Errorf("not stripped: .symtab present despite -s")
			}
		})
	}
}

func TestDepguardIsOwnFake(t *testing.T) {
	for p, want := range map[string]bool{
		depguardMainModule + "/protocol/kpos/kpostest":     true,
		depguardMainModule + "/protocol/mobypay/possim":    true,
		depguardMainModule + "/board/sim":                  true,
		depguardMainModule + "/protocol/kpos":              false,
		depguardMainModule + "/cmd/kioskd":                 false,
		"periph.io/x/conn/v3/gpio/gpiotest":                false, // not ours: judged by module
		depguardMainModule + "test/x":                      false,
		depguardMainModule + "/device/printer/printertest": true,
	} {
		if got := depguardIsOwnFake(p); got != want {
			t.Errorf("depguardIsOwnFake(%s) = %v, want %v", p, got, want)
		}
	}
}

// depguardIsOwnFake says whether p is one of our packages named as a fake
// or a simulator.
func depguardIsOwnFake(p string) bool {
	rest, ours := strings.CutPrefix(p, depguardMainModule+"/")
	if !ours {
		return false
	}
	name := rest[strings.LastIndex(rest, "/")+1:]
	return strings.HasSuffix(name, "test") || strings.HasSuffix(name, "sim")
}

func depguardRun(t *testing.T, env []string, goBin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(goBin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}
