#!/bin/sh
# Post-build script of the kioskd image (BR2_ROOTFS_POST_BUILD_SCRIPT).
# Buildroot runs it as `post-build.sh TARGET_DIR` after copying the rootfs
# overlay, before making the filesystem images, with BR2_CONFIG (the
# .config) and BINARIES_DIR in the environment.
#
# The RAUC keyring comes from outside the checkout (buildroot/README.md):
#   KIOSKD_RAUC_KEYRING  the certificate or CA that bundles are checked
#                        against, installed as /etc/rauc/keyring.pem;
#                        without it, KIOSKD_RAUC_CERT (a self-signed
#                        signing certificate is its own keyring). With
#                        neither, the image has no keyring and installs
#                        no update (a warning says so).
set -eu

TARGET_DIR=${1:?usage: post-build.sh TARGET_DIR}
: "${BR2_CONFIG:?BR2_CONFIG is not set: run from Buildroot}"

die() {
	echo "post-build.sh: $*" >&2
	exit 1
}

# cfg SYMBOL: a value from the .config, without the quotes of a string.
cfg() {
	sed -n "s/^$1=//p" "$BR2_CONFIG" | sed 's/^"\(.*\)"$/\1/'
}

# The mount point of the data partition on the read-only root.
mkdir -p "$TARGET_DIR/data"

# The serial console's getty. Buildroot fills in the "# GENERIC_SERIAL"
# line of /etc/inittab before it copies the overlay, whose inittab then
# replaces that one: fill in the overlay's line from the same options.
inittab=$TARGET_DIR/etc/inittab
grep -q '^::respawn:/usr/sbin/kioskd-run$' "$inittab" ||
	die "$inittab does not respawn /usr/sbin/kioskd-run: is the rootfs overlay board/kiosk/rootfs-overlay in BR2_ROOTFS_OVERLAY?"
if [ "$(cfg BR2_TARGET_GENERIC_GETTY)" = y ]; then
	port=$(cfg BR2_TARGET_GENERIC_GETTY_PORT)
	baud=$(cfg BR2_TARGET_GENERIC_GETTY_BAUDRATE)
	term=$(cfg BR2_TARGET_GENERIC_GETTY_TERM)
	opts=$(cfg BR2_TARGET_GENERIC_GETTY_OPTIONS)
	[ -n "$port" ] || die "BR2_TARGET_GENERIC_GETTY_PORT is empty"
	getty="$port::respawn:/sbin/getty -L ${opts:+$opts }$port ${baud:-0} ${term:-vt100} # GENERIC_SERIAL"
	sed "s~^.*# GENERIC_SERIAL\$~$getty~" "$inittab" >"$inittab.new"
	mv "$inittab.new" "$inittab"
	grep -q "^$port::respawn:/sbin/getty " "$inittab" ||
		die "no getty line for $port in $inittab (its \"# GENERIC_SERIAL\" line is missing)"
else
	echo "post-build.sh: warning: BR2_TARGET_GENERIC_GETTY is off: no login on the serial console" >&2
fi

# kioskd is installed by its package, with the image's config.
[ -x "$TARGET_DIR/usr/bin/kioskd" ] || die "no /usr/bin/kioskd: is BR2_PACKAGE_KIOSKD=y?"
conf=$TARGET_DIR/etc/kioskd/kioskd.toml
[ -f "$conf" ] || die "no /etc/kioskd/kioskd.toml (installed by the kioskd package)"
grep -Eq '^kind = "(rpi3|rpi4|rpi5|generic|sim)"$' "$conf" ||
	die "/etc/kioskd/kioskd.toml: no valid [board] kind (BR2_PACKAGE_KIOSKD_BOARD)"
for f in usr/sbin/kioskd-run usr/sbin/kiosk-mount-data usr/sbin/kioskd-health-gate usr/sbin/kioskd-rauc-pre-install etc/init.d/S31rauc; do
	[ -f "$TARGET_DIR/$f" ] || die "no /$f: is board/kiosk/rootfs-overlay in BR2_ROOTFS_OVERLAY?"
	chmod 0755 "$TARGET_DIR/$f"
done

