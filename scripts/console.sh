#!/bin/sh
# Opens the kiosk's serial console with picocom or tio, whichever is
# installed, at the Raspberry Pi's console speed.
#
#   scripts/console.sh [DEVICE] [BAUD]
#
#   scripts/console.sh                       # /dev/ttyUSB0 at 115200
#   scripts/console.sh /dev/ttyACM0
#   scripts/console.sh /dev/serial/by-id/usb-FTDI_... 115200
#
# DEVICE defaults to /dev/ttyUSB0 (a USB-serial adapter), BAUD to 115200
# (8N1, no flow control), the speed of the Pi's console (console=serial0,
# 115200 on the kernel command line, a getty on the same line). Wiring, with
# a 3.3 V adapter only (5 V levels damage the Pi): adapter GND to header pin
# 6, adapter RX to pin 8 (GPIO14, TXD), adapter TX to pin 10 (GPIO15, RXD).
# Press Enter for the login prompt; the `kioskd` CLI does the maintenance.
#
# CONSOLE_TOOL=picocom or CONSOLE_TOOL=tio picks the program when both are
# installed (default: picocom). Install one with `apt-get install picocom`
# (or tio). The device must be readable and writable: on most distributions
# that means membership of the dialout group (sudo usermod -aG dialout
# $USER, then log in again), or sudo.
#
# Exit codes: the program's own status once it runs; 2 for a bad argument
# or a missing or inaccessible device; 127 when neither program is installed.
set -eu

prog=${0##*/}

usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0"
}
die() {
	code=$1
	shift
	printf '%s: %s\n' "$prog" "$*" >&2
	exit "$code"
}

case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
-?*) die 2 "unknown option $1 (usage: $prog [DEVICE] [BAUD])" ;;
esac
[ $# -le 2 ] || die 2 "usage: $prog [DEVICE] [BAUD]"
device=${1:-/dev/ttyUSB0}
baud=${2:-115200}

case $baud in
'' | *[!0-9]*) die 2 "baud rate $baud: want a number such as 115200" ;;
esac

# The program first: without one, the device does not matter.
tool=
case ${CONSOLE_TOOL:-} in
"") for t in picocom tio; do
	if command -v "$t" >/dev/null 2>&1; then
		tool=$t
		break
	fi
done ;;
picocom | tio)
	command -v "$CONSOLE_TOOL" >/dev/null 2>&1 || die 127 "CONSOLE_TOOL=$CONSOLE_TOOL is not installed"
	tool=$CONSOLE_TOOL
	;;
*) die 2 "CONSOLE_TOOL=$CONSOLE_TOOL: want picocom or tio" ;;
esac
if [ -z "$tool" ]; then
	die 127 "neither picocom nor tio is installed; install one (sudo apt-get install picocom, or tio) and run this again"
fi

if [ ! -e "$device" ]; then
	found=
	for d in /dev/serial/by-id/* /dev/ttyUSB* /dev/ttyACM*; do
		[ -e "$d" ] && found="$found $d"
	done
	if [ -n "$found" ]; then
		die 2 "$device: no such device; serial devices here:$found"
	fi
	die 2 "$device: no such device, and no USB serial adapter is visible (/dev/ttyUSB*, /dev/ttyACM*): is it plugged in?"
fi
[ -c "$device" ] || die 2 "$device is not a character device (a serial port is /dev/ttyUSB0, /dev/ttyACM0...)"
if [ ! -r "$device" ] || [ ! -w "$device" ]; then
	die 2 "$device: permission denied; join the dialout group (sudo usermod -aG dialout \$USER, then log in again) or use sudo"
fi

case $tool in
picocom) keys="Ctrl-a then Ctrl-x" ;;
tio) keys="Ctrl-t then q" ;;
esac
printf 'Serial console %s at %s baud (8N1) with %s. Press Enter for a login prompt.\n' "$device" "$baud" "$tool"
printf 'To exit: %s.\n' "$keys"
exec "$tool" -b "$baud" "$device"
