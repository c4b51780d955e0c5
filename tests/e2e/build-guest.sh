#!/bin/bash
# Builds the e2e test guest from Debian packages only: the kernel of linux-image-amd64 (the
# linux-image-6.1.x package it depends on) and an initramfs with busybox-static, the virtio
# modules in dependency order, the ACPI power button and evdev modules (busybox acpid turns the
# button, virsh shutdown, into a graceful poweroff), vscale-guestd and its config as the
# vscale-guest package ships them, the load controller and every shared library they need.
# Downloads are cached; when the inputs did not change it does nothing (about a second: the
# package is rebuilt to compare).
#
# Usage: build-guest.sh OUTDIR GUESTD [LOADGEN_BINARY]
#   GUESTD is a vscale-guest .deb, or the vscale-guestd of a CMake build directory
#   (BUILD/guest-agent/vscale-guestd): packaging/deb/build.sh then builds BUILD/deb/vscale-guest
#   first. Either way the binary is taken from the package's payload (dpkg-deb -x), so the test
#   runs what ships.
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.img and OUTDIR/guest.env (what went in).
# Environment: VSCALE_E2E_CACHE   download cache (default OUTDIR/cache)
#              VSCALE_E2E_KERNEL  kernel package[=version] instead of linux-image-amd64's
set -euo pipefail

die() {
	echo "build-guest: $*" >&2
	exit 1
}
[ $# -ge 2 ] || die "usage: build-guest.sh OUTDIR GUESTD_DEB|GUESTD_BINARY [LOADGEN_BINARY]"
OUT=$1
GUESTD_FROM=$2
LOADGEN=${3:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -z "$LOADGEN" ] || [ -x "$LOADGEN" ] || die "$LOADGEN: not an executable"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# one build at a time per output directory (parallel test runs share it)
exec 9>"$OUT/.lock"
flock 9

# --- vscale-guestd from the vscale-guest package ---------------------------------------------
case $GUESTD_FROM in
*.deb) GUEST_DEB=$GUESTD_FROM ;;
*)
	GBUILD=$(cd "$(dirname "$GUESTD_FROM")/.." 2>/dev/null && pwd) || die "$GUESTD_FROM: no such directory"
	[ -f "$GBUILD/CMakeCache.txt" ] ||
		die "$GUESTD_FROM: give a vscale-guest .deb or BUILD_DIR/guest-agent/vscale-guestd"
	GUEST_DEB=$("$HERE/../../packaging/deb/build.sh" "$GBUILD" "$GBUILD/deb" --only guest) ||
		die "building the vscale-guest package failed"
	;;
