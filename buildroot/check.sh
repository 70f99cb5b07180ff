#!/bin/sh
# Checks the kioskd BR2_EXTERNAL tree (make buildroot-check).
#
#   buildroot/check.sh                offline: shell syntax, files that the
#                                     defconfigs, package and scripts name,
#                                     the defconfigs' KIOSKD symbols, the
#                                     tree's own files, the board scripts
#                                     run on scratch copies
#   buildroot/check.sh -b BR [-o DIR] also against the Buildroot source tree
#                                     BR: load each defconfig into DIR/<name>
#                                     (default: a temporary directory) with
#                                     BR2_EXTERNAL=this tree, which downloads
#                                     nothing, and check what survived
#
# POSIX sh. Prints "ok" or "FAIL" per check; exits 1 if any failed.
#
# shellcheck disable=SC2016 # checkx conditions and $(BR2_...) are literal
set -u

EXT=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$EXT/.." && pwd)
BR=
SCRATCH=

usage() {
	echo "usage: $0 [-b BUILDROOT_DIR [-o SCRATCH_DIR]]" >&2
	exit 2
}
while getopts b:o: opt; do
	case $opt in
	b) BR=$OPTARG ;;
	o) SCRATCH=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
[ -z "$SCRATCH" ] || [ -n "$BR" ] || usage

fails=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	fails=$((fails + 1))
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
# checkx DESCRIPTION 'SHELL CONDITION': the same for a compound condition.
checkx() {
	if eval "$2"; then ok "$1"; else fail "$1"; fi
}
# make_br ARGS...: Buildroot's make, without this make's flags and variables.
make_br() {
	(
		unset MAKEFLAGS MAKELEVEL MFLAGS MAKEOVERRIDES
		make "$@"
	)
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The files of the tree, without this script's scratch or editor leftovers.
find "$EXT" -type f ! -name '*~' ! -name '*.orig' ! -name '*.rej' | sort >"$tmp/files"

# --- shell scripts ------------------------------------------------------------
# Every *.sh and every file that starts with #!/bin/sh, and the shell
# fragments that init scripts source.
while read -r f; do
	case $f in
	*.sh) echo "$f" ;;
	*/rootfs-overlay/etc/default/*) echo "$f" ;;
	*) case $(sed -n 1p "$f") in '#!/bin/sh'*) echo "$f" ;; esac ;;
	esac
done <"$tmp/files" >"$tmp/scripts"
[ -s "$tmp/scripts" ] || fail "no shell scripts found under $EXT"
shells="sh"
command -v busybox >/dev/null 2>&1 && shells="$shells busybox_sh"
busybox_sh() { busybox sh "$@"; }
while read -r f; do
	rel=${f#"$EXT"/}
	for s in $shells; do
		if out=$($s -n "$f" 2>&1); then
			ok "$s -n $rel"
		else
			fail "$s -n $rel: $out"
		fi
	done
	case $f in
	*/etc/default/*) ;;
	*) check "$rel is executable" test -x "$f" ;;
	esac
	if command -v shellcheck >/dev/null 2>&1; then
		if out=$(shellcheck -s sh "$f" 2>&1); then
			ok "shellcheck $rel"
		else
			fail "shellcheck $rel:
$out"
		fi
	fi
done <"$tmp/scripts"

# --- external.desc, Config.in, external.mk -----------------------------------
desc=$EXT/external.desc
name=$(sed -n 's/^name: *//p' "$desc")
check "external.desc: name is KIOSKD" [ "$name" = KIOSKD ]
checkx "external.desc: one name line, one desc line, nothing else" \
	'[ "$(grep -c "^name: " "$desc")" = 1 ] && [ "$(grep -c "^desc: " "$desc")" = 1 ] &&
	[ "$(grep -Evc "^(name|desc): " "$desc")" = 0 ]'

# Kconfig sources: each exists, and each package's Config.in is sourced.
grep '^[[:space:]]*source' "$EXT/Config.in" | sed 's/.*"\(.*\)".*/\1/' >"$tmp/sources"
while read -r s; do
	p=$(echo "$s" | sed 's|^\$BR2_EXTERNAL_KIOSKD_PATH/||')
	case $p in
	/* | \$*) fail "Config.in: source $s is not under \$BR2_EXTERNAL_KIOSKD_PATH" ;;
	*) check "Config.in: source $p exists" test -f "$EXT/$p" ;;
	esac
done <"$tmp/sources"
for c in "$EXT"/package/*/Config.in; do
	p=${c#"$EXT"/}
	check "Config.in sources $p" grep -qx "source \"\$BR2_EXTERNAL_KIOSKD_PATH/$p\"" "$EXT/Config.in"
done
check "external.mk includes package/*/*.mk" \
	grep -qF 'include $(sort $(wildcard $(BR2_EXTERNAL_KIOSKD_PATH)/package/*/*.mk))' "$EXT/external.mk"

# --- the kioskd package --------------------------------------------------------
pc=$EXT/package/kioskd/Config.in
mk=$EXT/package/kioskd/kioskd.mk
check "package/kioskd/Config.in: config BR2_PACKAGE_KIOSKD" grep -q '^config BR2_PACKAGE_KIOSKD$' "$pc"
check "package/kioskd/Config.in: depends on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS" \
	grep -q '^[[:space:]]*depends on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS' "$pc"
check "package/kioskd/Config.in: selects host-go" grep -Eq '^[[:space:]]*select BR2_PACKAGE_HOST_GO([[:space:]]|$)' "$pc"
check "kioskd.mk: golang-package" grep -qx '$(eval $(golang-package))' "$mk"
check "kioskd.mk: KIOSKD_GO_ENV = CGO_ENABLED=0" grep -qx 'KIOSKD_GO_ENV = CGO_ENABLED=0' "$mk"
checkx "kioskd.mk: KIOSKD_BUILD_TARGETS = cmd/kioskd, which exists" \
	'grep -qx "KIOSKD_BUILD_TARGETS = cmd/kioskd" "$mk" && test -f "$TOP/cmd/kioskd/main.go"'
module=$(sed -n 's/^module //p' "$TOP/go.mod")
check "kioskd.mk: KIOSKD_GOMOD = $module (go.mod)" grep -qx "KIOSKD_GOMOD = $module" "$mk"
checkx "kioskd.mk: local site method on the checkout" \
	'grep -qx "KIOSKD_SITE_METHOD = local" "$mk" &&
	grep -qxF "KIOSKD_SITE = \$(realpath \$(BR2_EXTERNAL_KIOSKD_PATH)/..)" "$mk"'
checkx "kioskd.mk: -X main.version and -X main.commit, which cmd/kioskd declares" \
	'grep -q -- "-X main.version=" "$mk" && grep -q -- "-X main.commit=" "$mk" &&
	grep -Eq "^[[:space:]]*(var )?version *= *\"" "$TOP/cmd/kioskd/main.go" &&
	grep -Eq "^[[:space:]]*(var )?commit *= *\"" "$TOP/cmd/kioskd/main.go"'
checkx "kioskd.mk: KIOSKD_LICENSE is Apache-2.0, KIOSKD_LICENSE_FILES names LICENSE, which exists" \
	'grep -Eq "^KIOSKD_LICENSE = Apache-2\.0(,| |\$)" "$mk" &&
	grep -Eq "^KIOSKD_LICENSE_FILES = LICENSE( |\$)" "$mk" && test -f "$TOP/LICENSE"'
check "kioskd.mk: checks for vendor/ (local site method)" grep -q 'vendor/modules.txt' "$mk"
bad=$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\) *[:+?]*=.*/\1/p; s/^define \([A-Za-z0-9_]*\)$/\1/p' "$mk" | grep -v '^KIOSKD_')
check "kioskd.mk: every variable is KIOSKD_* ${bad:+(not: $bad)}" [ -z "$bad" ]
toml=$EXT/package/kioskd/kioskd.toml
checkx "kioskd.mk installs kioskd.toml, with one @KIOSKD_BOARD@" \
	'grep -q "KIOSKD_PKGDIR)/kioskd.toml" "$mk" && [ "$(grep -c "@KIOSKD_BOARD@" "$toml")" = 1 ]'
