#!/bin/sh
# fetch-ota.sh ARCH: what the virtual board's update tests (ota_test.go)
# add to a root slot, for ARCH (arm64 or armv7): Debian's rauc (and
# rauc-service, for its D-Bus policy), dbus-daemon and libubootenv-tool
# (fw_printenv, fw_setenv) with the libraries they load, downloaded once
# into fetch.sh's cache, through its private APT_CONFIG, and unpacked
# into one tree:
#
#   $CACHE/ARCH/ota/root/      usr/bin/rauc, usr/bin/dbus-daemon, ...
#
# The dependency closure is apt's (apt-cache depends --recurse, Depends
# only) less the packages a read-only root started by BusyBox init never
# runs: systemd (rauc's unit file is all it needs it for), the package
# tools and their maintainer-script helpers, PAM, device-mapper and
# cryptsetup (rauc sets up dm-verity with its own ioctls: verity bundles
# need neither; see ota_test.go). A library one
# of those pruned packages would have brought and a binary needs shows
# up as a loader error when the slot is built (mkslot.sh runs each binary
# under qemu-user). Prints the tree's directory.
set -eu

arch=${1:?usage: fetch-ota.sh arm64|armv7}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(sh "$here/fetch.sh" "$arch" | tail -n 1)
case $arch in
arm64) deb_arch=arm64 ;;
armv7) deb_arch=armhf ;;
esac
export APT_CONFIG="$dir/apt/apt.conf"

want="rauc rauc-service dbus-daemon dbus-system-bus-common libubootenv-tool"
prune=" adduser cdebconf debconf dpkg install-info passwd mount tar systemd libsystemd-shared dbus
 libelogind0 libdebian-installer4 libnewt0.52 libslang2 libtextwrap1 libpam-modules libpam-modules-bin
 libpam0g libpam-runtime libsemanage-common libsemanage2 libsepol2 readline-common libreadline8
 dmsetup libcryptsetup12 libdevmapper1.02.1 libargon2-1 libip4tc2 libkmod2 libseccomp2 libdb5.3
 libcrypt1 libtinfo6 libacl1 init-system-helpers usrmerge usr-is-merged perl perl-base
 perl-modules-5.36 libperl5.36 libgdbm6 libgdbm-compat4 libfile-find-rule-perl libnumber-compare-perl
 libtext-glob-perl "
# shellcheck disable=SC2086 # $want: package names, split on purpose
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances $want | grep -v '^[ <]' | sort -u)

debs=$dir/ota-debs
mkdir -p "$debs"
keep=
for p in $pkgs; do
	case $prune in *" $p "* | *" $p
"*) ;; *) keep="$keep $p" ;; esac
done
# Each package's candidate version, from one apt-cache call: "name version".
# shellcheck disable=SC2086 # $keep: package names, split on purpose
apt-cache policy $keep | awk '/^[^ ]/ { sub(/:.*/, ""); p = $0 } /Candidate:/ { print p, $2 }' >"$debs/.want"
list=
while read -r p ver; do
	ver=$(echo "$ver" | sed 's/:/%3a/')
	f=$debs/${p}_${ver}_$deb_arch.deb
	[ -f "$f" ] || f=$debs/${p}_${ver}_all.deb
	if [ ! -f "$f" ]; then
		rm -f "$debs/${p}_"*.deb
		(cd "$debs" && apt-get -q download "$p" >/dev/null)
		# shellcheck disable=SC2012 # a .deb name has no blanks
		f=$(ls "$debs/${p}_"*.deb | head -n 1)
	fi
	list="$list $f"
done <"$debs/.want"
# Packages pruned or dropped by Debian since the last run go.
for f in "$debs"/*.deb; do
	case "$list " in *" $f "*) ;; *) rm -f "$f" ;; esac
done

# Unpacked again only when the set of .debs changed.
root=$dir/ota/root
stamp=$(echo "$list" | tr ' ' '\n' | sort | md5sum | cut -d' ' -f1)
if [ "$(cat "$dir/ota/.from" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$dir/ota"
	mkdir -p "$root"
	for f in $list; do
		dpkg-deb -x "$f" "$root"
	done
	echo "$stamp" >"$dir/ota/.from"
fi
echo "$root"
