#!/bin/sh
# Provisions one kiosk: writes its kiosk id, POS secret and KPOS keys into
# the data partition (mounted at /data on the kiosk), either of a card
# that is already mounted on this machine or of an image file.
#
#   scripts/provision.sh --data-dir DIR --kiosk-id ID [OPTIONS]
#   scripts/provision.sh --image FILE --kiosk-id ID [OPTIONS]      (root)
#   scripts/provision.sh --rauc-keys DIR [--force]    the update signing key
#
#   # the card's data partition mounted at /media/me/data:
#   sudo scripts/provision.sh --data-dir /media/me/data --kiosk-id KIOSK042 \
#       --template /media/me/rootfs/etc/kioskd/kioskd.toml --save-secret ./KIOSK042.pos
#   # an image before flashing it (loop-mounted; the template is the
#   # image's own /etc/kioskd/kioskd.toml):
#   sudo scripts/provision.sh --image output/images/sdcard.img --kiosk-id KIOSK042 \
#       --pos-secret-file ./KIOSK042.pos --kpos-signing-key sign.pem ...
#
# What it writes, under the data partition (paths as the kiosk sees them):
#   /data/kioskd.toml         the config (it replaces /etc/kioskd/kioskd.toml
#                             as a whole): the template with kiosk_id set,
#                             [pos] secret_file = "/data/secrets/pos.secret"
#                             and its `secret` key removed, and the [kpos]
#                             key paths of the keys given
#   /data/secrets/            0700
#   /data/secrets/pos.secret  the POS shared secret
#   /data/secrets/*.pem       the KPOS key files given
#   /data/kioskd/             0700, the journal directory (created if absent)
# Files are 0600 and, like the directories, owned by root (--owner to
# change). Nothing secret is ever printed. The config is written last, so
# a run cut short leaves no config pointing at missing files.
#
# The template is --template FILE; else, with --image, the image's own
# /etc/kioskd/kioskd.toml; else a minimal config (kiosk_id, data_dir
# /data/kioskd, control.socket /data/kioskd/control.sock, the POS
# secret_file, board.kind), which needs --board. Keys the config does not
# set take kioskd's built-in defaults (`kioskd config default`), not those
# of /etc. Check the result on the kiosk with `kioskd config check
# /data/kioskd.toml`.
#
# The POS secret: --pos-secret-file FILE copies FILE (`-` reads standard
# input, without echo on a terminal); --generate-secret makes a new one, 32
# random bytes from /dev/urandom as 64 hex characters. With neither, an
# existing /data/secrets/pos.secret is kept, and one is generated if there is
# none. The POS terminal needs the same secret: --save-secret FILE leaves a
# copy (0600) on this machine. The public development key is refused.
#
# Nothing that exists is overwritten without --force: if the config, the
# POS secret or a key file it would write is there, it stops before
# writing anything (exit 3) and lists them.
#
# Options:
#   --data-dir DIR             the data partition, mounted at DIR
#   --image FILE               an SD-card image: loop-mounts its data
#                              partition (losetup -P; without kernel partition
#                              support, the MBR's offsets); needs root
#   --partition N              with --image: the data partition's number
#                              (default: the ext4 one labelled kioskdata, as
#                              the image's genimage.cfg makes it, else the
#                              highest-numbered ext4 one)
#   --kiosk-id ID              required: 1 to 64 printable ASCII characters
#   --pos-secret-file FILE|-   the POS shared secret
#   --generate-secret          generate a new POS secret
#   --save-secret FILE         also write the POS secret to FILE here
#   --kpos-signing-key FILE    our signing private key (PEM) -> kpos.signing_key
#   --kpos-ecdh-key FILE       our ECDH private key (PKCS#8 PEM) -> kpos.ecdh_private_key
#   --finexus-signing-public-key FILE  (PEM "PUBLIC KEY") -> kpos.finexus_signing_public_key
#   --finexus-ecdh-public-key FILE     (PEM "PUBLIC KEY") -> kpos.finexus_ecdh_public_key
#   --kpos-tls-cert FILE       (PEM certificate) -> kpos.tls_cert
#   --kpos-tls-key FILE        (PEM private key) -> kpos.tls_key
#   --template FILE            the config to start from
#   --board KIND               set board.kind: rpi3, rpi4, rpi5 or sim
#   --owner UID[:GID]          numeric owner of what is written (default 0:0;
#                              names would be looked up on this machine, not
#                              the kiosk, so only numbers and `root`)
#   --mount-point PATH         where the kiosk mounts the data partition, for
#                              the paths in the config (default /data)
#   --force                    overwrite existing files
#   --rauc-keys DIR            a separate step, once per fleet, not per
#                              kiosk: make the RAUC update signing key
#                              DIR/kioskd-rauc.key.pem (0600) and its
#                              self-signed certificate DIR/kioskd-rauc.cert.pem
#                              with openssl, and nothing else. DIR must be
#                              outside this checkout (the key never goes in
#                              the repository). Build with
#                              KIOSKD_RAUC_KEY and KIOSKD_RAUC_CERT set to
#                              them (buildroot/README.md); the certificate
#                              becomes the image's /etc/rauc/keyring.pem
#   -h, --help                 this text
#
# Exit codes: 0 provisioned; 1 failed (a tool, mount or write failed);
# 2 usage (bad or missing arguments, unreadable or malformed input file);
# 3 refused (would overwrite without --force, not root for the owner asked,
# DIR looks like a root filesystem or holds symlinks, development secret).
set -eu
umask 077