checkx "kioskd.toml: data_dir, control socket and secret on /data" \
	'grep -q "^data_dir = \"/data/" "$toml" && grep -q "^socket = \"/data/" "$toml" &&
	grep -q "^secret_file = \"/data/" "$toml"'

# Symbols the tree declares.
grep -h '^\(menu\)\{0,1\}config BR2_' "$EXT/Config.in" "$EXT"/package/*/Config.in |
	sed 's/^[a-z]* //' | sort -u >"$tmp/declared"

# --- references to files of the tree -------------------------------------------
# Every $(BR2_EXTERNAL_KIOSKD_PATH)/... or $BR2_EXTERNAL_KIOSKD_PATH/... in the
# tree's files exists; no other BR2_EXTERNAL_*_PATH is named.
grep -v -e '/README.md$' -e '/check.sh$' "$tmp/files" >"$tmp/nodoc"
while read -r f; do
	grep -o 'BR2_EXTERNAL_[A-Za-z0-9_]*_PATH' "$f" | sort -u | while read -r v; do
		[ "$v" = BR2_EXTERNAL_KIOSKD_PATH ] || echo "${f#"$EXT"/}: $v"
	done
	grep -o 'BR2_EXTERNAL_KIOSKD_PATH[)}]\{0,1\}/[A-Za-z0-9._/-]*' "$f" |
		sed 's|^BR2_EXTERNAL_KIOSKD_PATH[)}]\{0,1\}/||; s|/*$||' | sort -u |
		while read -r p; do printf '%s\t%s\n' "${f#"$EXT"/}" "$p"; done >>"$tmp/refs"
done <"$tmp/nodoc" >"$tmp/badnames"
check "only BR2_EXTERNAL_KIOSKD_PATH is named $(tr '\n' ' ' <"$tmp/badnames")" [ ! -s "$tmp/badnames" ]
[ -s "$tmp/refs" ] || fail "no \$(BR2_EXTERNAL_KIOSKD_PATH) references found"
sort -u "$tmp/refs" | while IFS="$(printf '\t')" read -r f p; do
	# ".." is the checkout (the package's site).
	if [ -e "$EXT/$p" ]; then ok "$f: \$(BR2_EXTERNAL_KIOSKD_PATH)/$p exists"; else echo "FAIL $f: \$(BR2_EXTERNAL_KIOSKD_PATH)/$p does not exist"; fi
done >"$tmp/refcheck"
cat "$tmp/refcheck"
fails=$((fails + $(grep -c '^FAIL' "$tmp/refcheck")))

# --- defconfigs -------------------------------------------------------------------
# cfgval FILE SYMBOL: the value, without the quotes of a string.
cfgval() { sed -n "s/^$2=//p" "$1" | sed 's/^"\(.*\)"$/\1/'; }
board=$EXT/board/kiosk
cmdline_console=$(tr ' ' '\n' <"$board/cmdline.txt" | sed -n 's/^console=\([^,]*\).*/\1/p' | tail -n 1)
set -- "$EXT"/configs/*_defconfig
[ -f "$1" ] || fail "no defconfigs in $EXT/configs"
for dc in "$@"; do
	n=$(basename "$dc")
	bad=$(grep -v '^BR2_[A-Za-z0-9_]*=.' "$dc" | grep -v '^# BR2_[A-Za-z0-9_]* is not set$' | grep -v '^#' | grep -v '^$')
	check "$n: only BR2_*=value, '# BR2_* is not set' and comment lines ${bad:+(not: $bad)}" [ -z "$bad" ]
	sed -n 's/^\(BR2_[A-Za-z0-9_]*\)=.*/\1/p; s/^# \(BR2_[A-Za-z0-9_]*\) is not set$/\1/p' "$dc" | sort >"$tmp/syms"
	dup=$(uniq -d "$tmp/syms" | tr '\n' ' ')
	check "$n: no symbol set twice ${dup:+($dup)}" [ -z "$dup" ]
	# Any symbol that looks like ours must be one the tree declares.
	grep -Ei 'kiosk|koisk|kisok' "$tmp/syms" >"$tmp/ours" || true
	undeclared=$(grep -vxF -f "$tmp/declared" "$tmp/ours" | tr '\n' ' ')
	check "$n: KIOSKD symbols are declared by the tree ${undeclared:+(unknown: $undeclared)}" [ -z "$undeclared" ]
	check "$n: BR2_PACKAGE_KIOSKD=y" grep -qx 'BR2_PACKAGE_KIOSKD=y' "$dc"
	check "$n: BusyBox init" grep -qx 'BR2_INIT_BUSYBOX=y' "$dc"
	check "$n: read-only root" grep -qx '# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is not set' "$dc"
	check "$n: NTP" grep -qx 'BR2_PACKAGE_NTP=y' "$dc"
	check "$n: no watchdog daemon (kioskd feeds the watchdog)" \
		test -z "$(grep -Ex 'BR2_PACKAGE_(BUSYBOX_)?WATCHDOG=y' "$dc")"
	check "$n: linux fragment enables bcm2835_wdt" grep -qx 'CONFIG_BCM2835_WDT=y' "$board/linux.fragment"
	# A/B updates: RAUC with its D-Bus service, U-Boot, fw_printenv.
	for sym in BR2_PACKAGE_RAUC BR2_PACKAGE_RAUC_DBUS BR2_PACKAGE_DBUS BR2_PACKAGE_LIBUBOOTENV \
		BR2_TARGET_UBOOT BR2_PACKAGE_HOST_RAUC \
		BR2_PACKAGE_HOST_UBOOT_TOOLS BR2_LINUX_KERNEL_INSTALL_TARGET; do
		check "$n: $sym=y" grep -qx "$sym=y" "$dc"
	done
	ub=$(cfgval "$dc" BR2_TARGET_UBOOT_BOARD_DEFCONFIG)
	if grep -qx 'BR2_aarch64=y' "$dc"; then want=rpi_arm64; else want=rpi_3_32b; fi
	check "$n: U-Boot board defconfig $want ($ub)" [ "$ub" = "$want" ]
	rootsize=$(cfgval "$dc" BR2_TARGET_ROOTFS_EXT2_SIZE)
	check "$n: rootfs size $rootsize is the slot size of genimage.cfg.in" \
		grep -q "^[[:space:]]*size = $rootsize\$" "$board/genimage.cfg.in"
	for sym in BR2_ROOTFS_OVERLAY BR2_ROOTFS_POST_BUILD_SCRIPT BR2_ROOTFS_POST_IMAGE_SCRIPT \
		BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE BR2_PACKAGE_RPI_FIRMWARE_CMDLINE_FILE \
		BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES BR2_TARGET_UBOOT_CONFIG_FRAGMENT_FILES; do
		v=$(cfgval "$dc" $sym)
		case $v in
		'$(BR2_EXTERNAL_KIOSKD_PATH)/board/kiosk/'*) ok "$n: $sym in board/kiosk" ;;
		*) fail "$n: $sym=\"$v\": want \$(BR2_EXTERNAL_KIOSKD_PATH)/board/kiosk/..." ;;
		esac
	done
	port=$(cfgval "$dc" BR2_TARGET_GENERIC_GETTY_PORT)
	checkx "$n: getty on $port, the kernel console of cmdline.txt ($cmdline_console)" \
		'[ -n "$port" ] && [ "$port" = "$cmdline_console" ]'
	check "$n: getty on $port, the kernel console of boot.cmd's bootargs" \
		grep -q "^setenv bootargs \"console=$port," "$board/boot.cmd"
	fw=$(cfgval "$dc" BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE | sed 's|^$(BR2_EXTERNAL_KIOSKD_PATH)/||')
	kernel=$(sed -n 's/^kernel=//p' "$EXT/$fw" 2>/dev/null)
	check "$n: $fw starts U-Boot (kernel=$kernel)" [ "$kernel" = u-boot.bin ]
	# The slot's kernel: Buildroot's default image for the architecture,
	# which boot.cmd loads from /boot.
	if grep -qx 'BR2_aarch64=y' "$dc"; then want=Image; else want=zImage; fi
	check "$n: boot.cmd loads /boot/$want from the slot" grep -q "/boot/$want; then\$" "$board/boot.cmd"
