package board

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"periph.io/x/host/v3/gpioioctl"
)

// ParsePin checks the syntax of a generic board's pin without touching
// the hardware: either a GPIO line name as the device tree's
// gpio-line-names gives it ("GPIO17", "PA7"), returned with chip "" and
// offset -1, or CHIP:OFFSET, where CHIP is a chip's name, path or label
// and OFFSET a decimal line offset on it. The last colon splits, since a
// chip label may itself hold one.
func ParsePin(pin string) (chip string, offset int, err error) {
	if pin == "" {
		return "", -1, errors.New("empty pin")
	}
	if strings.TrimSpace(pin) != pin {
		return "", -1, errors.New("leading or trailing space")
	}
	i := strings.LastIndexByte(pin, ':')
	if i < 0 {
		return "", -1, nil
	}
	chip, off := pin[:i], pin[i+1:]
	if chip == "" {
		return "", -1, errors.New(`no GPIO chip before ":" (want CHIP:OFFSET, e.g. "gpiochip0:17")`)
	}
	// Atoi alone would take "+3" and "-1".
	n, err := strconv.Atoi(off)
	if off == "" || strings.Trim(off, "0123456789") != "" || err != nil {
		return "", -1, fmt.Errorf(`line offset %q after ":" is not a decimal number 0 or more (want CHIP:OFFSET, e.g. "gpiochip0:17")`, off)
	}
	return chip, n, nil
}

// chipInfo is what pin resolution needs of a GPIO character device, so
// that it can be tested without one.
type chipInfo struct {
	name, path, label string
	lines             []string // line names by offset, "" for an unnamed line
}

// lineRef is a resolved line: an index into the chips and an offset on
// that chip.
type lineRef struct{ chip, offset int }

// resolveLines resolves every non-empty pin on chips; an empty pin gives
// lineRef{-1, -1}. Two roles on one line are refused even when spelt
// differently ("GPIO17" and "gpiochip0:17"): the config check compares
// only the spellings.
func resolveLines(chips []chipInfo, pins []PinSpec) ([]lineRef, []error) {
	refs := make([]lineRef, len(pins))
	var errs []error
	owner := map[lineRef]PinSpec{}
	for i, p := range pins {
		refs[i] = lineRef{-1, -1}
		if p.Pin == "" {
			continue
		}
		ref, err := resolveLine(chips, p.Role, p.Pin)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o, ok := owner[ref]; ok {
			errs = append(errs, fmt.Errorf("%s pin %q is the same line as %s pin %q (%s:%d)",
				p.Role, p.Pin, o.Role, o.Pin, chips[ref.chip].name, ref.offset))
			continue
		}
		owner[ref] = p
		refs[i] = ref
	}
	return refs, errs
}

// resolveLine finds one pin. A name must be unique across all chips: a
// board with two chips that both name a line "GPIO17" gives no way to
// tell which one the relay is wired to.
func resolveLine(chips []chipInfo, role, pin string) (lineRef, error) {
	chipName, offset, err := ParsePin(pin)
	if err != nil {
		return lineRef{}, fmt.Errorf("%s pin %q: %w", role, pin, err)
	}
	if len(chips) == 0 {
		return lineRef{}, fmt.Errorf("%s pin %q does not exist (no GPIO character devices (/dev/gpiochip*): is the kernel built with CONFIG_GPIO_CDEV?)", role, pin)
	}
	if chipName == "" {
		var found []lineRef
		for ci, c := range chips {
			for off, name := range c.lines {
				if name == pin {
					found = append(found, lineRef{ci, off})
				}
			}
		}
		switch len(found) {
		case 0:
			return lineRef{}, fmt.Errorf("%s pin %q does not exist (GPIO chips: %s)", role, pin, describeChips(chips))
		case 1:
			return found[0], nil
		}
		where := make([]string, len(found))
		for i, f := range found {
			where[i] = fmt.Sprintf("%s:%d%s", chips[f.chip].name, f.offset, chips[f.chip].labelSuffix())
		}
		return lineRef{}, fmt.Errorf("%s pin %q is ambiguous: lines %s all have that name; name one as CHIP:OFFSET",
			role, pin, strings.Join(where, ", "))
	}
	ci, err := findChip(chips, chipName)
	if err != nil {
		return lineRef{}, fmt.Errorf("%s pin %q does not exist: %w", role, pin, err)
	}
	if c := chips[ci]; offset >= len(c.lines) {
		return lineRef{}, fmt.Errorf("%s pin %q does not exist: %s%s has %d lines (offsets 0 to %d)",
			role, pin, c.name, c.labelSuffix(), len(c.lines), len(c.lines)-1)
	}
	return lineRef{ci, offset}, nil
}

