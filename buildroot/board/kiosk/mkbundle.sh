#!/bin/sh
# mkbundle.sh BINARIES_DIR: the signed RAUC update bundle of the kioskd
# image, BINARIES_DIR/<compatible>.raucb, from BINARIES_DIR/rootfs.ext4.
# post-image.sh runs it last; it can be run again on its own with
# TARGET_DIR set (Buildroot's output/target).
#
#   KIOSKD_RAUC_KEY        the signing key (PEM), outside the checkout
#   KIOSKD_RAUC_CERT       its certificate (PEM)
#   KIOSKD_RAUC_KEYRING    optional: the keyring the image checks bundles
#                          against; when set, the new bundle is checked
#                          against it too
#   KIOSKD_BUNDLE_VERSION  optional: the bundle's version (default: the
#                          build time, YYYYMMDDhhmmss UTC)
#
# Without KIOSKD_RAUC_KEY and KIOSKD_RAUC_CERT it makes no bundle and
# says so, and exits 0: the card image is still made, for development.
# With only one of them, or with files that are missing, it fails. The
# key is never copied: rauc reads it where it is.
#
# The compatible is the target's /etc/rauc/system.conf's (post-build.sh
# writes it), so a bundle only installs on the board it was built for.
# The bundle format is verity (system.conf refuses plain bundles).
set -eu

BINARIES_DIR=${1:?usage: mkbundle.sh BINARIES_DIR}
: "${TARGET_DIR:?TARGET_DIR is not set: run from Buildroot (post-image.sh)}"

die() {
	echo "mkbundle.sh: $*" >&2
	exit 1
}

key=${KIOSKD_RAUC_KEY:-}
cert=${KIOSKD_RAUC_CERT:-}
if [ -z "$key" ] && [ -z "$cert" ]; then
	echo "mkbundle.sh: skip: KIOSKD_RAUC_KEY and KIOSKD_RAUC_CERT are not set, so no update bundle is made (sdcard.img is; see buildroot/README.md, \"Update keys\")" >&2
	exit 0
fi
[ -n "$key" ] || die "KIOSKD_RAUC_CERT is set but KIOSKD_RAUC_KEY is not"
[ -n "$cert" ] || die "KIOSKD_RAUC_KEY is set but KIOSKD_RAUC_CERT is not"
[ -r "$key" ] || die "KIOSKD_RAUC_KEY: cannot read $key"
[ -r "$cert" ] || die "KIOSKD_RAUC_CERT: cannot read $cert"
command -v rauc >/dev/null 2>&1 || die "no rauc on the PATH (BR2_PACKAGE_HOST_RAUC)"

rootfs=$BINARIES_DIR/rootfs.ext4
[ -f "$rootfs" ] || die "no $rootfs (BR2_TARGET_ROOTFS_EXT2_4)"
sysconf=$TARGET_DIR/etc/rauc/system.conf
[ -f "$sysconf" ] || die "no $sysconf (post-build.sh writes it)"
compatible=$(sed -n 's/^compatible=//p' "$sysconf" | head -n 1)
[ -n "$compatible" ] || die "$sysconf has no compatible="

version=${KIOSKD_BUNDLE_VERSION:-}
if [ -z "$version" ]; then
	epoch=$(cat "$TARGET_DIR/etc/kioskd/build-time" 2>/dev/null || date -u +%s)
	version=$(date -u -d "@$epoch" +%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
fi
case $version in
'' | *[!A-Za-z0-9._+~-]*) die "bundle version '$version': letters, digits and ._+~- only" ;;
esac

work=$BINARIES_DIR/rauc-bundle.tmp
out=$BINARIES_DIR/$compatible.raucb
rm -rf "$work" "$out"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
ln "$rootfs" "$work/rootfs.ext4" 2>/dev/null || cp "$rootfs" "$work/rootfs.ext4"
cat >"$work/manifest.raucm" <<EOM
[update]
compatible=$compatible
version=$version
description=kioskd root filesystem (kernel and device trees in /boot)

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
EOM

rauc bundle --cert="$cert" --key="$key" "$work" "$out" ||
	die "rauc bundle failed (a certificate with extendedKeyUsage=codeSigning is refused by some rauc versions)"
if [ -n "${KIOSKD_RAUC_KEYRING:-}" ]; then
	rauc info --keyring="$KIOSKD_RAUC_KEYRING" "$out" >/dev/null ||
		die "$out does not check against KIOSKD_RAUC_KEYRING=$KIOSKD_RAUC_KEYRING: the image would refuse it"
fi
echo "mkbundle.sh: $out: compatible $compatible, version $version"
