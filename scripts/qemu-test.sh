#!/bin/sh
# Runs a Linux ARM binary (armv7 or arm64) on this machine under Debian's
# qemu-user, choosing the emulator from the ELF header. It is the
# `go test -exec` program of `make test-arm`, and also runs the `make cross`
# binaries:
#
#   scripts/qemu-test.sh dist/kioskd-linux-armv7 version
#
# The emulated CPU is that of the target board, so the code paths the Go
# runtime picks from the CPU features are the ones the Pi takes:
#   armv7  cortex-a7   ARMv7-A with VFPv4 and NEON (what the Pi 3 offers in 32-bit mode)
#   arm64  cortex-a72  Pi 4: ARMv8.0, no LSE atomics, so sync/atomic runs its LL/SC loops
# QEMU_CPU in the environment picks another one. No -L sysroot is needed:
# every kioskd binary, tests included, is static (CGO_ENABLED=0).
#
# A test binary under emulation can still exec the host's own programs
# (python3, node): qemu-user hands execve to the host kernel, which runs them
# natively. What does not work without binfmt_misc is a test that re-executes
# itself (os.Args[0]), so such tests stay out of `make test-arm`.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 ARM-BINARY [ARGS...]" >&2
	exit 2
fi
bin=$1
if [ ! -f "$bin" ]; then
	echo "$0: $bin: no such file" >&2
	exit 2
fi

# ELF magic, then e_machine (bytes 18-19, little-endian): 40 is EM_ARM, 183 EM_AARCH64.
magic=$(od -An -N4 -tx1 "$bin" | tr -d ' \n')
machine=$(od -An -j18 -N2 -tu1 "$bin" | awk '{ print $1 + 256 * $2 }')
if [ "$magic" != 7f454c46 ]; then
	echo "$0: $bin is not an ELF binary" >&2
	exit 2
fi
case $machine in
40)
	qemu='qemu-arm'
	cpu=${QEMU_CPU:-cortex-a7}
	;;
183)
	qemu='qemu-aarch64'
	cpu=${QEMU_CPU:-cortex-a72}
	;;
*)
	echo "$0: $bin is for ELF machine $machine, neither arm (40) nor arm64 (183)" >&2
	exit 2
	;;
esac

if ! command -v "$qemu" >/dev/null 2>&1; then
	echo "$0: $qemu not found; install Debian's qemu-user (apt-get install qemu-user)" >&2
	exit 127
fi

# qemu reads QEMU_CPU itself too; -cpu is explicit.
exec "$qemu" -cpu "$cpu" "$@"
