#!/bin/sh
# mkinitramfs.sh ARCH KIOSKD OUT: the virtual board's root filesystem, a
# gzipped cpio for QEMU's -initrd. It holds:
#   - Debian's busybox-static for ARCH and the kernel modules the board
#     needs (virtio PCI, disk and network, ext4, the watchdog drivers),
#     from fetch.sh's cache (mkroot.sh);
#   - the kioskd binary KIOSKD;
#   - the Buildroot overlay's own inittab, kiosk-mount-data and
#     kioskd-run (buildroot/board/kiosk/rootfs-overlay), so those run for
#     real; the fstab's data line is rewritten to the virtio disk, and the
#     commented console line becomes the technician's shell on ttyS1;
#   - guest/: the virtual board's /init, rcS and image config.
set -eu

arch=${1:?usage: mkinitramfs.sh ARCH KIOSKD OUT}
bin=${2:?usage: mkinitramfs.sh ARCH KIOSKD OUT}
out=${3:?usage: mkinitramfs.sh ARCH KIOSKD OUT}
here=$(cd "$(dirname "$0")" && pwd)
overlay=$here/../../buildroot/board/kiosk/rootfs-overlay
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# The watchdog: the i6300esb PCI card on arm64; Debian's armhf kernel has
# no driver for it, so softdog there (the same /dev/watchdog ioctls).
case $arch in
arm64) wdt=i6300esb ;;
*) wdt=softdog ;;
esac
sh "$here/mkroot.sh" "$arch" "$root" virtio_pci virtio_blk virtio_net ext4 "$wdt"

cp "$bin" "$root/usr/bin/kioskd"
chmod 0755 "$root/usr/bin/kioskd"
for f in kiosk-mount-data kioskd-run; do
	install -m 0755 "$overlay/usr/sbin/$f" "$root/usr/sbin/$f"
done
sed 's|^#ttyAMA0::respawn:.*|ttyS1::respawn:/bin/sh -l|' "$overlay/etc/inittab" >"$root/etc/inittab"
grep -q '^ttyS1::respawn:' "$root/etc/inittab" || {
	echo "mkinitramfs.sh: the overlay's inittab has no console line to turn into the technician's shell" >&2
	exit 1
}
sed 's|^/dev/mmcblk0p4[[:space:]]|/dev/vda\t|' "$overlay/etc/fstab" >"$root/etc/fstab"
grep -q '^/dev/vda' "$root/etc/fstab" || {
	echo "mkinitramfs.sh: the overlay's fstab has no /dev/mmcblk0p4 data line" >&2
	exit 1
}
install -m 0755 "$here/guest/init" "$root/init"
install -m 0755 "$here/guest/etc/init.d/rcS" "$root/etc/init.d/rcS"
install -m 0755 "$here/guest/etc/init.d/rcK" "$root/etc/init.d/rcK"
install -m 0755 "$here/guest/mountpoint" "$root/bin/mountpoint"
install -m 0644 "$here/guest/kioskd.toml" "$root/etc/kioskd/kioskd.toml"
echo vboard >"$root/etc/hostname"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
