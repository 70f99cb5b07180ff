#!/bin/sh
# Post-build script of the kioskd image (BR2_ROOTFS_POST_BUILD_SCRIPT).
# Buildroot runs it as `post-build.sh TARGET_DIR` after copying the rootfs
# overlay, before making the filesystem images, with BR2_CONFIG (the
# .config) in the environment.
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
for f in usr/sbin/kioskd-run usr/sbin/kiosk-mount-data; do
	[ -f "$TARGET_DIR/$f" ] || die "no /$f: is board/kiosk/rootfs-overlay in BR2_ROOTFS_OVERLAY?"
	chmod 0755 "$TARGET_DIR/$f"
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