prog=${0##*/}
EX_FAIL=1
EX_USAGE=2
EX_REFUSED=3
DEV_SECRET=POS-KIOSK-SECRET-KEY-2024 # mobypay.DevSecret, public
DATA_LABEL=kioskdata                 # buildroot/board/kiosk/genimage.cfg.in

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

# --- arguments ---------------------------------------------------------------

data_dir=
image=
partition=
kiosk_id=
secret_src=
generate=0
save_secret=
template=
board=
owner=0:0
mount_point=/data
force=0
k_signing=
k_ecdh=
f_signing=
f_ecdh=
tls_cert=
tls_key=
rauc_keys=

need() { [ "$2" -ge 2 ] || die $EX_USAGE "$1 needs a value"; }
while [ $# -gt 0 ]; do
	case $1 in
	--*=*)
		# --opt=value: split it and go round again.
		opt=${1%%=*}
		val=${1#*=}
		shift
		set -- "$opt" "$val" "$@"
		continue
		;;
	esac
	case $1 in
	--data-dir) need "$1" $# && data_dir=$2 && shift ;;
	--image) need "$1" $# && image=$2 && shift ;;
	--partition) need "$1" $# && partition=$2 && shift ;;
	--kiosk-id) need "$1" $# && kiosk_id=$2 && shift ;;
	--pos-secret-file) need "$1" $# && secret_src=$2 && shift ;;
	--generate-secret) generate=1 ;;
	--save-secret) need "$1" $# && save_secret=$2 && shift ;;
	--kpos-signing-key) need "$1" $# && k_signing=$2 && shift ;;
	--kpos-ecdh-key) need "$1" $# && k_ecdh=$2 && shift ;;
	--finexus-signing-public-key) need "$1" $# && f_signing=$2 && shift ;;
	--finexus-ecdh-public-key) need "$1" $# && f_ecdh=$2 && shift ;;
	--kpos-tls-cert) need "$1" $# && tls_cert=$2 && shift ;;
	--kpos-tls-key) need "$1" $# && tls_key=$2 && shift ;;
	--template) need "$1" $# && template=$2 && shift ;;
	--board) need "$1" $# && board=$2 && shift ;;
	--owner) need "$1" $# && owner=$2 && shift ;;
	--mount-point) need "$1" $# && mount_point=$2 && shift ;;
	--force) force=1 ;;
	--rauc-keys) need "$1" $# && rauc_keys=$2 && shift ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die $EX_USAGE "unknown argument $1 (see --help)" ;;
	esac
	shift
