#!/bin/sh
# Post-image script of the kioskd image (BR2_ROOTFS_POST_IMAGE_SCRIPT).
# Buildroot runs it as `post-image.sh BINARIES_DIR` with BUILD_DIR in the
# environment and its host tools (genimage, mke2fs, mkdosfs, mcopy) on the
# PATH. It writes BINARIES_DIR/sdcard.img from genimage.cfg.in: boot
# (vfat), rootfs (rootfs.ext4, read-only) and data (empty ext4, /data).
set -eu

BINARIES_DIR=${1:?usage: post-image.sh BINARIES_DIR}
: "${BUILD_DIR:?BUILD_DIR is not set: run from Buildroot}"
BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
GENIMAGE_CFG=$BINARIES_DIR/genimage.cfg
GENIMAGE_TMP=$BUILD_DIR/genimage.tmp

die() {
	echo "post-image.sh: $*" >&2
	exit 1
}

# The boot partition: the DTBs, the firmware files and overlays/ that the
# rpi-firmware package put in rpi-firmware/ (config.txt and cmdline.txt
# among them), and the kernel that config.txt names.
fwconfig=$BINARIES_DIR/rpi-firmware/config.txt
[ -f "$fwconfig" ] || die "no $fwconfig (BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE)"
kernel=$(sed -n 's/^kernel=//p' "$fwconfig" | tail -n 1)
[ -n "$kernel" ] || die "$fwconfig names no kernel="
[ -f "$BINARIES_DIR/$kernel" ] || die "no kernel $BINARIES_DIR/$kernel (config.txt kernel=$kernel)"
[ -f "$BINARIES_DIR/rootfs.ext4" ] || die "no $BINARIES_DIR/rootfs.ext4 (BR2_TARGET_ROOTFS_EXT2_4)"

rootpath=$(mktemp -d)
files=$(mktemp)
trap 'rm -rf "$rootpath" "$files"' EXIT

for f in "$BINARIES_DIR"/*.dtb "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR/$kernel"; do
	[ -e "$f" ] || continue
	printf '\t\t\t"%s",\n' "${f#"$BINARIES_DIR"/}"
done >"$files"
grep -q '"rpi-firmware/cmdline.txt"' "$files" || die "no rpi-firmware/cmdline.txt (BR2_PACKAGE_RPI_FIRMWARE_CMDLINE_FILE)"
grep -q '\.dtb",$' "$files" || die "no device tree (*.dtb) in $BINARIES_DIR"

sed -e "/^@BOOT_FILES@\$/r $files" -e '/^@BOOT_FILES@$/d' \
	"$BOARD_DIR/genimage.cfg.in" >"$GENIMAGE_CFG"

# genimage copies its root path; nothing here is built from the target
# directory (rootfs.ext4 is Buildroot's), so give it an empty one.
rm -rf "$GENIMAGE_TMP"
genimage \
	--rootpath "$rootpath" \
	--tmppath "$GENIMAGE_TMP" \
	--inputpath "$BINARIES_DIR" \
	--outputpath "$BINARIES_DIR" \
	--config "$GENIMAGE_CFG"

echo "post-image.sh: $BINARIES_DIR/sdcard.img: boot, rootfs (read-only), data (/data)"
