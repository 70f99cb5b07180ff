#!/bin/sh
# Writes a kiosk SD-card image to a card, refusing anything that does not
# look like a card you meant to erase. Linux only (it reads /sys and /proc).
#
#   scripts/flash-sd.sh [OPTIONS] IMAGE DEVICE
#
#   sudo scripts/flash-sd.sh output/images/sdcard.img /dev/sdb
#   sudo scripts/flash-sd.sh --yes kiosk-rpi4.img.xz /dev/mmcblk0
#   scripts/flash-sd.sh --dry-run kiosk-rpi3.img.gz /dev/sdb
#
# IMAGE is a raw disk image, or one compressed with gzip, xz or zstd; the
# format is read from the file's first bytes, not its name, and it is
# decompressed on the fly. It must start with a partition table (the 55 AA
# signature at byte 510, as MBR and GPT images have): a bare filesystem such
# as rootfs.ext4 is refused, since a card holding one does not boot.
#
# DEVICE is refused (exit 3), before anything is written, when it is:
#   - missing, or not a block device (a regular file, /dev/null);
#   - a partition (/dev/sdb1) instead of the whole disk (/dev/sdb), or a
#     device-mapper/RAID device built on other disks;
#   - the disk holding /, /boot, /boot/efi, /boot/firmware, /usr or /var,
#     or an active swap area: the running system;
#   - mounted, or holding a mounted partition (read from /proc/self/mountinfo,
#     /proc/mounts and lsblk when present; device-mapper devices stacked on it
#     count): unmount it first (udisksctl unmount -b /dev/sdb1, or umount);
#   - read-only (the card's lock switch) or empty (a reader with no card);
#   - larger than the size limit, 128G unless --max-size or FLASH_SD_MAX_SIZE
#     says otherwise, unless --force-size: SD cards are smaller than that,
#     a USB or SATA disk of your own often is not;
#   - smaller than the image (when the image's size is known: raw and xz).
# It then shows the device (model, size, partitions) and asks you to type
# its name (sdb or /dev/sdb) before writing; --yes skips the question.
#
# Options:
#   -n, --dry-run       do every check, print the command, write nothing
#   -y, --yes           do not ask for confirmation (for scripts)
#   --max-size SIZE     largest device written without --force-size:
#                       bytes, or a number with K, M, G or T (powers of
#                       1000, as cards are sold); default 128G
#   --force-size        write a device larger than the limit
#   -h, --help          this text
#
# Exit codes:
#   0  written (or, with --dry-run, every check passed)
#   1  writing failed (decompressor, dd, permission), or a tool is missing
#   2  usage: bad arguments, image missing, unreadable or not a disk image
#   3  refused: the device is not a card this script will erase (above)
#   4  not confirmed: the answer was not the device name
#
# The write is `dd bs=4M conv=fsync status=progress` (the options this dd
# does not support are left out), followed by sync. FLASH_SD_TESTING=1
# (for scripts/test/run.sh only) also accepts a regular file as DEVICE, so
# the prompt and the write can be tested without a block device; no
# check on block devices is relaxed by it.
set -eu

prog=${0##*/}
EX_FAIL=1
EX_USAGE=2
EX_REFUSED=3
EX_NOTCONFIRMED=4

usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0"
}
say() { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	code=$1
	shift
	warn "$*"
	exit "$code"
}
refuse() { die $EX_REFUSED "REFUSED: $*"; }

# --- arguments ---------------------------------------------------------------

dry_run=0
yes=0
force_size=0
max_size=${FLASH_SD_MAX_SIZE:-128G}
image=
device=
while [ $# -gt 0 ]; do
	case $1 in
	-n | --dry-run) dry_run=1 ;;
	-y | --yes) yes=1 ;;
	--force-size) force_size=1 ;;
	--max-size)
		[ $# -ge 2 ] || die $EX_USAGE "--max-size needs a value"
		max_size=$2
		shift
		;;
	--max-size=*) max_size=${1#*=} ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-?*) die $EX_USAGE "unknown option $1 (see --help)" ;;
	*)
		if [ -z "$image" ]; then
			image=$1
		elif [ -z "$device" ]; then
			device=$1
		else
			die $EX_USAGE "too many arguments (see --help)"
		fi
		;;
	esac
	shift
done
for a in "$@"; do
	if [ -z "$image" ]; then
		image=$a
	elif [ -z "$device" ]; then
		device=$a
	else
		die $EX_USAGE "too many arguments (see --help)"
	fi
