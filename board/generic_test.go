package board

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestGenericProfile(t *testing.T) {
	p, err := Lookup("generic")
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{Kind: "generic", RelayActiveLow: true, PrinterBaud: 9600, Strict: true}
	if p != want {
		t.Errorf("generic profile %+v, want %+v", p, want)
	}
}

func TestParsePin(t *testing.T) {
	ok := []struct {
		pin, chip string
		offset    int
	}{
		{"GPIO17", "", -1}, {"PA7", "", -1}, {"USER LED", "", -1},
		{"gpiochip0:17", "gpiochip0", 17}, {"/dev/gpiochip1:0", "/dev/gpiochip1", 0},
		{"9030000.pl061:7", "9030000.pl061", 7}, {"odd:label:3", "odd:label", 3}, {"gpiochip0:007", "gpiochip0", 7},
	}
	for _, c := range ok {
		chip, off, err := ParsePin(c.pin)
		if err != nil || chip != c.chip || off != c.offset {
			t.Errorf("ParsePin(%q) = %q, %d, %v; want %q, %d", c.pin, chip, off, err, c.chip, c.offset)
		}
	}
	bad := map[string]string{
		"":                                "empty pin",
		" GPIO17":                         "leading or trailing space",
		"GPIO17\t":                        "leading or trailing space",
		":17":                             `no GPIO chip before ":"`,
		"gpiochip0:":                      `line offset "" after ":" is not a decimal number`,
		"gpiochip0:x":                     `line offset "x" after ":"`,
		"gpiochip0:-1":                    `line offset "-1" after ":"`,
		"gpiochip0:+1":                    `line offset "+1" after ":"`,
		"gpiochip0:1.5":                   `line offset "1.5" after ":"`,
		"gpiochip0:999999999999999999999": `line offset "999999999999999999999"`,
	}
	for pin, want := range bad {
		if _, _, err := ParsePin(pin); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePin(%q): %v, want %q", pin, err, want)
		}
	}
}

// twoChips is a QEMU-like virt board: the pl061 with named lines, and an
// expander with unnamed ones, one of its lines sharing a name.
func twoChips() []chipInfo {
	return []chipInfo{
		{name: "gpiochip0", path: "/dev/gpiochip0", label: "9030000.pl061",
			lines: []string{"GPIO0", "GPIO1", "", "GPIO3", "RELAY", "LED_G", "LED_R", "DUP"}},
		{name: "gpiochip1", path: "/dev/gpiochip1", label: "gpiochip1", lines: []string{"", "", "DUP", ""}},
	}
}

func TestResolveLine(t *testing.T) {
	chips := twoChips()
	ok := map[string]lineRef{
		"RELAY":            {0, 4},
		"GPIO0":            {0, 0},
		"gpiochip0:2":      {0, 2},
		"/dev/gpiochip0:7": {0, 7},
		"9030000.pl061:5":  {0, 5},
		"gpiochip1:3":      {1, 3},
		"/dev/gpiochip1:0": {1, 0},
		"gpiochip1:2":      {1, 2}, // the duplicate name, disambiguated
		"gpiochip0:7":      {0, 7},
	}
	for pin, want := range ok {
		got, err := resolveLine(chips, "relay", pin)
		if err != nil || got != want {
			t.Errorf("resolveLine(%q) = %v, %v; want %v", pin, got, err, want)
		}
	}
	bad := map[string][]string{
		"GPIO17":       {`relay pin "GPIO17" does not exist (GPIO chips: gpiochip0 [9030000.pl061] 8 lines: GPIO0, GPIO1, GPIO3, RELAY, LED_G, LED_R, DUP; gpiochip1 4 lines: DUP)`},
		"relay":        {`relay pin "relay" does not exist`}, // names are exact
		"":             {`relay pin "": empty pin`},
		"DUP":          {`relay pin "DUP" is ambiguous: lines gpiochip0:7 [9030000.pl061], gpiochip1:2 all have that name; name one as CHIP:OFFSET`},
		"gpiochip0:8":  {`relay pin "gpiochip0:8" does not exist: gpiochip0 [9030000.pl061] has 8 lines (offsets 0 to 7)`},
		"gpiochip1:99": {`relay pin "gpiochip1:99" does not exist: gpiochip1 has 4 lines (offsets 0 to 3)`},
		"gpiochip2:0":  {`relay pin "gpiochip2:0" does not exist: no GPIO chip has the name, path or label "gpiochip2" (GPIO chips: gpiochip0 [9030000.pl061] 8 lines: `},
		"gpiochip0:x":  {`relay pin "gpiochip0:x": line offset "x"`},
	}
	for pin, want := range bad {
		_, err := resolveLine(chips, "relay", pin)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("resolveLine(%q): %v\nwant %q", pin, err, w)
			}
		}
	}
}

