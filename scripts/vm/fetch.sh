#!/bin/sh
# fetch.sh ARCH: the virtual board's Debian packages for ARCH (arm64 or
# armv7), downloaded once into the cache and unpacked there:
#
#   $CACHE/ARCH/kernel/boot/vmlinuz-*      the kernel
#   $CACHE/ARCH/kernel/lib/modules/*/      its modules, with modules.dep
#   $CACHE/ARCH/busybox/bin/busybox        busybox-static for the guest
#
# CACHE is $KIOSKD_VM_CACHE, default /var/cache/kioskd-vm. The packages
# are foreign-architecture ones, fetched with `apt-get download` under a
# private APT_CONFIG whose lists live in the cache too: the host's dpkg
# never learns the architecture (no `dpkg --add-architecture`), and its
# own apt lists are not touched. A second run with the same package
# versions downloads nothing. Prints the cache directory of ARCH.
set -eu

arch=${1:?usage: fetch.sh arm64|armv7}
case $arch in
arm64) deb_arch=arm64 kernel=linux-image-arm64 ;;
# The armmp-lpae flavour: the virt machine's PCI host (the 16550 and the
# virtio devices) sits above 4 GiB, which the non-LPAE kernel cannot map.
armv7) deb_arch=armhf kernel=linux-image-armmp-lpae ;;
*)
	echo "fetch.sh: ARCH is arm64 or armv7, not $arch" >&2
	exit 2
	;;
esac

cache=${KIOSKD_VM_CACHE:-/var/cache/kioskd-vm}
dir=$cache/$arch
apt=$dir/apt
mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$dir/debs"
[ -f "$apt/state/status" ] || : >"$apt/state/status"

# The host's own sources (deb822 or one-line), read-only.
src=/etc/apt/sources.list.d/debian.sources
[ -f "$src" ] || src=/etc/apt/sources.list
cat >"$apt/apt.conf" <<CONF
APT::Architecture "$deb_arch";
APT::Architectures { "$deb_arch"; };
Dir::State "$apt/state";
Dir::State::status "$apt/state/status";
Dir::Cache "$apt/cache";
Dir::Etc::SourceList "$src";
Dir::Etc::SourceParts "$apt/parts";
Dir::Etc::Preferences "$apt/parts/none";
Dir::Etc::PreferencesParts "$apt/parts";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$apt/apt.conf"

# Lists older than a day are refreshed; a failed refresh with lists in
# hand goes on with them (the packages may still be in the cache).
if [ -z "$(find "$apt/state/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
	if ! apt-get -q update >"$dir/apt-update.log" 2>&1; then
		if [ -z "$(find "$apt/state/lists" -maxdepth 1 -name '*Packages*' | head -n 1)" ]; then
			cat "$dir/apt-update.log" >&2
			exit 1
		fi
		echo "fetch.sh: apt-get update failed; using the lists in $apt" >&2
	fi
fi

# The meta package names the versioned image (linux-image-6.1.0-NN-arm64).
image=$(apt-cache depends "$kernel" | awk '/Depends: linux-image-/ { print $2; exit }')
if [ -z "$image" ]; then
	echo "fetch.sh: $kernel ($deb_arch) names no kernel image" >&2
	exit 1
fi

get() { # package: the .deb's path in $dir/debs, downloaded if missing
	ver=$(apt-cache policy "$1" | awk '/Candidate:/ { print $2 }')
	# shellcheck disable=SC2010 # .deb names have no blanks: Debian package names and versions, the colon as %3a
	f=$(ls "$dir/debs/$1_"*"_$deb_arch.deb" 2>/dev/null | grep -F "_$(echo "$ver" | sed 's/:/%3a/')_" | head -n 1 || true)
	if [ -z "$f" ]; then
		rm -f "$dir/debs/$1_"*.deb
		(cd "$dir/debs" && apt-get -q download "$1" >/dev/null)
		# shellcheck disable=SC2012 # a .deb name has no blanks (above)
		f=$(ls "$dir/debs/$1_"*"_$deb_arch.deb" | head -n 1)
	fi
	echo "$f"
}

unpack() { # deb dir: unpacked once per .deb
	if [ "$(cat "$2/.from" 2>/dev/null)" != "$1" ]; then
		rm -rf "$2"
		mkdir -p "$2"
		dpkg-deb -x "$1" "$2"
		echo "$1" >"$2/.from"
	fi
}

kdeb=$(get "$image")
# An older kernel's package, left from before Debian moved on, goes.
for f in "$dir/debs"/linux-image-*.deb; do
	[ "$f" = "$kdeb" ] || rm -f "$f"
done
bdeb=$(get busybox-static)
unpack "$kdeb" "$dir/kernel"
unpack "$bdeb" "$dir/busybox"
# shellcheck disable=SC2012 # one directory, named for the kernel release (no blanks)
kver=$(ls "$dir/kernel/lib/modules" | head -n 1)
[ -f "$dir/kernel/lib/modules/$kver/modules.dep" ] || depmod -b "$dir/kernel" "$kver"
echo "$dir"