done
if [ -z "$image" ] || [ -z "$device" ]; then
	warn "usage: $prog [--dry-run] [--yes] [--max-size SIZE] [--force-size] IMAGE DEVICE (see --help)"
	exit $EX_USAGE
fi

# parse_size 128G -> 128000000000; empty output when malformed.
parse_size() {
	printf '%s\n' "$1" | awk '
	/^[0-9]+(\.[0-9]+)?[KkMmGgTt]?[Bb]?$/ {
		s = $0; sub(/[Bb]$/, "", s)
		u = substr(s, length(s), 1); m = 1
		if (u ~ /[Kk]/) m = 1e3; else if (u ~ /[Mm]/) m = 1e6
		else if (u ~ /[Gg]/) m = 1e9; else if (u ~ /[Tt]/) m = 1e12
		if (m > 1) s = substr(s, 1, length(s) - 1)
		printf "%.0f\n", s * m
	}'
}
max_bytes=$(parse_size "$max_size")
[ -n "$max_bytes" ] || die $EX_USAGE "--max-size $max_size: want a size such as 64G or 500M"

# human 31914983424 -> "31.9 GB (29.7 GiB)"
human() {
	awk -v b="$1" 'BEGIN {
		if (b >= 1e9) printf "%.1f GB (%.1f GiB)", b / 1e9, b / 1073741824
		else if (b >= 1e6) printf "%.1f MB (%.1f MiB)", b / 1e6, b / 1048576
		else printf "%d bytes", b
	}'
}

# --- the image ---------------------------------------------------------------

[ -e "$image" ] || die $EX_USAGE "$image: no such file"
[ -f "$image" ] || die $EX_USAGE "$image: not a regular file"
[ -r "$image" ] || die $EX_USAGE "$image: not readable"

magic=$(od -An -N6 -tx1 "$image" | tr -d ' \n')
case $magic in
1f8b*) format=gzip dec="gzip -dc" ;;
fd377a585a00) format=xz dec="xz -dc" ;;
28b52ffd*) format=zstd dec="zstd -dc" ;;
*) format=raw dec= ;;
esac
if [ -n "$dec" ]; then
	tool=${dec%% *}
	command -v "$tool" >/dev/null 2>&1 || die $EX_FAIL "$image is $format-compressed and $tool is not installed"
fi

# The image's (uncompressed) size, when it can be known without reading it.
image_bytes=
case $format in
raw) image_bytes=$(wc -c <"$image" | tr -d ' ') ;;
xz) image_bytes=$(xz --robot --list "$image" 2>/dev/null | awk '$1 == "totals" { print $5 }') ;;
esac

# A disk image starts with a partition table: MBR, or GPT's protective MBR,
# both end their first sector with 55 AA.
if [ -n "$dec" ]; then
	sig=$($dec <"$image" 2>/dev/null | od -An -j510 -N2 -tx1 | tr -d ' \n') || true
else
	sig=$(od -An -j510 -N2 -tx1 "$image" | tr -d ' \n')
fi
if [ "$sig" != 55aa ]; then
	die $EX_USAGE "$image ($format) is not a disk image: no partition table signature (55 AA at byte 510). Write the whole-card image (Buildroot's output/images/sdcard.img), not a filesystem image such as rootfs.ext4"
fi

# --- the device --------------------------------------------------------------

# devnum PATH -> "major:minor" of a device node, in decimal.
devnum() {
	stat -L -c '%t %T' "$1" 2>/dev/null | {
		read -r ma mi || exit 1
		printf '%d:%d\n' "0x$ma" "0x$mi"
	}
}

# sysdir MAJ:MIN -> the device's directory under /sys/devices.
sysdir() {
	[ -e "/sys/dev/block/$1" ] || return 1
	(cd -P "/sys/dev/block/$1" && pwd)
}