done

# --- board files --------------------------------------------------------------------
gi=$board/genimage.cfg.in
check "genimage.cfg.in: @BOOT_FILES@ line for post-image.sh" grep -qx '@BOOT_FILES@' "$gi"
parts=$(sed -n 's/^[[:space:]]*partition \([A-Za-z0-9_]*\) {.*/\1/p' "$gi" | tr '\n' ' ')
check "genimage.cfg.in: partitions boot rootfsA rootfsB data ($parts)" [ "$parts" = "boot rootfsA rootfsB data " ]
# The image of each partition, in order: "boot.vfat rootfs.ext4 rootfs.ext4 data.ext4".
pimages=$(awk '/^[[:space:]]*partition /{p=1} p && /image = /{gsub(/[" ]/,""); sub(/.*=/,""); printf "%s ", $0; p=0}' "$gi")
check "genimage.cfg.in: partition images boot.vfat, rootfs.ext4 in both slots, data.ext4 ($pimages)" \
	[ "$pimages" = "boot.vfat rootfs.ext4 rootfs.ext4 data.ext4 " ]
checkx "genimage.cfg.in: both slots the same size" \
	'[ "$(sed -n "/partition rootfsA/,/}/s/.*size = //p" "$gi")" = "$(sed -n "/partition rootfsB/,/}/s/.*size = //p" "$gi")" ] &&
	[ -n "$(sed -n "/partition rootfsA/,/}/s/.*size = //p" "$gi")" ]'
check "post-image.sh uses genimage.cfg.in" grep -q 'genimage.cfg.in' "$board/post-image.sh"
ov=$board/rootfs-overlay
check "fstab: /data is the fourth partition" grep -q '^/dev/mmcblk0p4[[:space:]]*/data[[:space:]]' "$ov/etc/fstab"
checkx "cmdline.txt: root is the second partition, mounted read-only" \
	'grep -q "root=/dev/mmcblk0p2 " "$board/cmdline.txt" && grep -q " ro " "$board/cmdline.txt"'

# --- A/B updates: U-Boot, its environment, RAUC's slots ----------------------------
bc=$board/boot.cmd
uf=$board/uboot.fragment
sc=$board/rauc/system.conf.in
for f in "$bc" "$uf" "$sc" "$board/mkbundle.sh" "$ov/etc/fw_env.config" "$ov/etc/init.d/S31rauc" \
	"$ov/etc/default/kioskd-health-gate"; do
	check "${f#"$EXT"/} exists" test -f "$f"