esac
[ -s "$GUEST_DEB" ] || die "$GUEST_DEB: no such package"
[ "$(dpkg-deb -f "$GUEST_DEB" Package)" = vscale-guest ] || die "$GUEST_DEB is not vscale-guest"
GPKG="$OUT/guest-pkg"
rm -rf "$GPKG"
dpkg-deb -x "$GUEST_DEB" "$GPKG" || die "dpkg-deb -x $GUEST_DEB failed"
GUESTD=$GPKG/usr/sbin/vscale-guestd
[ -x "$GUESTD" ] || die "$GUEST_DEB has no usr/sbin/vscale-guestd"
GUEST_PKG_VERSION=$(dpkg-deb -f "$GUEST_DEB" Version)
CACHE=${VSCALE_E2E_CACHE:-$OUT/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ARCH=$(dpkg --print-architecture)
# the modules the guest needs (their dependencies are added from the modules themselves): the
# virtio drivers, and the ACPI power button with evdev for acpid (/dev/input/event*)
WANT_MODULES="virtio_pci virtio_console virtio_balloon virtio_mem button evdev"
# what is unpacked of the kernel package: the kernel, its config and the drivers of WANT_MODULES
# (the whole tree is 400 MB)
KTREE_PATTERNS=('./boot/vmlinuz-*' './boot/config-*' './lib/modules/*/modules.builtin'
	'./lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/drivers/char/virtio_console.ko*'
	'./lib/modules/*/kernel/drivers/acpi/button.ko*' './lib/modules/*/kernel/drivers/input/evdev.ko*')

# --- which packages: resolved from the local apt lists, no network -------------------------------
# one apt-cache call (each costs ~0.3 s)
KPIN=${VSCALE_E2E_KERNEL:-}
KPIN=${KPIN%%=*}
read_policy() {
	# shellcheck disable=SC2086
	POLICY=$(apt-cache policy linux-image-amd64 busybox-static $KPIN 2>/dev/null || true)
}
candidate() { # PKG -> candidate version, "" when apt knows none
	echo "$POLICY" | awk -v p="$1:" '$0 == p { f = 1; next } /^[^ ]/ { f = 0 }
		f && $1 == "Candidate:" { if ($2 != "(none)") print $2; exit }'
}
read_policy
if [ -z "$(candidate busybox-static)" ] && ! ls "$CACHE"/busybox-static_*.deb >/dev/null 2>&1; then
	echo "build-guest: no apt lists: apt-get update"
	apt-get update -q >/dev/null || die "apt-get update failed"
	read_policy
fi

fetch_deb() { # PKG VERSION -> path of the cached .deb (downloads it when missing)
	local f="$CACHE/${1}_${2//:/%3a}_$ARCH.deb"
	if [ ! -s "$f" ]; then
		echo "build-guest: downloading $1 $2" >&2
		(cd "$CACHE" && apt-get download -q "$1=$2" 2>&1 | grep -v 'unsandboxed' >&2) || true
		[ -s "$f" ] || die "apt-get download $1=$2 failed"
	fi
	echo "$f"
}

newest_cached() { # PKG-GLOB -> newest cached .deb (offline fallback), "" when none
	# shellcheck disable=SC2012,SC2086 # $1 is a glob; cache names are plain
	ls -t "$CACHE"/$1_*.deb 2>/dev/null | head -n1 || true
}

# kernel: linux-image-amd64 is a meta package; its Depends names the real linux-image-6.1.0-N
if [ -n "${VSCALE_E2E_KERNEL:-}" ]; then
	KPKG=${VSCALE_E2E_KERNEL%%=*}
	KVER=${VSCALE_E2E_KERNEL#*=}
	[ "$KVER" != "$VSCALE_E2E_KERNEL" ] || KVER=$(candidate "$KPKG")
	[ -n "$KVER" ] || die "no version of $KPKG known to apt"
	KDEB=$(fetch_deb "$KPKG" "$KVER")
else
	META_VER=$(candidate linux-image-amd64)
	if [ -n "$META_VER" ]; then
		META=$(fetch_deb linux-image-amd64 "$META_VER")
		DEP=$(dpkg-deb -f "$META" Depends)
		KPKG=$(echo "$DEP" | sed -n 's/^\(linux-image-[^ ,]*\) *(= *\([^)]*\)).*/\1/p')
		KVER=$(echo "$DEP" | sed -n 's/^\(linux-image-[^ ,]*\) *(= *\([^)]*\)).*/\2/p')
		if [ -z "$KPKG" ] || [ -z "$KVER" ]; then
			die "cannot read the kernel package from '$DEP'"
		fi
		KDEB=$(fetch_deb "$KPKG" "$KVER")
	else
		KDEB=$(newest_cached 'linux-image-[0-9]*')
		[ -n "$KDEB" ] || die "apt knows no linux-image-amd64 and nothing is cached"
		KPKG=$(dpkg-deb -f "$KDEB" Package)
		KVER=$(dpkg-deb -f "$KDEB" Version)
		echo "build-guest: apt knows no linux-image-amd64; using cached $KPKG $KVER"
	fi
fi
BB_VER=$(candidate busybox-static)
if [ -n "$BB_VER" ]; then
	BBDEB=$(fetch_deb busybox-static "$BB_VER")
else
	BBDEB=$(newest_cached busybox-static)
	[ -n "$BBDEB" ] || die "apt knows no busybox-static and nothing is cached"
	BB_VER=$(dpkg-deb -f "$BBDEB" Version)
fi

# --- up to date? ---------------------------------------------------------------------------------
libs_of() { # BINARY... -> the shared libraries and the loader they need, one path a line
	local b
	for b in "$@"; do
		ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' ||
			die "ldd $b failed"
	done | sort -u
}
BINS=("$GUESTD")
[ -z "$LOADGEN" ] || BINS+=("$LOADGEN")
LIBS=$(libs_of "${BINS[@]}")
# shellcheck disable=SC2086
STAMP=$({
	echo "$KDEB $BBDEB $WANT_MODULES"
	sha256sum "${BASH_SOURCE[0]}" "$HERE"/guest/* "${BINS[@]}" "$GPKG/etc/vscale/guest.conf"
	stat -L -c '%n %s %Y' $LIBS
} | sha256sum | cut -d' ' -f1)
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ] && [ -s "$OUT/guest.env" ] &&
	[ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
	echo "build-guest: $OUT is up to date ($KPKG $KVER)"
	exit 0
fi
t0=$(date +%s%N)
rm -f "$OUT/stamp"

# --- unpack what is needed of the kernel package (once per version and pattern list) ----------------
# .done holds the patterns it was unpacked with: a tree unpacked with other ones is unpacked again
# (tests/packaging/guest-boot.sh reads the modules from this directory too)
KTREE="$CACHE/kernel-$KPKG-$KVER"
if [ "$(cat "$KTREE/.done" 2>/dev/null)" != "${KTREE_PATTERNS[*]}" ]; then
	echo "build-guest: unpacking $(basename "$KDEB")"
	rm -rf "$KTREE"
	mkdir -p "$KTREE"
	dpkg-deb --fsys-tarfile "$KDEB" | tar -C "$KTREE" -x --wildcards --no-wildcards-match-slash \
		"${KTREE_PATTERNS[@]}" || die "cannot unpack $KDEB"
	echo "${KTREE_PATTERNS[*]}" >"$KTREE/.done"
fi
VMLINUZ=$(find "$KTREE/boot" -name 'vmlinuz-*' | head -n1)
[ -n "$VMLINUZ" ] || die "no boot/vmlinuz-* in $KDEB"
KREL=${VMLINUZ##*/vmlinuz-}
MODDIR="$KTREE/lib/modules/$KREL"
KCONFIG="$KTREE/boot/config-$KREL"

BBTREE="$CACHE/busybox-$BB_VER"
if [ ! -x "$BBTREE/bin/busybox" ]; then
	rm -rf "$BBTREE"
	mkdir -p "$BBTREE"
	dpkg-deb -x "$BBDEB" "$BBTREE"
fi
BUSYBOX="$BBTREE/bin/busybox"

# --- the initramfs tree --------------------------------------------------------------------------
WORK="$OUT/work"
ROOT="$WORK/root"
rm -rf "$WORK"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,lib/modules/e2e,lib64}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
	[ -e "$ROOT/$a" ] || ln -s /bin/busybox "$ROOT/$a"
done
install -m 0755 "$HERE/guest/init" "$ROOT/init"
install -m 0755 "$HERE/guest/e2e-respawn" "$ROOT/bin/e2e-respawn"
install -m 0644 "$HERE/guest/inittab" "$ROOT/etc/inittab"
# busybox acpid runs CONFDIR/PWRF/00000080 on KEY_POWER (the ACPI power button)
install -D -m 0755 "$HERE/guest/power-button" "$ROOT/etc/acpi/PWRF/00000080"
install -m 0755 "$GUESTD" "$ROOT/usr/sbin/vscale-guestd"
install -D -m 0644 "$GPKG/etc/vscale/guest.conf" "$ROOT/etc/vscale/guest.conf"
[ -z "$LOADGEN" ] || install -m 0755 "$LOADGEN" "$ROOT/usr/bin/e2e-loadgen"
for l in $LIBS; do
	mkdir -p "$ROOT$(dirname "$l")"
	cp -L "$l" "$ROOT$l"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
echo "root:x:0:" >"$ROOT/etc/group"

# modules: only those that are not built in, dependencies first, decompressed
builtin() { # NAME: built into this kernel?
	tr '-' '_' <"$MODDIR/modules.builtin" | grep -q "/$1\.ko$"
}
mod_file() { # NAME -> its .ko[.xz|.zst|.gz] in the package
	find "$MODDIR/kernel" -name "$1.ko*" | head -n1
}
mod_deps() { # FILE -> the modules it depends on (its .modinfo "depends=" field)
	local f=$1
	case $f in
	*.xz) xz -dc "$f" ;;
	*.zst) zstd -qdc "$f" ;;
	*.gz) gzip -dc "$f" ;;
	*) cat "$f" ;;
	esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}