// findChip matches a chip by name or path first, which the kernel keeps
// unique, and only then by label, which two identical expanders share.
func findChip(chips []chipInfo, want string) (int, error) {
	var byName, byLabel []int
	for i, c := range chips {
		switch want {
		case c.name, c.path:
			byName = append(byName, i)
		case c.label:
			byLabel = append(byLabel, i)
		}
	}
	if len(byName) == 1 {
		return byName[0], nil
	}
	if len(byName) == 0 && len(byLabel) == 1 {
		return byLabel[0], nil
	}
	if len(byName)+len(byLabel) == 0 {
		return 0, fmt.Errorf("no GPIO chip has the name, path or label %q (GPIO chips: %s)", want, describeChips(chips))
	}
	var names []string
	for _, i := range append(byName, byLabel...) {
		names = append(names, chips[i].name)
	}
	return 0, fmt.Errorf("GPIO chip %q is ambiguous: %s all match it; use the chip's name", want, strings.Join(names, ", "))
}

// maxListedLines bounds the line names an error lists per chip: a
// console line, not a dump of a 200-line SoC controller.
const maxListedLines = 32

// describeChips lists the chips with their labels, line counts and
// named lines, for an operator choosing what to put in [board].
func describeChips(chips []chipInfo) string {
	var b strings.Builder
	for i, c := range chips {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s%s %d lines", c.name, c.labelSuffix(), len(c.lines))
		var named []string
		for _, n := range c.lines {
			if n != "" {
				named = append(named, n)
			}
		}
		if len(named) == 0 {
			b.WriteString(", none named")
			continue
		}
		b.WriteString(": ")
		if len(named) > maxListedLines {
			named = append(named[:maxListedLines:maxListedLines], "…")
		}
		b.WriteString(strings.Join(named, ", "))
	}
	return b.String()
}

// labelSuffix is " [label]", or "" when the chip has no label of its own
// (periph then reports the name as the label).
func (c chipInfo) labelSuffix() string {
	if c.label == "" || c.label == c.name {
		return ""
	}
	return " [" + c.label + "]"
}

// lineName undoes periph's renaming: gpioioctl registers each line in
// gpioreg under its name, and when that name is taken (by another chip,
// or by a platform driver that loaded first) it renames the line itself
// to "gpiochipN-NAME". The operator wrote the device tree's name. Lines
// the kernel leaves unnamed read "", and placeholders "_" and "-" that
// device trees use for unwired lines are not names either.
func lineName(chipName, name string) string {
	name = strings.TrimPrefix(name, chipName+"-")
	if name == "_" || name == "-" {
		return ""
	}
	return name
}

// chardevChips describes periph's chardev chips. Only the lines periph
// holds objects for can be handed out, so an offset must be below both
// the chip's line count and that.
func chardevChips(chips []*gpioioctl.GPIOChip) []chipInfo {
	out := make([]chipInfo, len(chips))
	for i, c := range chips {
		lines := c.Lines()
		names := make([]string, min(c.LineCount(), len(lines)))
		for j := range names {
			names[j] = lineName(c.Name(), lines[j].Name())
		}
		out[i] = chipInfo{name: c.Name(), path: c.Path(), label: c.Label(), lines: names}
	}
	return out
}