done
checkx "post-image.sh makes boot.scr from boot.cmd with mkimage" \
	'grep -q "mkimage .*-T script" "$board/post-image.sh" && grep -q "/boot.cmd\" \"\$BINARIES_DIR/boot.scr\"" "$board/post-image.sh"'
check "post-image.sh puts boot.scr on the boot partition" grep -q '"$BINARIES_DIR/boot.scr"; do' "$board/post-image.sh"
check "post-image.sh runs mkbundle.sh" grep -q '"$BOARD_DIR/mkbundle.sh" "$BINARIES_DIR"' "$board/post-image.sh"
check "post-build.sh writes system.conf from rauc/system.conf.in" grep -q 'rauc/system.conf.in' "$board/post-build.sh"
check "uboot.fragment: environment in MMC" \
	grep -qx 'CONFIG_ENV_IS_IN_MMC=y' "$uf"
checkx "uboot.fragment: redundant environment, not in FAT" \
	'grep -qx "CONFIG_SYS_REDUNDAND_ENVIRONMENT=y" "$uf" && grep -qx "# CONFIG_ENV_IS_IN_FAT is not set" "$uf"'
checkx "uboot.fragment: U-Boot runs boot.scr from the boot partition" \
	'grep -q "^CONFIG_BOOTCOMMAND=\"load mmc 0:1 \${scriptaddr} boot.scr" "$uf"'
# boot.cmd: RAUC's uboot backend variables, a try taken and saved before
# the kernel is loaded, both reset when none is left.
for v in BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; do
	check "boot.cmd: defaults $v" grep -q "^test -n \"\${$v}\" || setenv $v " "$bc"
done
check "boot.cmd: BOOT_ORDER defaults to \"A B\", tries to 3" \
	[ "$(grep -c '^test -n "${BOOT_[A-Z_]*}" || setenv BOOT_[A-Z_]* \("A B"\|3\)$' "$bc")" = 3 ]
check "boot.cmd: walks BOOT_ORDER" grep -q '^for s in ${BOOT_ORDER}; do$' "$bc"
for x in A B; do
	check "boot.cmd: slot $x takes a try" grep -q "setexpr BOOT_${x}_LEFT \${BOOT_${x}_LEFT} - 1" "$bc"
done
checkx "boot.cmd: saveenv before the kernel is loaded" \
	'[ "$(grep -n "^saveenv$" "$bc" | tail -n 1 | cut -d: -f1)" -lt "$(grep -n "load mmc 0:\${kiosk_part} \${kernel_addr_r}" "$bc" | head -n 1 | cut -d: -f1)" ]'
checkx "boot.cmd: no try left: both back to 3, saveenv, reset" \
	'sed -n "/^if test -z \"\${kiosk_slot}\"; then/,/^fi/p" "$bc" | tr -d "\t" >"$tmp/fallback" &&
	grep -qx "setenv BOOT_A_LEFT 3" "$tmp/fallback" && grep -qx "setenv BOOT_B_LEFT 3" "$tmp/fallback" &&
	grep -qx saveenv "$tmp/fallback" && grep -qx reset "$tmp/fallback"'
check "boot.cmd: bootargs name the slot, read-only root" \
	grep -q '^setenv bootargs ".* root=/dev/mmcblk0p${kiosk_part} .*\<ro\>.* rauc.slot=${kiosk_slot}"$' "$bc"
# The slots: system.conf, boot.cmd and genimage.cfg.in agree.
for x in A B; do
	dev=$(awk -v b="$x" '/^\[slot\./{d=""} /^device=/{d=substr($0,8)} /^bootname=/{if (substr($0,10)==b) print d}' "$sc")
	part=$(sed -n "/setenv kiosk_slot $x\$/{n;s/.*setenv kiosk_part //p;}" "$bc")
	gp=$(sed -n 's/^[[:space:]]*partition \([A-Za-z0-9_]*\) {.*/\1/p' "$gi" | sed -n "${part:-0}p")
	checkx "slot $x: system.conf $dev, boot.cmd mmc 0:$part, genimage partition $part ($gp)" \
		'[ -n "$part" ] && [ "$dev" = "/dev/mmcblk0p$part" ] && [ "$gp" = "rootfs$x" ]'
done
checkx "system.conf: two slots, uboot backend, keyring, /data/rauc, mountprefix /run/rauc" \
	'[ "$(grep -c "^\[slot\.rootfs\.[01]\]$" "$sc")" = 2 ] && [ "$(grep -c "^\[slot\." "$sc")" = 2 ] &&
	grep -qx "bootloader=uboot" "$sc" && grep -qx "path=/etc/rauc/keyring.pem" "$sc" &&
	grep -qx "data-directory=/data/rauc" "$sc" && grep -qx "mountprefix=/run/rauc" "$sc" &&
	grep -qx "compatible=@COMPATIBLE@" "$sc"'
checkx "system.conf: the pre-install handler is the overlay's, executable" \
	'h=$(sed -n "/^\[handlers\]$/,/^\[/s/^pre-install=//p" "$sc") && [ -n "$h" ] && [ -x "$ov$h" ]'
