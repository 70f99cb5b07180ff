#!/bin/sh
# shellcheck disable=SC2016 # check ... eval '...': expanded by eval, on purpose
# Tests of flash-sd.sh, provision.sh and console.sh that need no hardware:
#
#   scripts/test/run.sh                 # as yourself: no loop devices
#   sudo scripts/test/run.sh            # also the loop-device and image tests
#
# Each script is run with `sh` (TEST_SH to use another shell, e.g.
# TEST_SH="busybox sh"). As root, with losetup working, flash-sd.sh is also
# tried on a loop device (dry run, wrong confirmation, a real write, mounted
# and partition refusals) and provision.sh on a partitioned image file;
# without them those tests are reported as skipped. When `go` is on PATH (or
# KIOSKD_BIN names a kioskd binary) the provisioned configs are checked with
# `kioskd config check`. The last line is "N passed, M failed"; the exit
# status is non-zero when a test failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
scripts=$(cd "$here/.." && pwd)
repo=$(cd "$scripts/.." && pwd)
SH=${TEST_SH:-sh}
FLASH=$scripts/flash-sd.sh
PROV=$scripts/provision.sh
CONSOLE=$scripts/console.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/scripts-test.XXXXXX") || exit 1
mnts=
loops=
cleanup() {
	for m in $mnts; do umount "$m" 2>/dev/null; done
	for l in $loops; do losetup -d "$l" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pass=0
fail=0
skipped=0
ok() {
	pass=$((pass + 1))
	printf 'ok    %s\n' "$1"
}
bad() {
	fail=$((fail + 1))
	printf 'FAIL  %s\n' "$1"
	if [ "${2:-}" = output ] && [ -s "$tmp/out" ]; then sed 's/^/      | /' "$tmp/out"; fi
}
skip() {
	skipped=$((skipped + 1))
	printf 'skip  %s\n' "$1"
}
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
# run INPUT COMMAND...: runs COMMAND with INPUT (a line; empty: /dev/null)
# on standard input; its output goes to $tmp/out, its status to $rc.
run() {
	input=$1
	shift
	if [ -n "$input" ]; then
		printf '%s\n' "$input" | "$@" >"$tmp/out" 2>&1
	else
		"$@" </dev/null >"$tmp/out" 2>&1
	fi
	rc=$?
}
# expect NAME CODE [REGEXP]: the last run exited with CODE and printed
# something matching REGEXP.
expect() {
	if [ "$rc" != "$2" ]; then
		bad "$1: exit $rc, want $2" output
		return 1
	fi
	if [ -n "${3:-}" ] && ! grep -Eq -- "$3" "$tmp/out"; then
		bad "$1: output lacks /$3/" output
		return 1
	fi
	ok "$1"
}
# not_in_output NAME FILE: the content of FILE (a secret) was not printed.
not_in_output() {
	s=$(cat "$2")
	if [ -n "$s" ] && grep -Fq -- "$s" "$tmp/out"; then
		bad "$1: the secret was printed" output
	else
		ok "$1"
	fi
}
mode() { stat -c %a "$1"; }
owner() { stat -c %u:%g "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# zeros FILE BYTES
zeros() { dd if=/dev/zero of="$1" bs=1024 count=$(($2 / 1024)) 2>/dev/null; }
# bytes FILE OFFSET OCTAL...: writes bytes at OFFSET.
bytes() {
	f=$1
	off=$2
	shift 2
	s=
	for b in "$@"; do s="$s\\0$b"; done
	printf '%b' "$s" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
}
# disk_image FILE BYTES: random data with the partition table signature.
disk_image() {
	dd if=/dev/urandom of="$1" bs=1024 count=$(($2 / 1024)) 2>/dev/null
	bytes "$1" 510 125 252
}
# le32 N -> four octal byte values, little-endian.
le32() { printf '%o %o %o %o' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# mbr_part FILE N TYPE(octal) START SECTORS: a primary MBR partition entry.
mbr_part() {
	# shellcheck disable=SC2046 # le32 prints four words
	bytes "$1" $((446 + 16 * ($2 - 1))) 0 0 0 0 "$3" 0 0 0 $(le32 "$4") $(le32 "$5")
	bytes "$1" 510 125 252
}
# same_prefix A B BYTES: the first BYTES of A and B are equal.
same_prefix() {
	dd if="$1" bs=65536 count=$(($3 / 65536)) 2>/dev/null | cmp -s - "$2"
}

is_root=0
[ "$(id -u)" = 0 ] && is_root=1

# The scripts, run by $SH (word-split: it may be "busybox sh").
# shellcheck disable=SC2086 # $SH
flash() { $SH "$FLASH" "$@"; }
# flash-sd.sh accepting a regular file as the device.
# shellcheck disable=SC2086 # $SH
tflash() { env FLASH_SD_TESTING=1 $SH "$FLASH" "$@"; }
# provision.sh, with --owner when not root ($own).
# shellcheck disable=SC2086 # $own: empty or --owner UID:GID
prov() { prov0 $own "$@"; }
# provision.sh as it is.
# shellcheck disable=SC2086 # $SH
prov0() { $SH "$PROV" "$@"; }
# shellcheck disable=SC2086 # $SH
console() { $SH "$CONSOLE" "$@"; }

echo "# flash-sd.sh"

img=$tmp/kiosk.img
disk_image "$img" 1048576
gzip -c "$img" >"$img.gz"
have xz && xz -c "$img" >"$img.xz"
notdisk=$tmp/rootfs.ext4
dd if=/dev/urandom of="$notdisk" bs=1024 count=64 2>/dev/null
bytes "$notdisk" 510 0 0
card=$tmp/card

run "" flash --help
expect "help" 0 "Exit codes"
run "" flash
expect "no arguments: usage" 2 "usage"
run "" flash "$tmp/missing.img" /dev/null
expect "missing image" 2 "no such file"
run "" flash "$notdisk" /dev/null
expect "image without a partition table" 2 "not a disk image"
zeros "$card" 4194304
run "" flash --dry-run "$img" "$card"
expect "regular file as device: refused" 3 "not a block device"
run "" flash --dry-run "$img" "$tmp/no-such-device"
expect "non-existent device: refused" 3 "no such device"
run "" flash --dry-run "$img" /dev/null
expect "/dev/null (character device): refused" 3 "not a block device"
run "" tflash --dry-run "$img" /dev/null
expect "/dev/null refused in test mode too" 3 "not a block device"
run "" flash --max-size lots "$img" /dev/null
expect "bad --max-size" 2 "max-size"

# The disk the running system is on (dry run: nothing can be written).
rootdev=
mm=$(awk '$5 == "/" { m = $3 } END { print m }' /proc/self/mountinfo 2>/dev/null)
if [ -n "$mm" ] && [ -e "/sys/dev/block/$mm" ]; then
	s=$(cd -P "/sys/dev/block/$mm" && pwd)
	[ -e "$s/partition" ] && s=${s%/*}
	[ -b "/dev/${s##*/}" ] && rootdev=/dev/${s##*/}
fi
if [ -n "$rootdev" ]; then
	run "" flash --dry-run --max-size 1000T "$img" "$rootdev"
	expect "the disk holding / ($rootdev): refused" 3 "running system|device-mapper"
else
	skip "the disk holding /: / is not on a block device here"
fi

# The prompt and the write, on a regular file (FLASH_SD_TESTING=1).
zeros "$tmp/zero4m" 4194304
zeros "$card" 4194304
run "sdb" tflash "$img" "$card"
expect "prompt: wrong name refused" 4 "not confirmed"
check "prompt: wrong name wrote nothing" cmp -s "$card" "$tmp/zero4m"
run "" tflash "$img" "$card"
expect "prompt: no answer refused" 4 "not confirmed"
run "" tflash --dry-run "$img" "$card"
expect "dry run" 0 "Dry run.*would run"
check "dry run wrote nothing" cmp -s "$card" "$tmp/zero4m"
run "card" tflash "$img" "$card"
expect "prompt: right name writes" 0 "Done"
check "raw image written" same_prefix "$card" "$img" 1048576
zeros "$card" 4194304
run "" tflash --yes "$img.gz" "$card"
expect "--yes, gzip image" 0 "\(gzip"
check "gzip image decompressed and written" same_prefix "$card" "$img" 1048576
if have xz; then
	zeros "$card" 4194304
	run "" tflash --yes "$img.xz" "$card"
	expect "--yes, xz image" 0 "\(xz"
	check "xz image decompressed and written" same_prefix "$card" "$img" 1048576
else
	skip "xz image: xz not installed"
fi
head -c 200000 "$img.gz" >"$tmp/broken.img.gz"
zeros "$card" 4194304
run "" tflash --yes "$tmp/broken.img.gz" "$card"
expect "truncated gzip image: failure reported" 1 "gzip failed|dd failed"
zeros "$card" 4194304
run "" tflash --dry-run --max-size 1M "$img" "$card"
expect "over the size limit: refused" 3 "limit"
run "" tflash --dry-run --max-size 1M --force-size "$img" "$card"
expect "over the size limit with --force-size" 0 "Dry run"
zeros "$card" 524288
run "" tflash --dry-run "$img" "$card"
expect "device smaller than the image: refused" 3 "needs"

# A loop device: root and a working losetup.
loop=
if [ $is_root = 1 ] && have losetup; then
	zeros "$tmp/loop.img" 16777216
	loop=$(losetup -f --show "$tmp/loop.img" 2>/dev/null) || loop=
fi
if [ -n "$loop" ]; then
	loops="$loop"
	lname=${loop#/dev/}
	run "" flash --dry-run "$img" "$loop"
	expect "loop device: dry run" 0 "Dry run"
	run "wrong" flash "$img" "$loop"
	expect "loop device: wrong name refused" 4 "not confirmed"
	check "loop device: nothing written" same_prefix "$loop" "$tmp/zero4m" 4194304
	run "$lname" flash "$img.gz" "$loop"
	expect "loop device: confirmed write" 0 "Done"
	check "loop device: image on it" same_prefix "$loop" "$img" 1048576
	run "" flash --dry-run --max-size 8M "$img" "$loop"
	expect "loop device over the size limit: refused" 3 "limit"

	# A partitioned loop device: partition and mounted-partition refusals.
	zeros "$tmp/parts.img" 16777216
	mbr_part "$tmp/parts.img" 1 203 2048 16384
	ploop=$(losetup -f -P --show "$tmp/parts.img" 2>/dev/null) || ploop=
	[ -z "$ploop" ] || loops="$loops $ploop"
	have udevadm && udevadm settle 2>/dev/null
	i=0
	while [ -n "$ploop" ] && [ ! -b "${ploop}p1" ] && [ $i -lt 10 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	mkdir "$tmp/mnt"
	if [ -n "$ploop" ] && [ -b "${ploop}p1" ]; then
		run "" flash --dry-run "$img" "${ploop}p1"
		expect "partition instead of the disk: refused" 3 "partition 1 of"
		mdev=${ploop}p1
		disk=$ploop
		what="disk with a mounted partition"
	else
		skip "partition refusals: the kernel shows no partitions of loop devices (no partition table support)"
		mdev=$loop
		disk=$loop
		what="mounted device (filesystem on the whole loop device)"
	fi
	if ! have mkfs.ext4; then
		skip "$what: mkfs.ext4 not installed"
	elif mkfs.ext4 -q "$mdev" >/dev/null 2>&1 && mount "$mdev" "$tmp/mnt" 2>/dev/null; then
		mnts=$tmp/mnt
		run "" flash --dry-run "$img" "$disk"
		expect "$what: refused" 3 "is mounted"
		umount "$tmp/mnt" && mnts=
		run "" flash --dry-run "$img" "$disk"
		expect "the same, unmounted: accepted" 0 "Dry run"
	else
		skip "$what: cannot make or mount a filesystem here"
	fi
	for l in $loops; do losetup -d "$l"; done
	loops=
else
	skip "loop device tests: need root and losetup"
fi

echo "# provision.sh"

kioskd=${KIOSKD_BIN:-}
if [ -z "$kioskd" ] && have go; then
	if (cd "$repo" && go build -o "$tmp/kioskd" ./cmd/kioskd) >"$tmp/out" 2>&1; then
		kioskd=$tmp/kioskd
	else
		bad "building kioskd for config checks" output
	fi
fi
# config_ok NAME CONFIG: kioskd accepts the config.
config_ok() {
	if [ -z "$kioskd" ]; then
		skip "$1: no go and no KIOSKD_BIN"
		return
	fi
	run "" "$kioskd" config check "$2"
	expect "$1" 0 "^ok "
}

if [ $is_root = 1 ]; then
	own=
	want_owner=0:0
else
	own="--owner $(id -u):$(id -g)"
	want_owner=$(id -u):$(id -g)
fi
d=$tmp/data1
mkdir "$d"

# Generated secret, minimal config.
run "" prov --data-dir "$d" --kiosk-id KTEST1 --board rpi4 --mount-point "$d"
expect "provision: generated secret, minimal config" 0 "generated"
check "kioskd.toml is 0600" [ "$(mode "$d/kioskd.toml")" = 600 ]
check "secrets/ is 0700" [ "$(mode "$d/secrets")" = 700 ]
check "kioskd/ (journal) is 0700" [ "$(mode "$d/kioskd")" = 700 ]
check "pos.secret is 0600" [ "$(mode "$d/secrets/pos.secret")" = 600 ]
check "owner is $want_owner" eval '[ "$(owner "$d/secrets/pos.secret")" = "$want_owner" ] && [ "$(owner "$d/secrets")" = "$want_owner" ] && [ "$(owner "$d/kioskd.toml")" = "$want_owner" ]'
check "generated secret: 64 hex characters, no newline" grep -Eqx '[0-9a-f]{64}' "$d/secrets/pos.secret"
check "generated secret: no trailing newline" [ "$(wc -c <"$d/secrets/pos.secret" | tr -d ' ')" = 64 ]
not_in_output "generated secret not printed" "$d/secrets/pos.secret"
check "toml: kiosk_id" grep -qx 'kiosk_id = "KTEST1"' "$d/kioskd.toml"
check "toml: secret_file" grep -qx "secret_file = \"$d/secrets/pos.secret\"" "$d/kioskd.toml"
check "toml: data_dir on the data partition" grep -qx "data_dir = \"$d/kioskd\"" "$d/kioskd.toml"
check "toml: board kind" grep -qx 'kind = "rpi4"' "$d/kioskd.toml"
config_ok "kioskd accepts the minimal config" "$d/kioskd.toml"
sum1=$(cat "$d/kioskd.toml" "$d/secrets/pos.secret" | cksum)

# A second run does not overwrite.
printf 'pos-secret-MARKER-%s\n' "$$" >"$tmp/secret"
run "" prov --data-dir "$d" --kiosk-id KTEST2 --board rpi4 --pos-secret-file "$tmp/secret"
expect "already provisioned: refused without --force" 3 "would overwrite.*kioskd.toml.*pos.secret"
check "refused run changed nothing" [ "$(cat "$d/kioskd.toml" "$d/secrets/pos.secret" | cksum)" = "$sum1" ]
run "" prov --data-dir "$d" --kiosk-id KTEST2 --board rpi4
expect "config exists, no secret given: refused without --force" 3 "would overwrite: kioskd.toml"
cp "$d/secrets/pos.secret" "$tmp/generated"
run "" prov --data-dir "$d" --kiosk-id KTEST2 --board rpi4 --force
expect "--force without a secret keeps the secret" 0 "kept"
check "kept secret unchanged" cmp -s "$d/secrets/pos.secret" "$tmp/generated"
check "config rewritten with --force" grep -qx 'kiosk_id = "KTEST2"' "$d/kioskd.toml"
cp "$d/secrets/pos.secret" "$tmp/before"
run "" prov --data-dir "$d" --kiosk-id KTEST2 --board rpi4 --force --pos-secret-file "$tmp/secret" --save-secret "$tmp/saved"
expect "--force with a secret file overwrites" 0 "copied"
check "secret copied exactly" cmp -s "$d/secrets/pos.secret" "$tmp/secret"
check "secret changed" eval '! cmp -s "$d/secrets/pos.secret" "$tmp/before"'
not_in_output "given secret not printed" "$tmp/secret"
check "--save-secret copy, 0600" eval 'cmp -s "$tmp/saved" "$tmp/secret" && [ "$(mode "$tmp/saved")" = 600 ]'

# Secret on standard input.
d=$tmp/data2
mkdir "$d"
run "stdin-secret-MARKER-$$" prov --data-dir "$d" --kiosk-id KTEST3 --board rpi3 --pos-secret-file -
expect "secret on standard input" 0 "copied"
check "stdin secret stored" grep -qx "stdin-secret-MARKER-$$" "$d/secrets/pos.secret"
printf 'stdin-secret-MARKER-%s' "$$" >"$tmp/stdin-secret"
not_in_output "stdin secret not printed" "$tmp/stdin-secret"

# KPOS keys and a full template (the embedded default config).
d=$tmp/data3
mkdir "$d"
pem() { printf -- '-----BEGIN %s-----\nTUFSS0VS\n-----END %s-----\n' "$2" "$2" >"$1"; }
pem "$tmp/sign.pem" "EC PRIVATE KEY"
pem "$tmp/ecdh.pem" "PRIVATE KEY"
pem "$tmp/fsign.pub" "PUBLIC KEY"
pem "$tmp/fecdh.pub" "PUBLIC KEY"
pem "$tmp/tls.crt" "CERTIFICATE"
pem "$tmp/tls.key" "RSA PRIVATE KEY"
run "" prov --data-dir "$d" --kiosk-id "KIOSK 7" --template "$repo/config/default.toml" --board rpi3 \
	--mount-point "$d" --pos-secret-file "$tmp/secret" \
	--kpos-signing-key "$tmp/sign.pem" --kpos-ecdh-key "$tmp/ecdh.pem" \
	--finexus-signing-public-key "$tmp/fsign.pub" --finexus-ecdh-public-key "$tmp/fecdh.pub" \
	--kpos-tls-cert "$tmp/tls.crt" --kpos-tls-key "$tmp/tls.key"
expect "template and KPOS keys" 0 "kpos.signing_key"
not_in_output "secret not printed (keys run)" "$tmp/secret"
for f in kpos-signing.key.pem kpos-ecdh.key.pem finexus-signing.pub.pem finexus-ecdh.pub.pem kpos-tls.crt.pem kpos-tls.key.pem; do
	check "key $f: copied, 0600" [ "$(mode "$d/secrets/$f")" = 600 ]
done
check "signing key content" cmp -s "$d/secrets/kpos-signing.key.pem" "$tmp/sign.pem"
check "toml: kpos.signing_key" grep -qx "signing_key = \"$d/secrets/kpos-signing.key.pem\"" "$d/kioskd.toml"
check "toml: kpos.finexus_ecdh_public_key" grep -qx "finexus_ecdh_public_key = \"$d/secrets/finexus-ecdh.pub.pem\"" "$d/kioskd.toml"
check "toml: kpos.tls_cert and tls_key" eval 'grep -qx "tls_cert = \"$d/secrets/kpos-tls.crt.pem\"" "$d/kioskd.toml" && grep -qx "tls_key = \"$d/secrets/kpos-tls.key.pem\"" "$d/kioskd.toml"'
check "toml: one kiosk_id, replaced" eval '[ "$(grep -c "^kiosk_id" "$d/kioskd.toml")" = 1 ] && grep -qx "kiosk_id = \"KIOSK 7\"" "$d/kioskd.toml"'
check "toml: development secret line removed" eval '! grep -q "^secret *=" "$d/kioskd.toml"'
check "toml: one secret_file" [ "$(grep -c '^secret_file' "$d/kioskd.toml")" = 1 ]
check "toml: board kind replaced" eval 'grep -qx "kind = \"rpi3\"" "$d/kioskd.toml" && ! grep -q "^kind = \"sim\"" "$d/kioskd.toml"'
check "toml: rest of the template kept" grep -q '^\[payment.timeouts.ipp\]' "$d/kioskd.toml"
config_ok "kioskd accepts the config made from the template" "$d/kioskd.toml"
pem "$tmp/leak.pub" "PRIVATE KEY"
run "" prov --data-dir "$tmp/data3" --kiosk-id X --board rpi3 --force --finexus-signing-public-key "$tmp/leak.pub"
expect "private key given as a public key: refused" 2 "private key"

# A template with a build-time placeholder (as buildroot/package/kioskd/kioskd.toml).
d=$tmp/data6
mkdir "$d"
printf 'kiosk_id = "X"\ndata_dir = "/data/kioskd"\n[board]\nkind = "@KIOSKD_BOARD@"\n' >"$tmp/ph.toml"
run "" prov --data-dir "$d" --kiosk-id K6 --template "$tmp/ph.toml"
expect "template placeholder without --board: refused" 2 "placeholder @KIOSKD_BOARD@"
check "template placeholder: nothing written" [ -z "$(ls -A "$d")" ]
run "" prov --data-dir "$d" --kiosk-id K6 --template "$tmp/ph.toml" --board rpi4
expect "template placeholder with --board" 0 "Provisioned"
check "placeholder replaced" grep -qx 'kind = "rpi4"' "$d/kioskd.toml"
brt=$repo/buildroot/package/kioskd/kioskd.toml
if [ -f "$brt" ]; then
	d=$tmp/data7
	mkdir "$d"
	run "" prov --data-dir "$d" --kiosk-id K7 --template "$brt" --board rpi3 --mount-point "$d"
	expect "the image's config (buildroot/package/kioskd/kioskd.toml) as template" 0 "Provisioned"
	config_ok "kioskd accepts the config made from the image's" "$d/kioskd.toml"
else
	skip "the image's config as template: no $brt"
fi

# Refusals.
d=$tmp/data4
mkdir "$d"
printf 'POS-KIOSK-SECRET-KEY-2024\n' >"$tmp/dev.secret"
run "" prov --data-dir "$d" --kiosk-id K --board rpi4 --pos-secret-file "$tmp/dev.secret"
expect "development secret: refused" 3 "development key"
check "development secret: nothing written" [ -z "$(ls -A "$d")" ]
run "" prov --data-dir "$d" --kiosk-id K
expect "no template and no --board" 2 "--board"
run "" prov --data-dir "$d" --kiosk-id "$(printf 'bad\tid')" --board rpi4
expect "kiosk id with a control character" 2 "printable"
run "" prov --data-dir "$d" --kiosk-id K --board rpi4 --pos-secret-file "$tmp/secret" --generate-secret
expect "two secret sources" 2 "not both"
mkdir "$tmp/rootfs" "$tmp/rootfs/etc" "$tmp/rootfs/bin"
run "" prov --data-dir "$tmp/rootfs" --kiosk-id K --board rpi4
expect "a root filesystem as data dir: refused" 3 "root filesystem"
mkdir "$tmp/elsewhere"
ln -s "$tmp/elsewhere" "$d/secrets"
run "" prov --data-dir "$d" --kiosk-id K --board rpi4
expect "symlinked secrets/: refused" 3 "symbolic link"
check "nothing written through the symlink" [ -z "$(ls -A "$tmp/elsewhere")" ]
if [ $is_root = 0 ]; then
	run "" prov0 --data-dir "$tmp/data5" --kiosk-id K --board rpi4
	expect "not root, default owner root: refused" 3 "not root"
fi

# Image mode: root, losetup, mkfs.ext4 -d.
# can_mount: root can loop-mount an ext4 filesystem here.
can_mount() {
	mkfs.ext4 -q -F "$tmp/probe.ext4" 1M >/dev/null 2>&1 || return 1
	mkdir -p "$tmp/probe"
	pl=$(losetup -f --show "$tmp/probe.ext4" 2>/dev/null) || return 1
	mount -o ro "$pl" "$tmp/probe" 2>/dev/null && umount "$tmp/probe"
	r=$?
	losetup -d "$pl"
	return $r
}
img_ok=0
if [ $is_root = 1 ] && have losetup && have mkfs.ext4 && have blkid && can_mount; then
	rfs=$tmp/img-rootfs
	mkdir -p "$rfs/etc/kioskd" "$rfs/bin"
	cat >"$rfs/etc/kioskd/kioskd.toml" <<'EOF'
# image template marker
kiosk_id = "CHANGEME"
data_dir = "/data/kioskd"

[pos]
secret_file = ""

[control]
socket = "/data/kioskd/control.sock"

[board]
kind = "rpi4"
EOF
	if mkfs.ext4 -q -F -d "$rfs" "$tmp/p2.ext4" 8M >"$tmp/out" 2>&1 &&
		mkfs.ext4 -q -F -L kioskdata "$tmp/p3.ext4" 8M >"$tmp/out" 2>&1; then
		sd=$tmp/sdcard.img
		zeros "$sd" $((43008 * 512))
		mbr_part "$sd" 1 14 2048 8192
		mbr_part "$sd" 2 203 10240 16384
		mbr_part "$sd" 3 203 26624 16384
		dd if="$tmp/p2.ext4" of="$sd" bs=512 seek=10240 conv=notrunc 2>/dev/null &&
			dd if="$tmp/p3.ext4" of="$sd" bs=512 seek=26624 conv=notrunc 2>/dev/null && img_ok=1
	fi
fi
if [ $img_ok = 1 ]; then
	run "" prov0 --image "$sd" --kiosk-id KIMG --pos-secret-file "$tmp/secret"
	expect "image: provisioned partition 3 with the image's template" 0 "partition 3"
	not_in_output "image: secret not printed" "$tmp/secret"
	check "image: no loop device left" [ -z "$(losetup -j "$sd")" ]
	l=$(losetup -f --show -o $((26624 * 512)) --sizelimit $((16384 * 512)) "$sd") && loops=$l
	mkdir -p "$tmp/imnt"
	if [ -n "$l" ] && mount -o ro "$l" "$tmp/imnt"; then
		mnts=$tmp/imnt
		m=$tmp/imnt
		check "image: template from the rootfs used" grep -q 'image template marker' "$m/kioskd.toml"
		check "image: kiosk_id" grep -qx 'kiosk_id = "KIMG"' "$m/kioskd.toml"
		check "image: secret_file under /data" grep -qx 'secret_file = "/data/secrets/pos.secret"' "$m/kioskd.toml"
		check "image: board kind kept" grep -qx 'kind = "rpi4"' "$m/kioskd.toml"
		check "image: secret copied, 0600, root" eval 'cmp -s "$m/secrets/pos.secret" "$tmp/secret" && [ "$(mode "$m/secrets/pos.secret")" = 600 ] && [ "$(owner "$m/secrets/pos.secret")" = 0:0 ]'
		check "image: secrets/ and kioskd/ 0700" eval '[ "$(mode "$m/secrets")" = 700 ] && [ "$(mode "$m/kioskd")" = 700 ]'
		umount "$m" && mnts=
	else
		bad "image: mounting the data partition to check it"
	fi
	[ -z "$l" ] || losetup -d "$l"
	loops=
	run "" prov0 --image "$sd" --kiosk-id KIMG --pos-secret-file "$tmp/secret"
	expect "image: second run refused without --force" 3 "would overwrite"
	check "image: no loop device left after refusal" [ -z "$(losetup -j "$sd")" ]
else
	skip "image mode: needs root, losetup, blkid, mkfs.ext4 with -d and mount"
fi

echo "# console.sh"

mkdir "$tmp/bin-none" "$tmp/bin-picocom" "$tmp/bin-tio" "$tmp/bin-both"
stub() { # DIR NAME: a program that prints its name and arguments
	printf '#!/bin/sh\necho "%s $*"\n' "$2" >"$1/$2"
	chmod +x "$1/$2"
}
stub "$tmp/bin-picocom" picocom
stub "$tmp/bin-tio" tio
stub "$tmp/bin-both" picocom
stub "$tmp/bin-both" tio
shp=$(command -v "${SH%% *}")
shrest=${SH#"${SH%% *}"}
# shellcheck disable=SC2086 # $shrest: the rest of TEST_SH
run "" env PATH="$tmp/bin-none" "$shp" $shrest "$CONSOLE" /dev/null
expect "console: neither picocom nor tio" 127 "neither picocom nor tio"
# shellcheck disable=SC2086 # $shrest
run "" env PATH="$tmp/bin-picocom" "$shp" $shrest "$CONSOLE" /dev/null
expect "console: picocom at 115200 by default" 0 "^picocom -b 115200 /dev/null$"
check "console: says how to exit picocom" grep -q "Ctrl-a then Ctrl-x" "$tmp/out"
# shellcheck disable=SC2086 # $shrest
run "" env PATH="$tmp/bin-tio" "$shp" $shrest "$CONSOLE" /dev/null 9600
expect "console: tio, baud given" 0 "^tio -b 9600 /dev/null$"
check "console: says how to exit tio" grep -q "Ctrl-t then q" "$tmp/out"
# shellcheck disable=SC2086 # $shrest
run "" env PATH="$tmp/bin-both" CONSOLE_TOOL=tio "$shp" $shrest "$CONSOLE" /dev/null
expect "console: CONSOLE_TOOL picks tio" 0 "^tio -b 115200"
# shellcheck disable=SC2086 # $shrest
run "" env PATH="$tmp/bin-picocom" "$shp" $shrest "$CONSOLE" "$tmp/no-such-tty"
expect "console: missing device" 2 "no such device"
# shellcheck disable=SC2086 # $shrest
run "" env PATH="$tmp/bin-picocom" "$shp" $shrest "$CONSOLE" "$tmp/zero4m"
expect "console: not a character device" 2 "not a character device"
run "" console /dev/null fast
expect "console: bad baud rate" 2 "baud"

for s in "$FLASH" "$PROV" "$CONSOLE" "$0"; do
	run "" sh -n "$s"
	expect "sh -n ${s#"$repo"/}" 0
done

[ $skipped = 0 ] || echo "($skipped skipped)"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