ORDER=()
declare -A SEEN=()
add_module() { # NAME: adds its dependencies, then itself
	local m=${1//-/_} f d
	[ -z "${SEEN[$m]:-}" ] || return 0
	SEEN[$m]=1
	if builtin "$m"; then
		echo "build-guest: $m is built into $KREL"
		return 0
	fi
	f=$(mod_file "$m")
	[ -n "$f" ] || die "module $m is neither built into $KREL nor in the unpacked drivers"
	for d in $(mod_deps "$f"); do
		add_module "$d"
	done
	case $f in
	*.xz) xz -dc "$f" >"$ROOT/lib/modules/e2e/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$ROOT/lib/modules/e2e/$m.ko" ;;
	*.gz) gzip -dc "$f" >"$ROOT/lib/modules/e2e/$m.ko" ;;
	*) cp "$f" "$ROOT/lib/modules/e2e/$m.ko" ;;
	esac
	ORDER+=("$m")
}
for m in $WANT_MODULES; do
	add_module "$m"
done
printf '%s\n' "${ORDER[@]}" >"$ROOT/lib/modules/e2e/order"

# cpio newc, gzip; busybox's cpio when the host has none
CPIO=(cpio)
command -v cpio >/dev/null || CPIO=("$BUSYBOX" cpio)
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}" -o -H newc -R 0:0 2>/dev/null) |
	gzip -6 >"$WORK/initrd.img"