datadev=$(awk '$1 !~ /^#/ && $2 == "/data" { print $1 }' "$ov/etc/fstab")
check "fstab: the data partition $datadev is not a RAUC slot" test -z "$(grep -x "device=$datadev" "$sc")"
check "fstab: the data partition $datadev is genimage's data" \
	[ "$(sed -n 's/^[[:space:]]*partition \([A-Za-z0-9_]*\) {.*/\1/p' "$gi" | sed -n "${datadev##*p}p")" = data ]
# fw_env.config and U-Boot's environment: same offsets and size, both
# copies inside the raw area before the first partition.
hex() { printf '%d' "$1" 2>/dev/null; }
envsize=$(hex "$(sed -n 's/^CONFIG_ENV_SIZE=//p' "$uf")")
off1=$(hex "$(sed -n 's/^CONFIG_ENV_OFFSET=//p' "$uf")")
off2=$(hex "$(sed -n 's/^CONFIG_ENV_OFFSET_REDUND=//p' "$uf")")
grep -v '^#' "$ov/etc/fw_env.config" | awk 'NF' >"$tmp/fwenv"
{
	read -r d1 o1 s1
	read -r d2 o2 s2
} <"$tmp/fwenv"
if [ "$(wc -l <"$tmp/fwenv")" -eq 2 ] && [ "$d1" = /dev/mmcblk0 ] && [ "$d2" = /dev/mmcblk0 ] &&
	[ "$(hex "$o1")" = "$off1" ] && [ "$(hex "$o2")" = "$off2" ] &&
	[ "$(hex "$s1")" = "$envsize" ] && [ "$(hex "$s2")" = "$envsize" ]; then
	ok "fw_env.config: /dev/mmcblk0 at CONFIG_ENV_OFFSET ($o1) and CONFIG_ENV_OFFSET_REDUND ($o2), CONFIG_ENV_SIZE ($s1) each"
else
	fail "fw_env.config ($(tr '\n' ';' <"$tmp/fwenv")) is not uboot.fragment's environment: offsets $off1, $off2, size $envsize"
fi
bootoff=$(sed -n '/partition boot {/,/}/s/.*offset = \([0-9]*\)M$/\1/p' "$gi")
checkx "environment copies ($off1, $off2, $envsize bytes) apart, after the MBR, before the boot partition (${bootoff}M)" \
	'[ -n "$bootoff" ] && [ "$off1" -ge 4096 ] && [ $((off1 + envsize)) -le "$off2" ] &&
	[ $((off2 + envsize)) -le $((bootoff * 1048576)) ]'
# The overlays boot.cmd applies are the ones post-build.sh puts in /boot.
bo=$(sed -n 's/^[[:space:]]*for o in \(.*\); do$/\1/p' "$bc")
po=$(sed -n 's/^overlays="\(.*\)"$/\1/p' "$board/post-build.sh")
check "boot.cmd's overlays ($bo) are post-build.sh's ($po)" [ -n "$bo" ] && [ "$bo" = "$po" ]
dtov=$(sed -n 's/^dtoverlay=//p' "$board"/config_*.txt | sort -u | tr '\n' ' ')
check "boot.cmd applies config.txt's overlays ($dtov)" [ "$dtov" = "$bo " ]

it=$ov/etc/inittab
check "inittab: respawns /usr/sbin/kioskd-run" grep -qx '::respawn:/usr/sbin/kioskd-run' "$it"
check "inittab: stops kioskd at shutdown" grep -qx '::shutdown:/usr/sbin/kioskd-run stop' "$it"
check "inittab: mounts /data before the init scripts" \
	[ "$(grep -n 'kiosk-mount-data$' "$it" | cut -d: -f1)" -lt "$(grep -n 'init.d/rcS$' "$it" | cut -d: -f1)" ]
check "inittab: a GENERIC_SERIAL getty line for post-build.sh" grep -q '# GENERIC_SERIAL$' "$it"
check "inittab: root never remounted read-write" test -z "$(grep -v '^#' "$it" | grep 'remount,rw')"
check "inittab: the health gate runs once per boot" grep -qx '::once:/usr/sbin/kioskd-health-gate' "$it"
check "init.d/S31rauc starts rauc service after S30dbus (the dbus package's)" \
	grep -q 'start-stop-daemon -S .*-x "$DAEMON" -- service' "$ov/etc/init.d/S31rauc"
checkx "default/kioskd-health-gate: HEALTH_MIN_UP and HEALTH_DEADLINE, in seconds, commented" \
	'for v in HEALTH_MIN_UP HEALTH_DEADLINE; do grep -q "^$v=[0-9][0-9]*$" "$ov/etc/default/kioskd-health-gate" &&
	grep -B1 "^$v=" "$ov/etc/default/kioskd-health-gate" | head -n 1 | grep -q "^#" || exit 1; done'
grep -o '/usr/sbin/[a-z-]*' "$it" | sort -u | while read -r s; do
	if [ -x "$ov$s" ]; then
		ok "inittab: $s is in the overlay"
	elif [ "$s" = /usr/sbin/kioskd-health-gate ]; then
		# Written on its own branch (issue 15): post-build.sh refuses an
		# image without it.
		echo "skip inittab: $s is not in the overlay yet"
	else
		echo "FAIL inittab: $s is not in the overlay"
	fi
done >"$tmp/itcheck"
cat "$tmp/itcheck"
fails=$((fails + $(grep -c '^FAIL' "$tmp/itcheck")))

# --- no Buildroot source in the checkout ---------------------------------------------
found=
for p in Config.in.legacy Makefile.legacy support toolchain arch fs system utils linux/Config.in \
	package/Makefile.in package/pkg-generic.mk package/pkg-golang.mk package/busybox docs/manual; do
	[ ! -e "$EXT/$p" ] || found="$found buildroot/$p"
	[ ! -e "$TOP/$p" ] || found="$found $p"
done
check "no Buildroot source tree in the checkout ${found:+(found:$found)}" [ -z "$found" ]

# --- the scripts, run on scratch copies ------------------------------------------------
# The target's shell is BusyBox ash: run the scripts with it when the
# host has it.
run_sh=$tmp/run-sh
if command -v busybox >/dev/null 2>&1; then
	printf '#!/bin/sh\nexec busybox sh "$@"\n' >"$run_sh"
else
	printf '#!/bin/sh\nexec sh "$@"\n' >"$run_sh"
fi
chmod +x "$run_sh"

# post-build.sh on a copy of the overlay, with a .config of the rpi3 image.
t=$tmp/target
mkdir -p "$t/usr/bin" "$t/etc/kioskd" "$t/boot"
cp -R "$ov/." "$t/"
printf '#!/bin/sh\n' >"$t/usr/bin/kioskd"
chmod +x "$t/usr/bin/kioskd"
# What the packages put there: the health gate (its own branch, until it
# is in the overlay), the kernel and device trees (BR2_LINUX_KERNEL_INSTALL_TARGET).
if [ ! -e "$t/usr/sbin/kioskd-health-gate" ]; then
	printf '#!/bin/sh\n' >"$t/usr/sbin/kioskd-health-gate"
fi
for f in zImage bcm2710-rpi-3-b.dtb bcm2710-rpi-3-b-plus.dtb bcm2710-rpi-cm3.dtb; do
	echo "$f" >"$t/boot/$f"
done
bin=$tmp/post-build-images
mkdir -p "$bin/rpi-firmware/overlays"
echo disable-bt >"$bin/rpi-firmware/overlays/disable-bt.dtbo"
printf -- '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n' >"$tmp/keyring.pem"
sed 's/@KIOSKD_BOARD@/rpi3/' "$toml" >"$t/etc/kioskd/kioskd.toml"
{
	grep -v '^#' "$EXT/configs/kiosk_rpi3_defconfig"
	echo 'BR2_TARGET_GENERIC_GETTY=y'
	echo 'BR2_TARGET_GENERIC_GETTY_BAUDRATE="115200"'
	echo 'BR2_TARGET_GENERIC_GETTY_TERM="vt100"'
	echo 'BR2_TARGET_GENERIC_GETTY_OPTIONS=""'
	echo 'BR2_PACKAGE_KIOSKD_BOARD="rpi3"'
} >"$tmp/dotconfig"
if out=$(
	unset KIOSKD_RAUC_CERT
	BR2_CONFIG=$tmp/dotconfig BINARIES_DIR=$bin KIOSKD_RAUC_KEYRING=$tmp/keyring.pem "$run_sh" "$board/post-build.sh" "$t" 2>&1
); then
	ok "post-build.sh runs on a scratch target"
	checkx "post-build.sh: /etc/rauc/system.conf for kioskd-rpi3, keyring from KIOSKD_RAUC_KEYRING" \
		'grep -qx "compatible=kioskd-rpi3" "$t/etc/rauc/system.conf" && cmp -s "$tmp/keyring.pem" "$t/etc/rauc/keyring.pem"'
	checkx "post-build.sh: /boot has the overlay and U-Boot's device tree names" \
		'test -f "$t/boot/overlays/disable-bt.dtbo" && [ "$(cat "$t/boot/broadcom/bcm2837-rpi-3-b.dtb")" = bcm2710-rpi-3-b.dtb ] &&
		[ "$(cat "$t/boot/bcm2837-rpi-3-b-plus.dtb")" = bcm2710-rpi-3-b-plus.dtb ] &&
		[ "$(cat "$t/boot/bcm2837-rpi-cm3-io3.dtb")" = bcm2710-rpi-cm3.dtb ]'
	out=$(
		unset KIOSKD_RAUC_KEYRING KIOSKD_RAUC_CERT
		BR2_CONFIG=$tmp/dotconfig BINARIES_DIR=$bin "$run_sh" "$board/post-build.sh" "$t" 2>&1
	)
	checkx "post-build.sh: without a keyring, no keyring.pem and a warning" \
		'[ ! -e "$t/etc/rauc/keyring.pem" ] && echo "$out" | grep -q "installs no update bundle"'
	check "post-build.sh: getty on ttyAMA0 at 115200 in inittab" \
		grep -qx 'ttyAMA0::respawn:/sbin/getty -L ttyAMA0 115200 vt100 # GENERIC_SERIAL' "$t/etc/inittab"
	checkx "post-build.sh: /data mount point, clock floor" \
		'test -d "$t/data" && grep -q "^[0-9][0-9]*\$" "$t/etc/kioskd/build-time"'
else
	fail "post-build.sh on a scratch target: $out"
fi

# kioskd-run: which config it picks, and what it runs. A stand-in kioskd
# records its arguments.
kr=$ov/usr/sbin/kioskd-run
fake=$tmp/kioskd
cat >"$fake" <<EOF
#!/bin/sh
case \$1 in
config) [ -f "\$3" ] && [ ! -e "$tmp/badconfig" ] && echo "ok \$3" && exit 0; echo "config \$3: bad"; exit 1 ;;
run) echo "\$*" >"$tmp/ran"; exit 0 ;;
esac
EOF
chmod +x "$fake"
mkdir -p "$tmp/data"
echo 'kind = "rpi3"' >"$tmp/etc.toml"
echo 0 >"$tmp/build-time"
kr_env() {
	env KIOSKD="$fake" KIOSKD_DATA="$1" KIOSKD_IMAGE_CONFIG="$tmp/etc.toml" KIOSKD_BUILD_TIME="$tmp/build-time" \
		KIOSKD_PIDFILE="$tmp/pid" KIOSKD_RETRY=0 KIOSKD_CLOCK_WAIT=0 "$run_sh" "$kr" "$2"
}
check "kioskd-run config: /etc/kioskd/kioskd.toml without /data/kioskd.toml" \
	[ "$(kr_env "$tmp/data" config)" = "$tmp/etc.toml" ]
