#!/bin/sh
# Checks that each ELF file given is statically linked: no PT_INTERP (no
# dynamic loader) and no PT_DYNAMIC program header. Prints one line per file
# and exits non-zero if any is not static. Needs only od and awk, so it runs
# where `file` and readelf are not installed; `make cross` calls it.
#
#   scripts/elf-static.sh dist/kioskd-linux-armv7 dist/kioskd-linux-arm64
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 ELF-FILE..." >&2
	exit 2
fi

rc=0
for f in "$@"; do
	if [ ! -f "$f" ]; then
		echo "$f: no such file" >&2
		rc=1
		continue
	fi
	# The program headers of a Go binary follow the ELF header; 64 KiB is
	# far more than they take. awk reads the bytes as decimal numbers.
	if ! od -An -v -tu1 -N65536 "$f" | awk -v name="$f" '
	{ for (i = 1; i <= NF; i++) b[n++] = $i }
	function u(off, len,   v, k) {   # little-endian unsigned integer
		v = 0
		for (k = len - 1; k >= 0; k--) v = v * 256 + b[off + k]
		return v
	}
	END {
		if (n < 52 || b[0] != 127 || b[1] != 69 || b[2] != 76 || b[3] != 70) {
			print name ": not an ELF file"; exit 1
		}
		if (b[5] != 1) { print name ": not little-endian ELF"; exit 1 }
		if (b[4] == 1) {          # ELF32
			class = "ELF32"; phoff = u(28, 4); phentsize = u(42, 2); phnum = u(44, 2)
		} else if (b[4] == 2) {   # ELF64
			class = "ELF64"; phoff = u(32, 8); phentsize = u(54, 2); phnum = u(56, 2)
		} else { print name ": unknown ELF class " b[4]; exit 1 }
		m = u(18, 2)
		arch = (m == 40) ? "arm" : (m == 183) ? "arm64" : (m == 62) ? "amd64" : "machine " m
		if (phoff + phnum * phentsize > n) { print name ": program headers beyond the first " n " bytes"; exit 1 }
		bad = ""
		for (i = 0; i < phnum; i++) {
			t = u(phoff + i * phentsize, 4)
			if (t == 3) bad = bad " PT_INTERP"
			if (t == 2) bad = bad " PT_DYNAMIC"
		}
		if (bad != "") { print name ": " class " " arch ", NOT static:" bad; exit 1 }
		print name ": " class " " arch ", static (" phnum " program headers, no PT_INTERP or PT_DYNAMIC)"
	}'; then
		rc=1
	fi
done
exit $rc
