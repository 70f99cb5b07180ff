#!/bin/sh
# Post-image script of the kioskd image (BR2_ROOTFS_POST_IMAGE_SCRIPT).
# Buildroot runs it as `post-image.sh BINARIES_DIR` with BUILD_DIR in the
# environment and its host tools (genimage, mke2fs, mkdosfs, mcopy,
# mkimage, rauc) on the PATH. It writes
#   BINARIES_DIR/boot.scr       U-Boot's slot choice, from boot.cmd (mkimage)
#   BINARIES_DIR/sdcard.img     from genimage.cfg.in: boot (vfat), root
#                               slots A and B (rootfs.ext4 in both) and data
#                               (empty ext4, /data)
#   BINARIES_DIR/<compatible>.raucb  the signed update bundle (mkbundle.sh;
#                               skipped, saying so, without a signing key)
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
# among them), the "kernel" that config.txt names, which is U-Boot
# (u-boot.bin), and boot.scr. The firmware still needs a DTB of its own
# to hand to U-Boot; the kernel's come from the slot (boot.cmd).
fwconfig=$BINARIES_DIR/rpi-firmware/config.txt
[ -f "$fwconfig" ] || die "no $fwconfig (BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE)"
kernel=$(sed -n 's/^kernel=//p' "$fwconfig" | tail -n 1)
[ -n "$kernel" ] || die "$fwconfig names no kernel="
[ -f "$BINARIES_DIR/$kernel" ] || die "no kernel $BINARIES_DIR/$kernel (config.txt kernel=$kernel)"
[ -f "$BINARIES_DIR/rootfs.ext4" ] || die "no $BINARIES_DIR/rootfs.ext4 (BR2_TARGET_ROOTFS_EXT2_4)"

[ "$kernel" = u-boot.bin ] || die "$fwconfig: kernel=$kernel, want u-boot.bin (U-Boot picks the RAUC slot)"

arch=arm
! grep -q '^BR2_aarch64=y$' "${BR2_CONFIG:-/dev/null}" || arch=arm64
command -v mkimage >/dev/null 2>&1 || die "no mkimage on the PATH (BR2_PACKAGE_HOST_UBOOT_TOOLS)"
mkimage -A "$arch" -O linux -T script -C none -n "kioskd A/B boot" \
	-d "$BOARD_DIR/boot.cmd" "$BINARIES_DIR/boot.scr" >/dev/null ||
	die "mkimage could not make boot.scr from $BOARD_DIR/boot.cmd"

rootpath=$(mktemp -d)
files=$(mktemp)
trap 'rm -rf "$rootpath" "$files"' EXIT

for f in "$BINARIES_DIR"/*.dtb "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR/$kernel" "$BINARIES_DIR/boot.scr"; do
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

echo "post-image.sh: $BINARIES_DIR/sdcard.img: boot, root slots A and B (read-only), data (/data)"

"$BOARD_DIR/mkbundle.sh" "$BINARIES_DIR"
