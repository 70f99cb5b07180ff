#!/bin/sh
# mkslot.sh ARCH KIOSKD KEYRING VARIANT VERSION OUT: one root slot of the
# update tests' virtual board (ota_test.go), an ext4 image OUT that the
# test writes into slot A of its disk or puts into a RAUC bundle. It is a
# whole read-only root:
#   - busybox-static with its applet links (listed by running it under
#     qemu-user), the kioskd binary KIOSKD, the Buildroot overlay's
#     kiosk-mount-data, kioskd-run, kioskd-health-gate and
#     kioskd-rauc-pre-install (system.conf's pre-install handler), its inittab
#     (the console line made the technician's shell on ttyS1, the gate's
#     line added when the overlay has none yet) and fstab (the data line
#     on the disk's fourth partition, /dev/vda4);
#   - rauc (no unsquashfs: the bundles are verity ones, as the image's
#     are, and their manifest is in the signature), dbus-daemon and
#     fw_printenv/fw_setenv with their libraries
#     (fetch-ota.sh), /etc/rauc/system.conf (slots A and B on /dev/vda2
#     and /dev/vda3, U-Boot's env on /dev/vda1, see ota_test.go) and the
#     test CA KEYRING;
#   - /boot/vmlinuz (Debian's kernel; arm64's gzipped, QEMU unpacks it) and
#     /boot/initrd (guest/ota/init and the modules), which the host's
#     bootloader reads out of the slot it boots: they update with it;
#   - VARIANT: good (kioskd as it is), or exits, crashes, hangs (the real
#     kioskd behind guest/ota/kioskd-faulty); VERSION goes in
#     /etc/vboard-release, printed on the console at boot.
set -eu

usage='usage: mkslot.sh ARCH KIOSKD KEYRING VARIANT VERSION OUT'
arch=${1:?$usage}
bin=${2:?$usage}
keyring=${3:?$usage}
variant=${4:?$usage}
version=${5:?$usage}
out=${6:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
overlay=$here/../../buildroot/board/kiosk/rootfs-overlay
cache=$(sh "$here/fetch.sh" "$arch" | tail -n 1)
ota=$(sh "$here/fetch-ota.sh" "$arch" | tail -n 1)
case $arch in
arm64) wdt=i6300esb qemu=qemu-aarch64 triplet=aarch64-linux-gnu ;;
*) wdt=softdog qemu=qemu-arm triplet=arm-linux-gnueabihf ;;
esac
case $variant in good | exits | crashes | hangs) ;; *)
	echo "mkslot.sh: VARIANT is good, exits, crashes or hangs, not $variant" >&2
	exit 2
	;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
ird=$tmp/initrd

# The slot's initramfs.
sh "$here/mkroot.sh" "$arch" "$ird" virtio_pci virtio_blk virtio_net ext4 loop squashfs dm_verity "$wdt"
install -m 0755 "$here/guest/ota/init" "$ird/init"
mkdir -p "$root/boot"
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$root/boot/initrd"
# shellcheck disable=SC2012 # one kernel, named for its release (no blanks)
kernel=$(ls "$cache"/kernel/boot/vmlinuz-* | head -n 1)
# arm64's is a plain Image (33 MB), which QEMU also takes gzipped; the
# armhf zImage is compressed already.
case $arch in
arm64) gzip -1 -c "$kernel" >"$root/boot/vmlinuz" ;;
*) cp "$kernel" "$root/boot/vmlinuz" ;;
esac

# The root: busybox and its links.
sh "$here/mkroot.sh" "$arch" "$root"
"$qemu" "$root/bin/busybox" --list-full | while read -r p; do
	[ -e "$root/$p" ] && continue
	mkdir -p "$root/$(dirname "$p")"
	ln -s /bin/busybox "$root/$p"
done
mkdir -p "$root/var" "$root/mnt"
ln -s ../run "$root/var/run"

# kioskd, maybe behind its faulty wrapper.
if [ "$variant" = good ]; then
	install -m 0755 "$bin" "$root/usr/bin/kioskd"
else
	install -m 0755 "$bin" "$root/usr/bin/kioskd.real"
	install -m 0755 "$here/guest/ota/kioskd-faulty" "$root/usr/bin/kioskd"
	echo "$variant" >"$root/etc/kioskd-faulty"
