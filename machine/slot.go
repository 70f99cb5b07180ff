package machine

import (
	"bytes"
	"os"
)

// maxCmdline bounds what is read of the kernel command line: the kernel
// caps it at a few KiB on every architecture kioskd runs on.
const maxCmdline = 64 << 10

// ParseSlot returns the RAUC slot named on a kernel command line
// (rauc.slot=NAME, RAUC's convention, set by the bootloader), "" when
// there is none. The last one wins, as the kernel's own parameters do. A
// name is kept only if it is short and printable: it ends up in the
// restart record, the status and the fleet's messages.
func ParseSlot(cmdline []byte) string {
	if len(cmdline) > maxCmdline {
		cmdline = cmdline[:maxCmdline]
	}
	slot := ""
	for _, f := range bytes.Fields(cmdline) {
		v, ok := bytes.CutPrefix(f, []byte("rauc.slot="))
		if !ok {
			continue
		}
		slot = ""
		if len(v) > 0 && len(v) <= 64 && printable(v) {
			slot = string(v)
		}
	}
	return slot
}

func printable(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// BootedSlot reads the booted slot from the kernel command line at path
// ([update] cmdline, /proc/cmdline): "" when the file is missing (not
// Linux, or a test) or names no slot, as on a board that does not boot
// through RAUC.
func BootedSlot(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, maxCmdline)
	n, _ := f.Read(b)
	return ParseSlot(b[:n])
}
