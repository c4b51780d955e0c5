#!/bin/bash
# Builds the Debian packages vscale-host and vscale-guest from a CMake build directory: builds the
# binaries, installs each CMake component (host, guest) with `cmake --install --prefix /usr` into
# its own tree, strips the binaries (usr/sbin and usr/bin), compresses the man pages, computes
# Depends with dpkg-shlibdeps, writes conffiles and md5sums, adds the maintainer scripts beside
# this file and runs dpkg-deb. No debhelper: only dpkg-dev. A few seconds; rerun it whenever the
# tree changed.
#
# Usage: packaging/deb/build.sh BUILD_DIR [OUT_DIR] [--only host|guest]
#   OUT_DIR defaults to BUILD_DIR/deb. Prints the path of each .deb it wrote, one a line.
# Environment: VSCALE_DEB_VERSION   package version (default: the CMake project version)
set -euo pipefail

die() {
	echo "build-debs: $*" >&2
	exit 1
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=""
OUT=""
ONLY=""
while [ $# -gt 0 ]; do
	case $1 in
	--only)
		[ $# -ge 2 ] || die "--only needs host or guest"
		ONLY=$2
		shift 2
		;;
	-*) die "unknown option $1" ;;
	*)
		if [ -z "$BUILD" ]; then BUILD=$1; elif [ -z "$OUT" ]; then OUT=$1; else die "too many arguments"; fi
		shift
		;;
	esac
done
[ -n "$BUILD" ] || die "usage: build.sh BUILD_DIR [OUT_DIR] [--only host|guest]"
case $ONLY in "" | host | guest) ;; *) die "--only takes host or guest, not '$ONLY'" ;; esac
[ -f "$BUILD/CMakeCache.txt" ] || die "$BUILD is not a configured CMake build directory"
BUILD=$(cd "$BUILD" && pwd)
OUT=${OUT:-$BUILD/deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for t in dpkg-deb dpkg-shlibdeps strip; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install dpkg-dev binutils)"
done
# one build at a time per output directory (parallel e2e runs share it)
exec 8>"$OUT/.lock"
flock 8

VERSION=${VSCALE_DEB_VERSION:-$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")}
[ -n "$VERSION" ] || die "no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt"
ARCH=$(dpkg --print-architecture)
PACKAGES=(host guest)
[ -z "$ONLY" ] || PACKAGES=("$ONLY")

# --- the binaries ----------------------------------------------------------------------------
targets=()
for p in "${PACKAGES[@]}"; do
	case $p in
	host)
		targets+=(vscale-hostd)
		# vscalectl ships when the build defines it (then its install rule is generated)
		if grep -q '/vscalectl"' "$BUILD/host-agent/cmake_install.cmake" 2>/dev/null; then
			targets+=(vscalectl)
		fi
		# and so does vscale-sim, the policy simulator (sim/)
		if grep -q '/vscale-sim"' "$BUILD/sim/cmake_install.cmake" 2>/dev/null; then
			targets+=(vscale-sim)
		fi
		;;
	guest) targets+=(vscale-guestd) ;;
	esac
done
cmake --build "$BUILD" --target "${targets[@]}" >"$OUT/build.log" 2>&1 ||
	die "building ${targets[*]} failed: $(tail -n 20 "$OUT/build.log")"

WORK="$OUT/work"
rm -rf "$WORK"
mkdir -p "$WORK/debian"
# dpkg-shlibdeps reads debian/control and wants the binaries in debian/<package>/
printf 'Source: vscale\n\nPackage: vscale-host\nArchitecture: any\n\nPackage: vscale-guest\nArchitecture: any\n' \
	>"$WORK/debian/control"

# Only the CMake install components host and guest ship; anything installed without one of
# them (COMPONENT Unspecified) is in neither package.

describe() { # PACKAGE -> the Description field
	case $1 in
	vscale-host)
		cat <<'EOF'
Description: vertical autoscaler for KVM VMs - host agent
 vscale grows and shrinks the vCPUs and memory of running libvirt VMs live,
 with no downtime, as their work changes. vscale-hostd follows the domains
 that have the vscale virtio-serial channel, reads the metrics their guest
 agent streams and applies threshold policies from /etc/vscale/vscale.conf
 through libvirt (vCPU hot-plug, virtio-mem, DIMM or balloon). vscalectl is
 its operator command line; metrics are served in Prometheus format.
 vscale-sim replays utilization traces through the same policy code to tune
 a policy before deploying it; sample traces and policies are included.