done

# --- the RAUC signing key: its own step ----------------------------------------
# A self-signed RSA certificate without extendedKeyUsage: rauc 1.8 refuses
# a signing certificate that says codeSigning.
if [ -n "$rauc_keys" ]; then
	command -v openssl >/dev/null 2>&1 || die $EX_FAIL "--rauc-keys needs openssl"
	# Where DIR is, before anything is created: its parent must exist.
	parent=$(dirname "$rauc_keys")
	[ -d "$parent" ] || die $EX_USAGE "--rauc-keys $rauc_keys: $parent does not exist"
	keys_abs=$(cd "$parent" && pwd -P)/$(basename "$rauc_keys")
	repo_abs=$(cd "$(dirname "$0")/.." && pwd -P)
	case $keys_abs/ in
	"$repo_abs"/*) die $EX_REFUSED "--rauc-keys $rauc_keys is inside the checkout $repo_abs: keep the signing key out of the repository" ;;
	esac
	mkdir -p "$keys_abs" || die $EX_FAIL "cannot create $keys_abs"
	keys_abs=$(cd "$keys_abs" && pwd -P)
	case $keys_abs/ in
	"$repo_abs"/*) die $EX_REFUSED "--rauc-keys $rauc_keys leads inside the checkout $repo_abs: keep the signing key out of the repository" ;;
	esac
	key=$keys_abs/kioskd-rauc.key.pem
	cert=$keys_abs/kioskd-rauc.cert.pem
	if [ $force = 0 ] && { [ -e "$key" ] || [ -e "$cert" ]; }; then
		die $EX_REFUSED "$key or $cert exists; --force to replace them (bundles signed with the old key are then refused by images with the new keyring)"
	fi
	openssl req -x509 -newkey rsa:4096 -nodes -sha256 -days 3650 \
		-subj "/O=kioskd/CN=kioskd update signing" \
		-keyout "$key" -out "$cert" >/dev/null 2>&1 ||
		die $EX_FAIL "openssl could not make the RAUC key"
	chmod 0600 "$key"
	chmod 0644 "$cert"
	say "RAUC signing key: $key"
	say "certificate (the image's keyring): $cert"
	say "build with: KIOSKD_RAUC_KEY=$key KIOSKD_RAUC_CERT=$cert make buildroot BR=..."
	exit 0
fi

# --- checks on the arguments, before anything is touched ---------------------

if [ -n "$data_dir" ] && [ -n "$image" ]; then
	die $EX_USAGE "give --data-dir or --image, not both"
fi
if [ -z "$data_dir" ] && [ -z "$image" ]; then
	die $EX_USAGE "usage: $prog --data-dir DIR | --image FILE --kiosk-id ID [OPTIONS] (see --help)"
fi
[ -n "$kiosk_id" ] || die $EX_USAGE "--kiosk-id is required"
if [ ${#kiosk_id} -gt 64 ] || printf '%s' "$kiosk_id" | LC_ALL=C grep -q '[^ -~]'; then
	die $EX_USAGE "--kiosk-id: want 1 to 64 printable ASCII characters"
fi
if [ -n "$secret_src" ] && [ $generate = 1 ]; then
	die $EX_USAGE "give --pos-secret-file or --generate-secret, not both"
fi
case $board in
"" | sim | rpi3 | rpi4 | rpi5) ;;
*) die $EX_USAGE "--board $board: want rpi3, rpi4, rpi5 or sim" ;;
esac
case $mount_point in
/*) ;;
*) die $EX_USAGE "--mount-point $mount_point: want an absolute path" ;;
esac
if printf '%s' "$mount_point" | LC_ALL=C grep -q '[^ -~]'; then
	die $EX_USAGE "--mount-point: printable ASCII only"
fi
mount_point=${mount_point%/}
[ -n "$mount_point" ] || die $EX_USAGE "--mount-point / is not a data partition"
case $partition in
"" | [1-9] | [1-9][0-9]) ;;
*) die $EX_USAGE "--partition $partition: want a partition number" ;;
esac

case $owner in
root) owner=0:0 ;;
*[!0-9:]* | :* | *: | *:*:*)
	die $EX_USAGE "--owner $owner: want UID or UID:GID in numbers (names would be this machine's, not the kiosk's)"
	;;
esac
uid=$(id -u)
if [ "$uid" != 0 ] && [ "${owner%%:*}" != "$uid" ]; then
	die $EX_REFUSED "not root, so the files cannot be given to $owner: run with sudo, or pass --owner $uid:$(id -g) to keep them yours"
fi

# check_file WHAT FILE: readable, non-empty regular file (or - for stdin).
check_file() {
	[ -f "$2" ] || die $EX_USAGE "$1 $2: no such file"
	[ -r "$2" ] || die $EX_USAGE "$1 $2: not readable"
	[ -s "$2" ] || die $EX_USAGE "$1 $2: empty"
}
# check_pem WHAT FILE private|public|cert
check_pem() {
	check_file "$1" "$2"
	if [ "$3" != private ] && grep -q 'PRIVATE KEY' "$2"; then
		die $EX_USAGE "$1 $2 holds a private key; give the public key or certificate only"
	fi
	case $3 in
	private)
		grep -Eq '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----' "$2" || die $EX_USAGE "$1 $2: no PEM private key in it"
		! grep -q '^-----BEGIN ENCRYPTED PRIVATE KEY' "$2" || die $EX_USAGE "$1 $2: the key is encrypted; kioskd needs it unencrypted"
		;;
	public)
		grep -q '^-----BEGIN PUBLIC KEY-----' "$2" || die $EX_USAGE "$1 $2: no PEM \"PUBLIC KEY\" in it"
		;;
	cert)
		grep -q '^-----BEGIN CERTIFICATE-----' "$2" || die $EX_USAGE "$1 $2: no PEM certificate in it"
		;;
	esac
}

# Key files: option, source, destination name, [kpos] key.
keys=
add_key() { # OPTION SRC KIND DEST TOMLKEY
	[ -n "$2" ] || return 0
	check_pem "$1" "$2" "$3"
	keys="$keys$2	$4	$5
"
}
add_key --kpos-signing-key "$k_signing" private kpos-signing.key.pem signing_key
add_key --kpos-ecdh-key "$k_ecdh" private kpos-ecdh.key.pem ecdh_private_key
add_key --finexus-signing-public-key "$f_signing" public finexus-signing.pub.pem finexus_signing_public_key
add_key --finexus-ecdh-public-key "$f_ecdh" public finexus-ecdh.pub.pem finexus_ecdh_public_key
add_key --kpos-tls-cert "$tls_cert" cert kpos-tls.crt.pem tls_cert
add_key --kpos-tls-key "$tls_key" private kpos-tls.key.pem tls_key

if [ -n "$secret_src" ] && [ "$secret_src" != - ]; then
	check_file --pos-secret-file "$secret_src"
fi
[ -z "$template" ] || check_file --template "$template"
if [ -n "$save_secret" ] && [ -e "$save_secret" ] && [ $force = 0 ]; then
	die $EX_REFUSED "--save-secret $save_secret exists; nothing written (--force to overwrite)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/provision.XXXXXX")
mounts=
loops=
stty_saved=
cleanup() {
	[ -z "$stty_saved" ] || stty "$stty_saved" 2>/dev/null || true
	for m in $mounts; do umount "$m" 2>/dev/null || warn "could not unmount $m"; done
	for l in $loops; do losetup -d "$l" 2>/dev/null || warn "could not detach $l"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The POS secret given on standard input is read now, before any mount.
if [ "$secret_src" = - ]; then
	if [ -t 0 ]; then
		stty_saved=$(stty -g)
		printf 'POS secret (not shown): ' >&2
		stty -echo
		line=
		IFS= read -r line || true
		stty "$stty_saved"
		stty_saved=
		printf '\n' >&2
		printf '%s' "$line" >"$tmp/pos.secret"
		line=
	else
		cat >"$tmp/pos.secret"
	fi
	[ -s "$tmp/pos.secret" ] || die $EX_USAGE "the POS secret on standard input is empty"
	secret_src=$tmp/pos.secret
fi
if [ -n "$secret_src" ]; then
	first=
	IFS= read -r first <"$secret_src" || true
	first=${first%"$(printf '\r')"}
	if [ "$first" = "$DEV_SECRET" ]; then
		first=
		die $EX_REFUSED "the POS secret given is the public development key from MobyPay's document; a kiosk needs its own"
	fi
	first=
fi

# --- image mode: find and mount the data partition ----------------------------

# parts_from_mbr IMAGE -> "N START_BYTES SIZE_BYTES" per primary partition.
parts_from_mbr() {
	od -An -v -j446 -N66 -tu1 "$1" | awk '
	{ for (i = 1; i <= NF; i++) b[n++] = $i }
	function u32(o) { return b[o] + 256 * (b[o + 1] + 256 * (b[o + 2] + 256 * b[o + 3])) }
	END {
		if (b[64] != 85 || b[65] != 170) exit 1
		for (p = 0; p < 4; p++) {
			o = 16 * p; t = b[o + 4]
			if (t == 238) { print "gpt"; exit }
			if (t == 0 || t == 5 || t == 15 || t == 133) continue
			printf "%d %.0f %.0f\n", p + 1, u32(o + 8) * 512, u32(o + 12) * 512
		}
	}'
}

fstype() {
	blkid -p -o value -s TYPE "$1" 2>/dev/null || true
}

if [ -n "$image" ]; then
	[ "$uid" = 0 ] || die $EX_REFUSED "--image needs root (losetup and mount); or mount the data partition yourself and use --data-dir"
	[ -f "$image" ] || die $EX_USAGE "--image $image: no such file"
	for t in losetup mount umount blkid; do
		command -v $t >/dev/null 2>&1 || die $EX_FAIL "--image needs $t"
	done
	# "N DEVICE" for each partition.
	parts=
	loop=$(losetup -f -P --show "$image") || die $EX_FAIL "losetup -P $image failed"
	loops="$loop"
	if command -v udevadm >/dev/null 2>&1; then udevadm settle 2>/dev/null || true; fi
	for p in "$loop"p*; do
		[ -b "$p" ] || continue
		parts="$parts${p##*p} $p
"
	done
	if [ -z "$parts" ]; then
		# No partition nodes (a kernel without partition table support, or
		# a container without udev): a loop device per MBR partition.
		losetup -d "$loop"
		loops=
		mbr=$(parts_from_mbr "$image") || die $EX_USAGE "$image has no partition table"
		[ "$mbr" != gpt ] || die $EX_FAIL "$image has a GPT partition table and the kernel shows no partitions of its loop device"
		while read -r n start size; do
			[ -n "$n" ] || continue
			l=$(losetup -f --show -o "$start" --sizelimit "$size" "$image") || die $EX_FAIL "losetup of partition $n failed"
			loops="$loops $l"
			parts="$parts$n $l
"
		done <<EOF
$mbr
EOF
	fi
	[ -n "$parts" ] || die $EX_USAGE "$image: no partitions found"

	data_part=
	labelled=
	wanted=$partition
	while read -r n p; do
		[ -n "$n" ] || continue
		if [ -n "$wanted" ]; then
			if [ "$n" = "$wanted" ]; then data_part=$p; fi
		elif [ "$(fstype "$p")" = ext4 ] && [ -z "$labelled" ]; then
			data_part=$p
			partition=$n
			if [ "$(blkid -p -o value -s LABEL "$p" 2>/dev/null)" = "$DATA_LABEL" ]; then
				labelled=1
			fi
		fi
	done <<EOF
$parts
EOF
	if [ -z "$data_part" ]; then
		if [ -n "$wanted" ]; then
			die $EX_USAGE "$image has no partition $wanted"
		fi
		die $EX_USAGE "$image has no ext4 partition for the data (--partition N to name it)"
	fi
	say "Data partition: $image partition $partition ($(fstype "$data_part"))"

	# The template: the image's own /etc/kioskd/kioskd.toml.
	if [ -z "$template" ]; then
		while read -r n p; do
			if [ -z "$n" ] || [ "$n" = "$partition" ]; then continue; fi
			mkdir -p "$tmp/ro$n"
			mount -o ro "$p" "$tmp/ro$n" 2>/dev/null || continue
			if [ -f "$tmp/ro$n/etc/kioskd/kioskd.toml" ]; then
				cp "$tmp/ro$n/etc/kioskd/kioskd.toml" "$tmp/template.toml"
				template=$tmp/template.toml
				say "Template: /etc/kioskd/kioskd.toml of partition $n"
			fi
			umount "$tmp/ro$n"
			[ -z "$template" ] || break
		done <<EOF
$parts
EOF
	fi

	mkdir "$tmp/data"
	mount -o nosuid,nodev,noexec "$data_part" "$tmp/data" || die $EX_FAIL "mounting partition $partition failed"
	mounts="$tmp/data"
	data_dir=$tmp/data
fi

# --- the data directory -------------------------------------------------------

[ -d "$data_dir" ] || die $EX_USAGE "--data-dir $data_dir: not a directory"
if [ "$(stat -L -c %d:%i "$data_dir")" = "$(stat -L -c %d:%i /)" ]; then
	die $EX_REFUSED "--data-dir is this machine's root directory"
fi
if [ -d "$data_dir/etc" ] && [ -d "$data_dir/bin" ]; then
	die $EX_REFUSED "$data_dir looks like a root filesystem (it has etc/ and bin/), not the data partition"
fi
for d in secrets kioskd; do
	if [ -L "$data_dir/$d" ]; then
		die $EX_REFUSED "$data_dir/$d is a symbolic link; refusing to write through it"
	fi
	if [ -e "$data_dir/$d" ] && [ ! -d "$data_dir/$d" ]; then
		die $EX_REFUSED "$data_dir/$d exists and is not a directory"
	fi
done

# The POS secret: write it, or keep the one there.
write_secret=1
if [ -z "$secret_src" ] && [ $generate = 0 ]; then
	if [ -e "$data_dir/secrets/pos.secret" ]; then
		write_secret=0
	else
		generate=1
	fi
fi

# What would be overwritten.
targets="kioskd.toml"
[ $write_secret = 0 ] || targets="$targets secrets/pos.secret"
while IFS='	' read -r src dest key; do
	[ -n "$src" ] || continue
	targets="$targets secrets/$dest"
done <<EOF
$keys
EOF
existing=
for f in $targets; do
	if [ -e "$data_dir/$f" ] || [ -L "$data_dir/$f" ]; then
		existing="$existing $f"
	fi
done
if [ -n "$existing" ] && [ $force = 0 ]; then
	die $EX_REFUSED "already provisioned, would overwrite:$existing (in $data_dir); nothing written (--force to overwrite)"
fi

# toml_str VALUE -> a TOML basic string.
toml_str() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}

# The settings, one "section<TAB>key<TAB>value" a line; value "-" deletes.
spec=$tmp/spec
{
	printf '\tkiosk_id\t%s\n' "$(toml_str "$kiosk_id")"
	if [ -z "$template" ]; then
		printf '\tdata_dir\t%s\n' "$(toml_str "$mount_point/kioskd")"
		printf 'control\tsocket\t%s\n' "$(toml_str "$mount_point/kioskd/control.sock")"
	fi
	printf 'pos\tsecret_file\t%s\n' "$(toml_str "$mount_point/secrets/pos.secret")"
	printf 'pos\tsecret\t-\n'
	while IFS='	' read -r src dest key; do
		[ -n "$src" ] || continue
		printf 'kpos\t%s\t%s\n' "$key" "$(toml_str "$mount_point/secrets/$dest")"
	done <<EOF
$keys
EOF
	[ -z "$board" ] || printf 'board\tkind\t%s\n' "$(toml_str "$board")"
} >"$spec"

if [ -z "$template" ]; then
	[ -n "$board" ] || die $EX_USAGE "no template: give --template FILE (the image's /etc/kioskd/kioskd.toml) or --board KIND for a minimal config"
	cat >"$tmp/template.toml" <<EOF
# kioskd configuration of this kiosk. Keys not set here take kioskd's
# built-in defaults: \`kioskd config default\` prints them.

[pos]

[control]

[board]
EOF
	template=$tmp/template.toml
fi

# render TEMPLATE: the template with the spec applied. Keys already in a
# section are replaced where they are; missing ones go just after their
# section's header (top-level ones before the first header); missing
# sections are appended.
render() {
	awk -v specfile="$spec" '
	function header(line,   h) {
		if (line !~ /^[ \t]*\[/) return ""
		h = line; sub(/^[ \t]*\[+[ \t]*/, "", h); sub(/[ \t]*\].*$/, "", h)
		return h
	}
	function keyof(line,   k) {
		if (line !~ /^[ \t]*[A-Za-z0-9_-]+[ \t]*=/) return ""
		k = line; sub(/^[ \t]*/, "", k); sub(/[ \t]*=.*$/, "", k)
		return k
	}
	function pending(s,   i, k, p, c) {   # print the keys of s not in the template
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, p, SUBSEP)
			if (p[1] == s && !(k in present) && !(k in done) && val[k] != "-") {
				print p[2] " = " val[k]; done[k] = 1; c++
			}
		}
		return c
	}
	BEGIN {
		FS = "\t"
		while ((getline l < specfile) > 0) {
			split(l, f, "\t"); k = f[1] SUBSEP f[2]
			val[k] = f[3]; order[++n] = k
		}
		FS = " "
	}
	NR == FNR {   # first pass: which keys and sections the template has
		if ((h = header($0)) != "" || $0 ~ /^[ \t]*\[/) { cur = h; has[cur] = 1; next }
		if ((k = keyof($0)) != "") present[cur SUBSEP k] = 1
		next
	}
	FNR == 1 { cur = ""; first = 1 }
	{
		if ($0 ~ /^[ \t]*\[/) {
			if (first) { first = 0; if (pending("") > 0) print "" }
			cur = header($0); print; pending(cur); next
		}
		if ((k = keyof($0)) != "" && ((cur SUBSEP k) in val)) {
			if (val[cur SUBSEP k] == "-") {
				print "# " k ": removed by provision.sh, secret_file is used"
			} else if (!((cur SUBSEP k) in done)) {
				print k " = " val[cur SUBSEP k]; done[cur SUBSEP k] = 1
			}
			next
		}
		print
	}
	END {
		if (first) pending("")
		for (i = 1; i <= n; i++) {
			split(order[i], p, SUBSEP); s = p[1]
			if (s != "" && !(s in has) && !(s in added)) {
				added[s] = 1; print ""; print "[" s "]"; pending(s)
			}
		}
	}' "$1" "$1"
}

{
	printf '# Provisioned by scripts/provision.sh for %s on %s.\n' "$kiosk_id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '# This file takes the place of /etc/kioskd/kioskd.toml.\n'
	render "$template"
} >"$tmp/kioskd.toml"
# A build-time placeholder left in (buildroot/package/kioskd/kioskd.toml
# has kind = "@KIOSKD_BOARD@" until the package fills it in).
if ph=$(grep -v '^[[:space:]]*#' "$tmp/kioskd.toml" | grep -Eo '@[A-Z0-9_]+@' | head -n 1) && [ -n "$ph" ]; then
	hint=
	[ "$ph" != @KIOSKD_BOARD@ ] || hint=": give --board"
	die $EX_USAGE "the config would keep the template's placeholder $ph$hint"
fi

# --- write ---------------------------------------------------------------------

# own PATH MODE
own() {
	chmod "$2" "$1"
	chown "$owner" "$1" || die $EX_FAIL "chown $owner $1 failed"
}
# put SRC DEST: copy, 0600, owner, then rename into place.
put() {
	rm -f "$2.new"
	cp "$1" "$2.new" || die $EX_FAIL "writing $2 failed"
	own "$2.new" 0600
	mv -f "$2.new" "$2"
}

for d in secrets kioskd; do
	if [ ! -d "$data_dir/$d" ]; then
		mkdir "$data_dir/$d" || die $EX_FAIL "mkdir $data_dir/$d failed"
	fi
	own "$data_dir/$d" 0700
done

secret_note=
if [ $write_secret = 1 ]; then
	if [ $generate = 1 ]; then
		[ -r /dev/urandom ] || die $EX_FAIL "/dev/urandom is not readable"
		od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/generated"
		[ "$(wc -c <"$tmp/generated" | tr -d ' ')" = 64 ] || die $EX_FAIL "generating the POS secret failed"
		put "$tmp/generated" "$data_dir/secrets/pos.secret"
		secret_note="generated (64 hex characters)"
	else
		put "$secret_src" "$data_dir/secrets/pos.secret"
		secret_note="copied"
	fi
else
	own "$data_dir/secrets/pos.secret" 0600
	secret_note="kept the one already there"
fi

while IFS='	' read -r src dest key; do
	[ -n "$src" ] || continue
	put "$src" "$data_dir/secrets/$dest"
done <<EOF
$keys
EOF

put "$tmp/kioskd.toml" "$data_dir/kioskd.toml"
sync
where=$data_dir
if [ -n "$image" ]; then
	where="$image partition $partition"
	umount "$tmp/data" || die $EX_FAIL "unmounting the data partition failed"
	mounts=
	for l in $loops; do losetup -d "$l" || die $EX_FAIL "losetup -d $l failed"; done
	loops=
fi

if [ -n "$save_secret" ]; then
	rm -f "$save_secret.new"
	cp "$data_dir/secrets/pos.secret" "$save_secret.new" || die $EX_FAIL "writing $save_secret failed"
	chmod 0600 "$save_secret.new"
	if [ "$uid" = 0 ] && [ -n "${SUDO_UID:-}" ]; then
		chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$save_secret.new" || true
	fi
	mv -f "$save_secret.new" "$save_secret"
fi

say "Provisioned kiosk $kiosk_id in $where (the kiosk's $mount_point), owner $owner:"
say "  kioskd.toml                        0600"
say "  secrets/                           0700"
say "  secrets/pos.secret                 0600  POS secret: $secret_note"
while IFS='	' read -r src dest key; do
	[ -n "$src" ] || continue
	printf '  %-34s 0600  kpos.%s\n' "secrets/$dest" "$key"
done <<EOF
$keys
EOF
say "  kioskd/                            0700  journal"
if [ -n "$save_secret" ]; then
	say "The POS terminal needs the same secret: a copy is in $save_secret (0600)."
elif [ $write_secret = 1 ] && [ $generate = 1 ]; then
	say "The POS terminal needs the same secret: it is in $mount_point/secrets/pos.secret on the kiosk (--save-secret FILE keeps a copy here)."
fi