# family SYSDIR -> MAJ:MIN of the device, its partitions and, recursively,
# what is stacked on them (device-mapper, RAID): every node through which
# the disk can be mounted or used.
family() (
	cat "$1/dev"
	for p in "$1"/*/partition; do
		[ -e "$p" ] && family "${p%/partition}"
	done
	for h in "$1"/holders/*; do
		[ -e "$h" ] && family "$(cd -P "$h" && pwd)"
	done
	true
)

# disks_of MAJ:MIN -> MAJ:MIN of the whole disks a device lives on
# (a partition's disk; the disks under a device-mapper or RAID device).
disks_of() (
	s=$(sysdir "$1") || exit 0
	[ -e "$s/partition" ] && s=${s%/*}
	under=0
	for sl in "$s"/slaves/*; do
		[ -e "$sl/dev" ] || continue
		under=1
		disks_of "$(cat "$sl/dev")"
	done
	[ $under = 1 ] || cat "$s/dev"
)

# mounts -> "MAJ:MIN MOUNTPOINT SOURCE" for every mounted filesystem.
mounts() {
	if [ -r /proc/self/mountinfo ]; then
		awk '{ src = ""
			for (i = 7; i < NF; i++) if ($i == "-") { src = $(i + 2); break }
			print $3, $5, src }' /proc/self/mountinfo
	fi
	if [ -r /proc/mounts ]; then
		awk '{ print "-", $2, $1 }' /proc/mounts
	fi
}

in_list() { # WORD LIST(newline-separated)
	case "
$2
" in
	*"
$1
"*) return 0 ;;
	esac
	return 1
}

testing_file=0
if [ ! -e "$device" ]; then
	refuse "$device: no such device"
elif [ ! -b "$device" ]; then
	if [ "${FLASH_SD_TESTING:-}" = 1 ] && [ -f "$device" ]; then
		testing_file=1
	else
		refuse "$device is not a block device (a card is /dev/sdX or /dev/mmcblkN; lsblk lists them)"
	fi
fi

if [ $testing_file = 1 ]; then
	name=${device##*/}
	dev=$device
	size=$(wc -c <"$device" | tr -d ' ')
	model="regular file (FLASH_SD_TESTING=1)"
	show_parts=