EOF
		;;
	vscale-guest)
		cat <<'EOF'
Description: vertical autoscaler for KVM VMs - guest agent
 vscale-guestd runs inside a VM scaled by vscale-hostd. It streams CPU,
 memory, pressure and single-thread saturation metrics to the host over the
 virtio-serial port org.vscale.agent.0, onlines hot-added CPUs and memory
 (memory as movable) and offlines them when the host asks. udev starts it
 when the port appears and stops it when the port goes.
EOF
		;;
	esac
}

build_one() { # host|guest
	local comp=$1 pkg=vscale-$1 root f deps extra recommends suggests bins
	root="$WORK/debian/$pkg"
	mkdir -p "$root"
	DESTDIR="$root" cmake --install "$BUILD" --prefix /usr --component "$comp" >/dev/null
	[ -x "$root/usr/sbin/vscale-${comp}d" ] || die "$pkg: usr/sbin/vscale-${comp}d was not installed"

	# Debian layout: stripped binaries, man pages gzip -9n, docs in /usr/share/doc/PACKAGE
	bins=("$root"/usr/sbin/*)
	for f in "$root"/usr/bin/*; do # vscale-host's vscale-sim
		[ ! -f "$f" ] || bins+=("$f")
	done
	for f in "${bins[@]}"; do
		strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
	done
	find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
	mkdir -p "$root/usr/share/doc/$pkg"
	if [ -d "$root/usr/share/doc/vscale" ]; then
		mv "$root/usr/share/doc/vscale"/* "$root/usr/share/doc/$pkg/"
		rmdir "$root/usr/share/doc/vscale"
	fi
	[ -f "$root/usr/share/doc/$pkg/README.md" ] || install -m 0644 "$SRC/packaging/README.md" "$root/usr/share/doc/$pkg/"
	install -m 0644 "$HERE/copyright" "$root/usr/share/doc/$pkg/copyright"
	find "$root" -type d -exec chmod 0755 {} +
	find "$root" -type f ! -path '*/usr/sbin/*' ! -path '*/usr/bin/*' -exec chmod 0644 {} +

	mkdir -p "$root/DEBIAN"
	deps=$(cd "$WORK" && dpkg-shlibdeps -O -p"$pkg" "${bins[@]}" 2>"$WORK/shlibdeps-$comp.log" |
		sed -n "s/^$pkg:Depends=//p") || die "dpkg-shlibdeps failed: $(cat "$WORK/shlibdeps-$comp.log")"
	[ -n "$deps" ] || die "$pkg: dpkg-shlibdeps found no dependencies"
	case $comp in
	host)
		extra=", procps" # /bin/kill in ExecReload=
		recommends="Recommends: libvirt-daemon-system"
		suggests="Suggests: gnuplot-nox" # vscale-sim --plot
		;;
	guest)
		extra=""
		recommends="Recommends: udev, systemd"
		suggests=""
		;;
	esac
	{
		echo "Package: $pkg"
		echo "Version: $VERSION"
		echo "Architecture: $ARCH"
		echo "Maintainer: vscale developers <vscale@localhost>"
		echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
		echo "Depends: $deps$extra"
		echo "$recommends"
		[ -z "$suggests" ] || echo "$suggests"
		echo "Section: admin"
		echo "Priority: optional"
		describe "$pkg"
	} >"$root/DEBIAN/control"
	(cd "$root" && find etc -type f 2>/dev/null | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
	[ -s "$root/DEBIAN/conffiles" ] || rm -f "$root/DEBIAN/conffiles"
	(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print |
		sed 's|^\./||' | LC_ALL=C sort | xargs -r md5sum) >"$root/DEBIAN/md5sums"
	for f in postinst prerm postrm; do
		install -m 0755 "$HERE/$pkg.$f" "$root/DEBIAN/$f"
	done
	rm -f "$OUT/${pkg}"_*.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT/${pkg}_${VERSION}_${ARCH}.deb" >/dev/null ||
		die "dpkg-deb --build $pkg failed"
	echo "$OUT/${pkg}_${VERSION}_${ARCH}.deb"
}

for p in "${PACKAGES[@]}"; do
	build_one "$p"
done
rm -rf "$WORK"