[ -s "$WORK/initrd.img" ] || die "the initramfs is empty"

cp "$VMLINUZ" "$WORK/vmlinuz"
mv -f "$WORK/vmlinuz" "$OUT/vmlinuz"
mv -f "$WORK/initrd.img" "$OUT/initrd.img"
# the guest files must be readable by QEMU (user libvirt-qemu)
chmod 0644 "$OUT/vmlinuz" "$OUT/initrd.img"
cat >"$OUT/guest.env" <<EOF
KERNEL_PACKAGE=$KPKG
KERNEL_VERSION=$KVER
KERNEL_RELEASE=$KREL
BUSYBOX_VERSION=$BB_VER
GUESTD_PACKAGE=$(basename "$GUEST_DEB")
GUESTD_PACKAGE_VERSION=$GUEST_PKG_VERSION
MODULES="${ORDER[*]}"
MEMORY_HOTPLUG_DEFAULT_ONLINE=$(grep -q '^CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE=y' "$KCONFIG" && echo y || echo n)
EOF
echo "$STAMP" >"$OUT/stamp"
rm -rf "$WORK"
echo "build-guest: $OUT: kernel $KPKG $KVER ($KREL), vscale-guestd from $(basename "$GUEST_DEB")," \
	"initramfs $(du -k "$OUT/initrd.img" | cut -f1) KiB, modules: ${ORDER[*]} ($((($(date +%s%N) - t0) / 1000000)) ms)"