fi
for f in kiosk-mount-data kioskd-run kioskd-health-gate kioskd-rauc-pre-install; do
	install -m 0755 "$overlay/usr/sbin/$f" "$root/usr/sbin/$f"
done
sed 's|^#ttyAMA0::respawn:.*|ttyS1::respawn:/bin/sh -l|' "$overlay/etc/inittab" >"$root/etc/inittab"
grep -q '^ttyS1::respawn:' "$root/etc/inittab" || {
	echo "mkslot.sh: the overlay's inittab has no console line to turn into the technician's shell" >&2
	exit 1
}
grep -q kioskd-health-gate "$root/etc/inittab" || echo '::once:/usr/sbin/kioskd-health-gate' >>"$root/etc/inittab"
sed 's|^/dev/mmcblk0p[0-9]*[[:space:]]\(.*/data\)|/dev/vda4\t\1|' "$overlay/etc/fstab" >"$root/etc/fstab"
grep -q '^/dev/vda4' "$root/etc/fstab" || {
	echo "mkslot.sh: the overlay's fstab has no /dev/mmcblk0pN data line" >&2
	exit 1
}
install -m 0755 "$here/guest/etc/init.d/rcS" "$root/etc/init.d/rcS.vboard"
install -m 0755 "$here/guest/ota/etc/init.d/rcS" "$root/etc/init.d/rcS"
install -m 0755 "$here/guest/etc/init.d/rcK" "$root/etc/init.d/rcK"
install -m 0755 "$here/guest/mountpoint" "$root/bin/mountpoint"
install -m 0644 "$here/guest/kioskd.toml" "$root/etc/kioskd/kioskd.toml"
install -D -m 0644 "$here/guest/ota/etc/default/kioskd-health-gate" "$root/etc/default/kioskd-health-gate"
echo vboard >"$root/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nmessagebus:x:101:\n' >"$root/etc/group"
echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
echo "VERSION=$version" >"$root/etc/vboard-release"

# RAUC, D-Bus and the U-Boot env tools.
# The libraries merged into /usr/lib/TRIPLET, /lib/TRIPLET a link to it,
# as Debian's merged /usr has them (the loader in /lib): with a separate
# /lib/TRIPLET, armhf's loader under qemu-user's -L (the check below)
# did not find libc.so.6 there.
mkdir -p "$root/usr/lib/$triplet" "$root/usr/share"
cp -a "$ota/usr/lib/$triplet/." "$root/usr/lib/$triplet/"
cp -a "$ota/lib/$triplet/." "$root/usr/lib/$triplet/"
ln -s "../usr/lib/$triplet" "$root/lib/$triplet"
for f in "$ota"/lib/ld-linux*; do
	cp -a "$f" "$root/lib/"
done
rm -rf "$root/usr/lib/$triplet/gconv" "$root/usr/lib/$triplet/perl"*
cp -a "$ota/usr/share/dbus-1" "$root/usr/share/"
cp -a "$ota/etc/dbus-1" "$root/etc/"
for f in rauc dbus-daemon dbus-send fw_printenv fw_setenv; do
	cp -a "$ota/usr/bin/$f" "$root/usr/bin/$f"
	if ! "$qemu" -L "$root" "$root/usr/bin/$f" --version >/dev/null 2>"$tmp/err" &&
		grep -q 'error while loading' "$tmp/err"; then
		echo "mkslot.sh: $f does not load:" >&2
		cat "$tmp/err" >&2
		exit 1
	fi
done
mkdir -p "$root/etc/rauc"
install -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"
cat >"$root/etc/rauc/system.conf" <<CONF
[system]
compatible=kioskd-vboard-$arch
bootloader=uboot
mountprefix=/run/rauc
data-directory=/data/rauc

[handlers]
pre-install=/usr/sbin/kioskd-rauc-pre-install

[keyring]
path=/etc/rauc/keyring.pem

[slot.rootfs.0]
device=/dev/vda2
type=ext4
bootname=A

[slot.rootfs.1]
device=/dev/vda3
type=ext4
bootname=B
CONF
# U-Boot's redundant env: two copies in the raw first partition.
printf '/dev/vda1\t0x0\t0x4000\n/dev/vda1\t0x10000\t0x4000\n' >"$root/etc/fw_env.config"

mkdir -p "$(dirname "$out")"
rm -f "$out"
mkfs.ext4 -q -F -L rootfs -E root_owner=0:0 -d "$root" "$out" 100M
