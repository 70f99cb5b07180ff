# U-Boot boot script of the kioskd image: the A/B slot choice of RAUC's
# "uboot" boot backend. post-image.sh makes boot.scr from it with mkimage;
# uboot.fragment's bootcommand runs it from the boot partition.
#
# The state is in U-Boot's redundant environment (uboot.fragment), which
# RAUC reads and writes from Linux with fw_printenv/fw_setenv
# (/etc/fw_env.config):
#
#   BOOT_ORDER    the slots to try, in order: "A B" or "B A". RAUC puts the
#                 slot it installed to first.
#   BOOT_A_LEFT   boots slot A may still try before it is passed over
#   BOOT_B_LEFT   the same for slot B
#
# Each boot takes the first slot of BOOT_ORDER that has a try left, takes
# one try off and saves the environment before loading anything, so a
# kernel that hangs or a kioskd that never proves itself healthy still
# costs a try. `rauc status mark-good` (the health gate, once kioskd is
# healthy) gives the booted slot its tries back. A new slot that fails
# three times in a row is passed over: the old slot boots again, which is
# the rollback. When no slot has a try left, both get theirs back and the
# board restarts (RAUC's documented fallback): better an endless retry
# than a kiosk that stops for good.
#
#   slot  partition        kernel and device tree      bootargs
#   A     mmc 0:2  p2      /boot/Image or /boot/zImage root=/dev/mmcblk0p2 rauc.slot=A
#   B     mmc 0:3  p3      and /boot/<fdtfile>         root=/dev/mmcblk0p3 rauc.slot=B

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

setenv kiosk_slot
setenv kiosk_part
for s in ${BOOT_ORDER}; do
	if test -z "${kiosk_slot}"; then
		if test "${s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
			setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
			setenv kiosk_slot A
			setenv kiosk_part 2
		elif test "${s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
			setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
			setenv kiosk_slot B
			setenv kiosk_part 3
		fi
	fi
done

if test -z "${kiosk_slot}"; then
	echo "kiosk: no slot of BOOT_ORDER '${BOOT_ORDER}' has a try left: giving both 3 again and restarting"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	saveenv
	reset
fi

echo "kiosk: booting slot ${kiosk_slot} (mmc 0:${kiosk_part}); tries left: A ${BOOT_A_LEFT}, B ${BOOT_B_LEFT}"
saveenv

# The kernel of the slot: Image (arm64, Pi 4) or zImage (armv7, Pi 3).
# It loads at kernel_addr_r, below scriptaddr where this script runs: on
# the Pi 4 that leaves 35.5 MiB for the Image.
setenv kiosk_boot
if load mmc 0:${kiosk_part} ${kernel_addr_r} /boot/Image; then
	setenv kiosk_boot booti
elif load mmc 0:${kiosk_part} ${kernel_addr_r} /boot/zImage; then
	setenv kiosk_boot bootz
fi
if test -z "${kiosk_boot}"; then
	echo "kiosk: slot ${kiosk_slot} has no /boot/Image or /boot/zImage: restarting (the try is spent)"
	sleep 3
	reset
fi

# The slot's device tree, named as U-Boot names the board (fdtfile;
# post-build.sh adds the names U-Boot uses), with the firmware overlays
# the image's config.txt asks for. If the slot has none for this board,
# the device tree the firmware passed (from the boot partition, overlays
# applied) is used instead.
setenv kiosk_fdt ${fdt_addr}
if load mmc 0:${kiosk_part} ${fdt_addr_r} /boot/${fdtfile}; then
	setenv kiosk_fdt ${fdt_addr_r}
	fdt addr ${fdt_addr_r}
	fdt resize 16384
	for o in disable-bt; do
		if load mmc 0:${kiosk_part} ${ramdisk_addr_r} /boot/overlays/${o}.dtbo; then
			fdt apply ${ramdisk_addr_r} || echo "kiosk: overlay ${o} did not apply"
		else
			echo "kiosk: slot ${kiosk_slot} has no /boot/overlays/${o}.dtbo"
		fi
	done
else
	echo "kiosk: slot ${kiosk_slot} has no /boot/${fdtfile}: using the firmware's device tree"
fi

setenv bootargs "console=ttyAMA0,115200 root=/dev/mmcblk0p${kiosk_part} rootfstype=ext4 rootwait ro panic=10 rauc.slot=${kiosk_slot}"
if test "${kiosk_boot}" = "booti"; then
	booti ${kernel_addr_r} - ${kiosk_fdt}
else
	bootz ${kernel_addr_r} - ${kiosk_fdt}
fi

echo "kiosk: ${kiosk_boot} of slot ${kiosk_slot} returned: restarting (the try is spent)"
sleep 3
reset