else
	dev=$(readlink -f "$device")
	mm=$(devnum "$dev") || refuse "$device: cannot read its device number"
	sys=$(sysdir "$mm") || refuse "$device ($mm) has no entry under /sys/dev/block"
	name=${sys##*/}

	if [ -e "$sys/partition" ]; then
		parent=${sys%/*}
		refuse "$device is partition $(cat "$sys/partition") of /dev/${parent##*/}; give the whole card: /dev/${parent##*/}"
	fi
	for sl in "$sys"/slaves/*; do
		[ -e "$sl" ] && refuse "$device ($name) is a device-mapper or RAID device built on other disks, not a card"
	done

	# The running system: the disks under /, /boot... and active swap.
	mine=$(family "$sys")
	while read -r smm mp src; do
		case $mp in
		/ | /boot | /boot/efi | /boot/firmware | /usr | /var) ;;
		*) continue ;;
		esac
		cands=
		[ "$smm" != - ] && cands=$smm
		if [ -b "$src" ]; then cands="$cands $(devnum "$src" || true)"; fi
		for c in $cands; do
			for d in $(disks_of "$c"); do
				if in_list "$d" "$mine"; then
					refuse "$device holds the running system ($mp is mounted from it)"
				fi
			done
		done
	done <<EOF
$(mounts)
EOF
	if [ -r /proc/swaps ]; then
		while read -r src _; do
			[ -b "$src" ] || continue
			if in_list "$(devnum "$src" || true)" "$mine"; then
				refuse "$device holds active swap ($src); swapoff it first"
			fi
		done <<EOF
$(sed 1d /proc/swaps)
EOF
	fi

	# Anything mounted from the disk, its partitions or what is stacked on them.
	while read -r smm mp src; do
		hit=
		if [ "$smm" != - ] && in_list "$smm" "$mine"; then hit=1; fi
		if [ -z "$hit" ] && [ -b "$src" ] && in_list "$(devnum "$src" || true)" "$mine"; then hit=1; fi
		if [ -n "$hit" ]; then
			refuse "$device is mounted: $src on $mp; unmount every partition of it first (udisksctl unmount -b $src, or umount $mp)"
		fi
	done <<EOF
$(mounts)
EOF
	if command -v lsblk >/dev/null 2>&1; then
		mp=$(lsblk -nrpo MOUNTPOINT "$dev" 2>/dev/null | sed '/^$/d' | head -n 1)
		[ -z "$mp" ] || refuse "$device is in use: lsblk shows $mp; unmount it first"
	fi

	if [ "$(cat "$sys/ro" 2>/dev/null || echo 0)" = 1 ]; then
		refuse "$device is read-only (is the card's lock switch on?)"
	fi
	size=$(($(cat "$sys/size") * 512))
	[ "$size" -gt 0 ] || refuse "$device has size 0 (no card in the reader?)"

	vendor=$(cat "$sys/device/vendor" 2>/dev/null || true)
	model=$(cat "$sys/device/model" 2>/dev/null || cat "$sys/device/name" 2>/dev/null || true)
	model=$(printf '%s %s' "$vendor" "$model" | tr -s ' ' | sed 's/^ //;s/ $//')
	if [ -r "$sys/loop/backing_file" ]; then
		model="loop device on $(cat "$sys/loop/backing_file")"
	fi
	if command -v lsblk >/dev/null 2>&1; then
		tran=$(lsblk -dno TRAN "$dev" 2>/dev/null | tr -d ' ' || true)
		[ -z "$tran" ] || model="$model, $tran"
	fi
	if [ "$(cat "$sys/removable" 2>/dev/null || echo 0)" = 1 ]; then
		model="$model, removable"
	fi
	[ -n "$model" ] || model="unknown model"
	show_parts=1
fi

if [ "$size" -gt "$max_bytes" ]; then
	if [ $force_size = 1 ]; then
		warn "$device is $(human "$size"), over the $max_size limit; writing anyway (--force-size)"
	else
		refuse "$device is $(human "$size"), more than the $max_size limit: SD cards are smaller, so it is probably another disk. If it really is the card, add --force-size (or raise --max-size)"
	fi
fi
if [ -n "$image_bytes" ] && [ "$image_bytes" -gt "$size" ]; then
	refuse "the image needs $(human "$image_bytes"); $device has only $(human "$size")"
fi

# --- dd options ----------------------------------------------------------------

ddopts="bs=4M"
dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null || ddopts="bs=4194304"
ddopts="$ddopts conv=fsync"
if dd if=/dev/zero of=/dev/null count=1 status=progress 2>/dev/null; then
	ddopts="$ddopts status=progress"
fi
if [ -n "$dec" ] && dd if=/dev/zero of=/dev/null count=1 iflag=fullblock 2>/dev/null; then
	ddopts="$ddopts iflag=fullblock"
fi
if [ -n "$dec" ]; then
	cmd="$dec '$image' | dd of='$dev' $ddopts"
else
	cmd="dd if='$image' of='$dev' $ddopts"
fi

# --- confirm and write -----------------------------------------------------------

if [ -n "$image_bytes" ]; then
	isize=$(human "$image_bytes")
else
	isize="size known after writing"
fi
say "Image:  $image ($format, $isize)"
if [ "$dev" != "$device" ]; then
	say "Device: $device -> $dev ($name)"
else
	say "Device: $device ($name)"
fi
say "        $model"
say "        $(human "$size")"
if [ -n "$show_parts" ] && command -v lsblk >/dev/null 2>&1; then
	lsblk -o NAME,SIZE,FSTYPE,LABEL "$dev" 2>/dev/null | sed 's/^/        /' || true
fi

if [ $dry_run = 1 ]; then
	say "Dry run: every check passed; would run:"
	say "  $cmd && sync"
	exit 0
fi

[ -w "$dev" ] || die $EX_FAIL "$device: no write permission (run with sudo)"

if [ $yes = 0 ]; then
	say "EVERYTHING ON $device WILL BE ERASED."
	printf 'Type the device name (%s) to write the image, anything else to stop: ' "$name"
	answer=
	read -r answer || true
	[ -t 0 ] || say "$answer"
	case $answer in
	"$name" | "/dev/$name" | "$device") ;;
	*) die $EX_NOTCONFIRMED "not confirmed (answer was not $name); nothing written" ;;
	esac
fi

say "Writing $image to $device..."
if [ -n "$dec" ]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/flash-sd.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM
	# No pipefail in POSIX sh: the decompressor leaves its status in a file.
	# shellcheck disable=SC2086 # $dec and $ddopts are word lists
	if ! { $dec <"$image" || echo "$?" >"$tmp/dec-failed"; } | dd of="$dev" $ddopts; then
		die $EX_FAIL "dd failed writing $device; the card is now incomplete"
	fi
	if [ -e "$tmp/dec-failed" ]; then
		die $EX_FAIL "$tool failed (exit $(cat "$tmp/dec-failed")) decompressing $image; the card is now incomplete"
	fi
else
	# shellcheck disable=SC2086 # $ddopts is a word list
	dd if="$image" of="$dev" $ddopts || die $EX_FAIL "dd failed writing $device; the card is now incomplete"
fi
sync
if [ $testing_file = 0 ] && command -v blockdev >/dev/null 2>&1; then
	# Let the kernel see the new partitions (for provision.sh).
	blockdev --rereadpt "$dev" 2>/dev/null || true
fi
say "Done: $image written to $device. The data partition can now be provisioned (scripts/provision.sh)."