# --- A/B updates (RAUC) -------------------------------------------------------
# /etc/rauc/system.conf, with the image's compatible: kioskd-rpi3 or
# kioskd-rpi4_64, as the Makefile's BOARD names the defconfigs.
[ "$(cfg BR2_PACKAGE_RAUC)" = y ] || die "BR2_PACKAGE_RAUC is off: the image cannot be updated"
board=$(cfg BR2_PACKAGE_KIOSKD_BOARD)
[ "$(cfg BR2_aarch64)" != y ] || board=${board}_64
case $board in
rpi3 | rpi4_64) ;;
*) die "no RAUC compatible for board $board (BR2_PACKAGE_KIOSKD_BOARD): want rpi3 or rpi4 on arm64" ;;
esac
BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$TARGET_DIR/etc/rauc"
sed "s/@COMPATIBLE@/kioskd-$board/" "$BOARD_DIR/rauc/system.conf.in" >"$TARGET_DIR/etc/rauc/system.conf"
keyring=${KIOSKD_RAUC_KEYRING:-${KIOSKD_RAUC_CERT:-}}
if [ -n "$keyring" ]; then
	[ -f "$keyring" ] || die "KIOSKD_RAUC_KEYRING or KIOSKD_RAUC_CERT: no file $keyring"
	grep -q -- '-----BEGIN CERTIFICATE-----' "$keyring" || die "$keyring is not a PEM certificate"
	cp "$keyring" "$TARGET_DIR/etc/rauc/keyring.pem"
	chmod 0644 "$TARGET_DIR/etc/rauc/keyring.pem"
else
	rm -f "$TARGET_DIR/etc/rauc/keyring.pem"
	echo "post-build.sh: warning: neither KIOSKD_RAUC_KEYRING nor KIOSKD_RAUC_CERT is set: no /etc/rauc/keyring.pem, this image installs no update bundle" >&2
fi
# rauc's D-Bus on the read-only root: dbus-daemon writes its machine id
# under /var/lib/dbus, which must lead to a writable place.
if [ -d "$TARGET_DIR/var/lib/dbus" ] && [ ! -L "$TARGET_DIR/var/lib/dbus" ]; then
	echo "post-build.sh: warning: /var/lib/dbus is a directory on the read-only root: dbus-daemon may not start (rauc service needs it)" >&2
fi
[ -f "$TARGET_DIR/etc/fw_env.config" ] || die "no /etc/fw_env.config: is board/kiosk/rootfs-overlay in BR2_ROOTFS_OVERLAY?"

# The slot's /boot, which boot.cmd loads from: the kernel and the device
# trees (BR2_LINUX_KERNEL_INSTALL_TARGET), the overlays boot.cmd applies,
# and the names U-Boot looks the device tree up by (its fdtfile): on arm64
# "broadcom/<name>.dtb", and on the Pi 3 the mainline names bcm2837-*,
# which the Raspberry Pi kernel calls bcm2710-*.
boot=$TARGET_DIR/boot
[ -f "$boot/Image" ] || [ -f "$boot/zImage" ] ||
	die "no /boot/Image or /boot/zImage in the target: is BR2_LINUX_KERNEL_INSTALL_TARGET=y?"
set -- "$boot"/*.dtb
[ -f "$1" ] || die "no device tree in /boot of the target: is BR2_LINUX_KERNEL_INSTALL_TARGET=y?"
# The overlays: the same list as boot.cmd's "for o in" line (check.sh).
overlays="disable-bt"
mkdir -p "$boot/overlays"
for o in $overlays; do
	src=${BINARIES_DIR:-}/rpi-firmware/overlays/$o.dtbo
	[ -f "$src" ] || die "no $src for boot.cmd (BR2_PACKAGE_RPI_FIRMWARE installs the overlays)"
	cp "$src" "$boot/overlays/$o.dtbo"
done
[ -e "$boot/broadcom" ] || ln -s . "$boot/broadcom"
for d in "$boot"/bcm2710-*.dtb; do
	[ -f "$d" ] || continue
	n=${d##*/}
	alias=bcm2837-${n#bcm2710-}
	[ "$n" != bcm2710-rpi-cm3.dtb ] || alias=bcm2837-rpi-cm3-io3.dtb
	[ -e "$boot/$alias" ] || ln -s "$n" "$boot/$alias"
done

# kioskd alone feeds /dev/watchdog: a watchdog daemon would hold the device
# and keep a hung kiosk alive.
[ ! -e "$TARGET_DIR/etc/init.d/S15watchdog" ] ||
	die "/etc/init.d/S15watchdog is installed (BR2_PACKAGE_BUSYBOX_WATCHDOG): kioskd feeds the watchdog itself, switch it off"

# The clock's lower bound for kioskd-run: the Pi has no real-time clock,
# so until NTP answers it may think it is 1970.
echo "${SOURCE_DATE_EPOCH:-$(date -u +%s)}" >"$TARGET_DIR/etc/kioskd/build-time"

if [ "$(cfg BR2_TARGET_ENABLE_ROOT_LOGIN)" = y ] && [ -z "$(cfg BR2_TARGET_GENERIC_ROOT_PASSWD)" ]; then
	echo "post-build.sh: warning: root has no password (BR2_TARGET_GENERIC_ROOT_PASSWD): anyone at the serial console is root" >&2
fi
