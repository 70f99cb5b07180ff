package gpiocdev

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
)

// The kernel's sizes (linux/gpio.h), which the ioctl numbers encode: a
// wrong one is ENOTTY on every board. make test-arm runs this for armv7,
// where Go aligns uint64 to 4 bytes.
func TestLayoutMatchesTheKernel(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"gpio_v2_line_attribute", unsafe.Sizeof(lineAttribute{}), 16},
		{"gpio_v2_line_config_attribute", unsafe.Sizeof(lineConfigAttribute{}), 24},
		{"gpio_v2_line_config", unsafe.Sizeof(lineConfig{}), 272},
		{"gpio_v2_line_request", unsafe.Sizeof(lineRequest{}), 592},
		{"gpio_v2_line_values", unsafe.Sizeof(lineValues{}), 16},
		{"gpio_v2_line_request.config", unsafe.Offsetof(lineRequest{}.config), 288},
		{"gpio_v2_line_request.fd", unsafe.Offsetof(lineRequest{}.fd), 588},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	// GPIO_V2_GET_LINE_IOCTL and GPIO_V2_LINE_SET_VALUES_IOCTL as the
	// kernel headers define them.
	if getLineIoctl != 0xC250B407 {
		t.Errorf("GPIO_V2_GET_LINE_IOCTL %#x, want 0xc250b407", getLineIoctl)
	}
	if setValuesIoctl != 0xC010B40F {
		t.Errorf("GPIO_V2_LINE_SET_VALUES_IOCTL %#x, want 0xc010b40f", setValuesIoctl)
	}
}

// A path that is not a GPIO chip is refused with the path and line named;
// the real request is exercised on the virtual board (scripts/vm).
func TestRequestOutputRefusesNonChip(t *testing.T) {
	if _, err := RequestOutput(filepath.Join(t.TempDir(), "nochip"), 3, "GPIO17", gpio.High, "t"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing chip: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	_, err := RequestOutput(f, 3, "GPIO17", gpio.High, "t")
	if err == nil || !strings.Contains(err.Error(), "line 3 (GPIO17) as output") {
		t.Fatalf("a regular file as chip: %v", err)
	}
	if _, err := RequestOutput(f, -1, "GPIO17", gpio.High, "t"); err == nil {
		t.Error("negative offset accepted")
	}
}