echo 'kind = "rpi3"' >"$tmp/data/kioskd.toml"
check "kioskd-run config: /data/kioskd.toml takes precedence" \
	[ "$(kr_env "$tmp/data" config)" = "$tmp/data/kioskd.toml" ]
if kr_env "$tmp/data" run >/dev/null 2>"$tmp/err"; then
	fail "kioskd-run with $tmp/data not a mount point: started"
elif grep -q 'not mounted' "$tmp/err" && [ ! -e "$tmp/ran" ]; then
	ok "kioskd-run: refuses while /data is not mounted"
else
	fail "kioskd-run with /data not mounted: $(cat "$tmp/err")"
fi
# "/" is always a mount point; its /kioskd.toml, if any, would win.
if [ ! -e /kioskd.toml ]; then
	kr_env / run >/dev/null 2>"$tmp/err"
	checkx "kioskd-run: execs kioskd run -config /etc/kioskd/kioskd.toml, pid file written" \
		'[ "$(cat "$tmp/ran" 2>/dev/null)" = "run -config $tmp/etc.toml" ] && [ -s "$tmp/pid" ]'
	rm -f "$tmp/ran"
	touch "$tmp/badconfig"
	if kr_env / run >/dev/null 2>"$tmp/err"; then
		fail "kioskd-run started kioskd on a config that kioskd config check refused"
	else
		checkx "kioskd-run: a refused config is reported, kioskd not started" \
			'grep -q bad "$tmp/err" && [ ! -e "$tmp/ran" ]'
	fi
	rm -f "$tmp/badconfig" "$tmp/pid"
fi
check "kioskd-run stop without a running kioskd" kr_env / stop