func TestResolveLineNoChips(t *testing.T) {
	for _, pin := range []string{"GPIO17", "gpiochip0:17"} {
		_, err := resolveLine(nil, "green LED", pin)
		want := fmt.Sprintf(`green LED pin %q does not exist (no GPIO character devices (/dev/gpiochip*): is the kernel built with CONFIG_GPIO_CDEV?)`, pin)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", pin, err, want)
		}
	}
}

// One name twice on the same chip is as ambiguous as on two chips.
func TestResolveLineDuplicateOnOneChip(t *testing.T) {
	chips := []chipInfo{{name: "gpiochip0", path: "/dev/gpiochip0", label: "soc", lines: []string{"NC", "A", "NC"}}}
	_, err := resolveLine(chips, "relay", "NC")
	if err == nil || !strings.Contains(err.Error(), "lines gpiochip0:0 [soc], gpiochip0:2 [soc] all have that name") {
		t.Errorf("duplicate on one chip: %v", err)
	}
	if ref, err := resolveLine(chips, "relay", "A"); err != nil || ref != (lineRef{0, 1}) {
		t.Errorf("A: %v %v", ref, err)
	}
}

// Two identical expanders share a label: by label it is ambiguous, by
// name it is not, and a name wins over another chip's equal label.
func TestResolveLineChipByLabel(t *testing.T) {
	chips := []chipInfo{
		{name: "gpiochip0", path: "/dev/gpiochip0", label: "pinctrl", lines: make([]string, 4)},
		{name: "gpiochip1", path: "/dev/gpiochip1", label: "mcp23017", lines: make([]string, 16)},
		{name: "gpiochip2", path: "/dev/gpiochip2", label: "mcp23017", lines: make([]string, 16)},
		{name: "gpiochip3", path: "/dev/gpiochip3", label: "gpiochip0", lines: make([]string, 2)},
	}
	if _, err := resolveLine(chips, "relay", "mcp23017:3"); err == nil ||
		!strings.Contains(err.Error(), `GPIO chip "mcp23017" is ambiguous: gpiochip1, gpiochip2 all match it; use the chip's name`) {
		t.Errorf("shared label: %v", err)
	}
	if ref, err := resolveLine(chips, "relay", "gpiochip2:15"); err != nil || ref != (lineRef{2, 15}) {
		t.Errorf("by name: %v %v", ref, err)
	}
	if ref, err := resolveLine(chips, "relay", "pinctrl:3"); err != nil || ref != (lineRef{0, 3}) {
		t.Errorf("by label: %v %v", ref, err)
	}
	if ref, err := resolveLine(chips, "relay", "gpiochip0:1"); err != nil || ref != (lineRef{0, 1}) {
		t.Errorf("name over label: %v %v", ref, err)
	}
	_, err := resolveLine(chips, "relay", "gpiochip3:4")
	if err == nil || !strings.Contains(err.Error(), "gpiochip3 [gpiochip0] has 2 lines (offsets 0 to 1)") {
		t.Errorf("out of range: %v", err)
	}
	_, err = resolveLine(chips, "relay", "gpiochip9:0")
	if err == nil || !strings.Contains(err.Error(), "gpiochip1 [mcp23017] 16 lines, none named; gpiochip2 [mcp23017] 16 lines, none named") {
		t.Errorf("unknown chip: %v", err)
	}
}

