#!/bin/sh
# mkroot.sh ARCH ROOT MODULE...: the start of a virtual board's root tree
# in ROOT (made if missing): the directories, Debian's busybox-static for
# ARCH and the kernel modules named, each with what it needs, from
# fetch.sh's cache, with modules.dep for the guest's busybox modprobe.
# mkinitramfs.sh (the board's initramfs) and mkslot.sh (the update
# tests' root slots and their initramfs) start from it.
set -eu

arch=${1:?usage: mkroot.sh ARCH ROOT MODULE...}
root=${2:?usage: mkroot.sh ARCH ROOT MODULE...}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
cache=$(sh "$here/fetch.sh" "$arch" | tail -n 1)
# shellcheck disable=SC2012 # one directory, named for the kernel release (no blanks)
kver=$(ls "$cache/kernel/lib/modules" | head -n 1)

mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc/init.d" "$root/etc/kioskd" \
	"$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/data" "$root/root" "$root/lib/modules/$kver"
cp "$cache/busybox/bin/busybox" "$root/bin/busybox"

# Each module with what it needs, in load order (modprobe's own answer).
for m in "$@"; do
	if ! modprobe -d "$cache/kernel" -S "$kver" --show-depends "$m"; then
		echo "mkroot.sh: no module $m in $cache/kernel" >&2
		exit 1
	fi
done >"$root/.mods"
awk '$1 == "insmod" { print $2 }' "$root/.mods" | while read -r ko; do
	rel=${ko#"$cache/kernel/lib/modules/$kver/"}
	mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
	cp "$ko" "$root/lib/modules/$kver/$rel"
done
rm "$root/.mods"
cp "$cache/kernel/lib/modules/$kver/modules.builtin" "$cache/kernel/lib/modules/$kver/modules.order" \
	"$cache/kernel/lib/modules/$kver/modules.builtin.modinfo" "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"