# post-image.sh with genimage, mkimage and the filesystem tools, when the
# host has them (Buildroot builds its own): a scratch image of the four
# partitions; no signing key is set, so it makes no bundle.
if command -v genimage >/dev/null && command -v mke2fs >/dev/null &&
	command -v mkdosfs >/dev/null && command -v mcopy >/dev/null && command -v mkimage >/dev/null; then
	b=$tmp/images
	mkdir -p "$b/rpi-firmware/overlays" "$tmp/build"
	cp "$board/config_rpi3.txt" "$b/rpi-firmware/config.txt"
	cp "$board/cmdline.txt" "$b/rpi-firmware/cmdline.txt"
	for f in rpi-firmware/start.elf rpi-firmware/fixup.dat rpi-firmware/bootcode.bin \
		rpi-firmware/overlays/disable-bt.dtbo bcm2710-rpi-3-b.dtb u-boot.bin; do
		echo "$f" >"$b/$f"
	done
	mkdir -p "$tmp/rootfs/etc"
	echo kiosk >"$tmp/rootfs/etc/hostname"
	mke2fs -q -t ext4 -d "$tmp/rootfs" "$b/rootfs.ext4" 8M >/dev/null 2>&1
	if out=$(
		unset KIOSKD_RAUC_KEY KIOSKD_RAUC_CERT
		PATH="$PATH:/sbin:/usr/sbin" BUILD_DIR=$tmp/build TARGET_DIR=$t "$run_sh" "$board/post-image.sh" "$b" 2>&1
	); then
		ok "post-image.sh writes sdcard.img with genimage $(genimage --version 2>/dev/null | head -n 1)"
		# The MBR's four entries: partition type bytes at 450, 466, 482, 498.
		types=
		for off in 450 466 482 498; do
			types="$types$(od -A n -t x1 -j $off -N 1 "$b/sdcard.img" | tr -d ' ')"
		done
		check "sdcard.img: MBR partitions vfat, linux, linux, linux ($types)" [ "$types" = 0c838383 ]
		start1=$(od -A n -t u4 -j 454 -N 4 "$b/sdcard.img" | tr -d ' ')
		check "sdcard.img: the boot partition starts at 4 MiB, after U-Boot's environment (sector $start1)" [ "$start1" = 8192 ]
		checkx "post-image.sh: boot.scr made, no bundle without a key, and says so" \
			'test -s "$b/boot.scr" && ! ls "$b"/*.raucb >/dev/null 2>&1 && echo "$out" | grep -q "skip: KIOSKD_RAUC_KEY"'
		checkx "data.ext4: ext4 labelled kioskdata" \
			'PATH="$PATH:/sbin:/usr/sbin" dumpe2fs -h "$b/data.ext4" 2>/dev/null | grep -q "volume name:.*kioskdata"'
	else
		fail "post-image.sh on scratch images: $(echo "$out" | tail -n 5)"
	fi
else
	echo "skip post-image.sh run: genimage, mke2fs, mkdosfs, mcopy or mkimage not installed"
fi

# mkbundle.sh, post-image.sh's last step, with a throwaway key and host
# rauc (Buildroot builds its own host-rauc): the bundle must verify
# against the certificate and carry the target's compatible.
mb=$board/mkbundle.sh
mbt=$tmp/bundle
mkdir -p "$mbt/images" "$mbt/rootfs"
out=$(
	unset KIOSKD_RAUC_KEY KIOSKD_RAUC_CERT
	TARGET_DIR=$t "$run_sh" "$mb" "$mbt/images" 2>&1
)
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q "skip: KIOSKD_RAUC_KEY and KIOSKD_RAUC_CERT are not set"; then
	ok "mkbundle.sh: without KIOSKD_RAUC_KEY/CERT it skips, saying so, exit 0"
else
	fail "mkbundle.sh without a key (exit $rc): $out"
fi
if (
	unset KIOSKD_RAUC_CERT
	KIOSKD_RAUC_KEY=$tmp/nokey TARGET_DIR=$t "$run_sh" "$mb" "$mbt/images" >/dev/null 2>&1
); then
	fail "mkbundle.sh: a key without a certificate did not fail"
else
	ok "mkbundle.sh: a key without a certificate fails"
fi
if command -v rauc >/dev/null && command -v mksquashfs >/dev/null && command -v openssl >/dev/null &&
	command -v mke2fs >/dev/null; then
	# Not extendedKeyUsage=codeSigning: rauc 1.8 refuses it.
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/O=kioskd check/CN=kioskd check signing" \
		-keyout "$mbt/key.pem" -out "$mbt/cert.pem" >/dev/null 2>&1
	# Random content: rauc refuses a squashfs of one block.
	dd if=/dev/urandom of="$mbt/rootfs/noise" bs=1024 count=64 2>/dev/null
	PATH="$PATH:/sbin:/usr/sbin" mke2fs -q -t ext4 -d "$mbt/rootfs" "$mbt/images/rootfs.ext4" 4M >/dev/null 2>&1
	if out=$(KIOSKD_RAUC_KEY=$mbt/key.pem KIOSKD_RAUC_CERT=$mbt/cert.pem KIOSKD_RAUC_KEYRING=$mbt/cert.pem \
		KIOSKD_BUNDLE_VERSION=1.2.3 TARGET_DIR=$t "$run_sh" "$mb" "$mbt/images" 2>&1); then
		ok "mkbundle.sh signs a bundle with $(rauc --version 2>/dev/null | head -n 1)"
		rauc info --keyring="$mbt/cert.pem" "$mbt/images/kioskd-rpi3.raucb" >"$mbt/info" 2>&1
		checkx "kioskd-rpi3.raucb: verifies, compatible kioskd-rpi3, verity, version 1.2.3, image rootfs.ext4" \
			'grep -q "Verified inline signature" "$mbt/info" && grep -q "Compatible:.*.kioskd-rpi3.$" "$mbt/info" &&
			grep -q "Bundle Format:.*verity" "$mbt/info" && grep -q "Version:.*.1\.2\.3.$" "$mbt/info" &&
			grep -q "Filename:.*rootfs\.ext4" "$mbt/info"'
		check "mkbundle.sh leaves no work directory" test ! -e "$mbt/images/rauc-bundle.tmp"
		# The image has no unsquashfs: kioskd update's rauc info must
		# read a verity bundle's version without it.
		mkdir -p "$mbt/nosquash"
		ln -sf "$(command -v rauc)" "$mbt/nosquash/rauc"
		checkx "rauc info --output-format=json of the bundle, no unsquashfs on PATH: version 1.2.3" \
			'env -i PATH="$mbt/nosquash" HOME="$mbt" rauc --keyring="$mbt/cert.pem" info --output-format=json \
				"$mbt/images/kioskd-rpi3.raucb" 2>/dev/null | grep -q "\"version\":\"1\.2\.3\""'
	else
		fail "mkbundle.sh with a throwaway key: $(echo "$out" | tail -n 5)"
	fi