// A SoC controller with hundreds of named lines must not flood the
// console: the listing stops after maxListedLines names per chip.
func TestDescribeChipsIsBounded(t *testing.T) {
	lines := make([]string, 200)
	for i := range lines {
		lines[i] = fmt.Sprintf("P%d", i)
	}
	chips := []chipInfo{{name: "gpiochip0", path: "/dev/gpiochip0", label: "1c20800.pinctrl", lines: lines},
		{name: "gpiochip1", path: "/dev/gpiochip1", label: "1f02c00.pinctrl", lines: make([]string, 32)}}
	_, err := resolveLine(chips, "relay", "PA7")
	if err == nil {
		t.Fatal("PA7 resolved")
	}
	msg := err.Error()
	want := "gpiochip0 [1c20800.pinctrl] 200 lines: P0, P1, "
	if !strings.Contains(msg, want) || !strings.Contains(msg, ", P31, …; gpiochip1 [1f02c00.pinctrl] 32 lines, none named)") ||
		strings.Contains(msg, "P32") {
		t.Errorf("listing not bounded as wanted:\n%s", msg)
	}
}

func TestResolveLinesRefusesOneLineTwice(t *testing.T) {
	chips := twoChips()
	refs, errs := resolveLines(chips, []PinSpec{{"relay", "RELAY"}, {"relay sense", ""}, {"green LED", "gpiochip0:4"},
		{"amber LED", "GPIO99"}, {"red LED", "LED_R"}})
	want := []lineRef{{0, 4}, {-1, -1}, {-1, -1}, {-1, -1}, {0, 6}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("refs %v, want %v", refs, want)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), `green LED pin "gpiochip0:4" is the same line as relay pin "RELAY" (gpiochip0:4)`) ||
		!strings.Contains(errs[1].Error(), `amber LED pin "GPIO99" does not exist`) {
		t.Errorf("errors %v", errs)
	}
}

func TestLineName(t *testing.T) {
	for in, want := range map[string]string{"GPIO17": "GPIO17", "gpiochip1-2712_WAKE": "2712_WAKE",
		"gpiochip10-X": "gpiochip10-X", "_": "", "-": "", "gpiochip1-_": "", "": ""} {
		if got := lineName("gpiochip1", in); got != want {
			t.Errorf("lineName(gpiochip1, %q) = %q, want %q", in, got, want)
		}
	}
}

// On a machine without GPIO character devices (this one, CI), a generic
// board is refused with the chardev reason, not the Pi's gpioreg one:
// the generic path must not fall back to names sysfs-gpio registered.
func TestGenericBoardWithoutChardevRefuses(t *testing.T) {
	if devs, _ := filepath.Glob("/dev/gpiochip*"); len(devs) > 0 || runtime.GOOS != "linux" {
		t.Skipf("GPIO character devices present (%v) or not Linux", devs)
	}
	p, _ := Lookup("generic")
	p.Relay, p.LEDGreen = "GPIO17", "gpiochip0:22"
	_, err := Open(p)
	if err == nil {
		t.Fatal("opened a generic board without GPIO chips")
	}
	for _, want := range []string{
		`board generic: relay pin "GPIO17" does not exist (no GPIO character devices (/dev/gpiochip*): is the kernel built with CONFIG_GPIO_CDEV?)`,
		`board generic: green LED pin "gpiochip0:22" does not exist (no GPIO character devices`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "GPIO driver") {
		t.Errorf("generic error speaks of gpioreg drivers:\n%v", err)
	}
	p.Relay = ""
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "board generic: no relay pin configured") {
		t.Errorf("no relay: %v", err)
	}
}