else
	echo "skip mkbundle.sh run: rauc, mksquashfs, openssl or mke2fs not installed"
fi

# --- against a Buildroot tree ----------------------------------------------------------
if [ -n "$BR" ]; then
	BR=$(cd "$BR" 2>/dev/null && pwd) || BR=
	if [ -z "$BR" ] || [ ! -f "$BR/Makefile" ] || [ ! -f "$BR/package/pkg-golang.mk" ]; then
		fail "-b: not a Buildroot source tree"
	else
		brv=$(sed -n 's/^export BR2_VERSION := //p' "$BR/Makefile")
		gov=$(sed -n 's/^GO_VERSION = //p' "$BR/package/go/go.mk")
		brc=$(git -C "$BR" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
		echo "Buildroot $brv ($brc) at $BR; its host Go: $gov"
		gomin=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' "$TOP/go.mod")
		check "Buildroot's Go $gov >= $gomin (go.mod)" \
			[ "$(printf '%s\n%s\n' "$gomin" "$gov" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$gomin" ]
		while read -r f; do
			rel=${f#"$EXT"/}
			! cmp -s "$f" "$BR/$rel" || fail "$rel is a copy of Buildroot's $rel"
		done <"$tmp/files"
		if [ -n "$SCRATCH" ]; then
			mkdir -p "$SCRATCH" && out_base=$(cd "$SCRATCH" && pwd)
		else
			out_base=$tmp/out
		fi
		case $out_base/ in "$TOP"/*) fail "scratch directory $out_base is inside the checkout" ;; esac
		for dc in "$EXT"/configs/*_defconfig; do
			n=$(basename "$dc")
			o=$out_base/${n%_defconfig}
			rm -rf "$o"
			mkdir -p "$o"
			# Buildroot-relative paths of the defconfig exist in this tree.
			pd=$(cfgval "$dc" BR2_GLOBAL_PATCH_DIR)
			check "$n: BR2_GLOBAL_PATCH_DIR $pd exists in Buildroot" test -d "$BR/$pd"
			# The pinned kernel's hash must be in this release, or its
			# download fails ("No hash found").
			tarball=$(cfgval "$dc" BR2_LINUX_KERNEL_CUSTOM_TARBALL_LOCATION | sed 's|.*/||')
			check "$n: this Buildroot has the hash of $tarball" \
				grep -q " $tarball\$" "$BR/$pd/linux/linux.hash"
			if make_br -C "$BR" O="$o" BR2_EXTERNAL="$EXT" "$n" >"$o.log" 2>&1; then
				ok "$n loads (make -C $BR O=$o BR2_EXTERNAL=$EXT $n)"
			else
				fail "$n does not load: $(tail -n 5 "$o.log")"
				continue
			fi
			warn=$(grep -i 'warning' "$o.log" | head -n 5)
			check "$n: Kconfig printed no warning ${warn:+($warn)}" [ -z "$warn" ]
			check "$n: BR2_PACKAGE_KIOSKD=y survived in .config" grep -qx 'BR2_PACKAGE_KIOSKD=y' "$o/.config"
			echo "     $(grep '^BR2_PACKAGE_KIOSKD_BOARD=' "$o/.config")"
			lost=$(grep '^BR2_' "$dc" | grep -vxF -f "$o/.config" | tr '\n' ' ')
			check "$n: every BR2_ setting survived ${lost:+(lost: $lost)}" [ -z "$lost" ]
			lost=
			sed -n 's/^# \(BR2_[A-Za-z0-9_]*\) is not set$/\1/p' "$dc" >"$tmp/notset"
			while read -r s; do
				! grep -q "^$s=" "$o/.config" || lost="$lost $s"
			done <"$tmp/notset"
			check "$n: every 'is not set' survived ${lost:+(set:$lost)}" [ -z "$lost" ]
			make_br -s -C "$BR" O="$o" printvars \
				VARS='KIOSKD_SITE KIOSKD_SITE_METHOD KIOSKD_GO_ENV KIOSKD_LDFLAGS KIOSKD_DEPENDENCIES KIOSKD_INSTALL_BINS' \
				>"$o.vars" 2>&1
			checkx "$n: kioskd.mk parses: site is the checkout, local, CGO off, host-go, /usr/bin/kioskd" \
				'grep -qx "KIOSKD_SITE=$TOP" "$o.vars" && grep -qx "KIOSKD_SITE_METHOD=local" "$o.vars" &&
				grep -qx "KIOSKD_GO_ENV=CGO_ENABLED=0" "$o.vars" && grep -q "^KIOSKD_DEPENDENCIES=.*host-go" "$o.vars" &&
				grep -qx "KIOSKD_INSTALL_BINS=kioskd" "$o.vars" && grep -q "^KIOSKD_LDFLAGS=.*-X main.version=" "$o.vars"'
		done
		# Buildroot's own linter for package files, when its Python modules are here.
		py=
		for p in python3 /usr/bin/python3; do
			if "$p" -c 'import magic, flake8' >/dev/null 2>&1; then
				py=$p
				break
			fi
		done
		if [ -n "$py" ]; then
			cd "$EXT" || exit 1
			# shellcheck disable=SC2046 # one argument per file
			if out=$("$py" "$BR/utils/check-package" --br2-external $(sed "s|^$EXT/||" "$tmp/files" | grep -Ev 'README.md$|\.toml$') 2>&1) &&
				! echo "$out" | grep -q '^[1-9][0-9]* warnings generated'; then
				ok "Buildroot's utils/check-package: $(echo "$out" | tail -n 1)"
			else
				fail "Buildroot's utils/check-package: $out"
			fi
			cd - >/dev/null || exit 1
		else
			echo "skip Buildroot's utils/check-package: its Python modules (magic, flake8) are missing"
		fi
	fi
fi

if [ "$fails" -gt 0 ]; then
	echo "buildroot-check: $fails check(s) failed"
	exit 1
fi
echo "buildroot-check: all passed${BR:+ (with Buildroot $brv)}"
