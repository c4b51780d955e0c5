# shellcheck shell=bash
# Sourced by the packaging tests (bash): a clean Debian root for the vscale packages, cached.
#
#   pkgroot_tarball WORK_DIR HOST_DEB GUEST_DEB
#     Sets PKGROOT_TARBALL to WORK_DIR/root-SUITE-KEY.tar.zst: a debootstrap --variant=minbase
#     root of this machine's Debian release with systemd, udev, man-db, kmod and every package
#     the two .debs depend on (not the .debs themselves). KEY hashes the suite, the mirror and
#     that list, so a change of Depends makes a new root; older tarballs are deleted. Built once
#     (~50 s and ~80 MiB from the mirror), then reused. Progress on stderr; returns 1 on failure.
#   Environment: VSCALE_PKG_MIRROR  Debian mirror (default: this machine's apt source)

pkgroot_dep_names() { # DEB -> the names in its Depends, one a line (first of alternatives)
	dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep .
}

pkgroot_tarball() {
	local work=$1 host_deb=$2 guest_deb=$3 suite mirror include key boot
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$suite" ] || {
		echo "pkgroot: no VERSION_CODENAME in /etc/os-release" >&2
		return 1
	}
	mirror=${VSCALE_PKG_MIRROR:-$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' \
		/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
	[ -n "$mirror" ] || mirror=$(awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	include=$({
		echo systemd udev man-db kmod
		pkgroot_dep_names "$host_deb"
		pkgroot_dep_names "$guest_deb"
	} | tr ' ' '\n' | sort -u | tr '\n' ',' | sed 's/,$//')
	key=$(echo "$suite $mirror $include" | sha256sum | cut -c1-12)
	PKGROOT_TARBALL=$work/root-$suite-$key.tar.zst
	mkdir -p "$work"
	(
		flock 8
		[ ! -s "$PKGROOT_TARBALL" ] || exit 0
		boot=$work/bootstrap
		echo "pkgroot: debootstrap --variant=minbase $suite from $mirror with $include (cached afterwards)" >&2
		rm -rf --one-file-system "$boot"
		if ! debootstrap --variant=minbase --include="$include" "$suite" "$boot" "$mirror" \
			>"$work/debootstrap.log" 2>&1; then
			echo "pkgroot: debootstrap failed: $(tail -n 5 "$work/debootstrap.log")" >&2
			exit 1
		fi
		rm -rf "$boot/var/cache/apt/archives/"*.deb "$boot/var/lib/apt/lists/"*_Packages
		tar -C "$boot" -I 'zstd -T0 -3' -cf "$PKGROOT_TARBALL.tmp" . || exit 1
		mv "$PKGROOT_TARBALL.tmp" "$PKGROOT_TARBALL"
		rm -rf --one-file-system "$boot"
		find "$work" -maxdepth 1 -name 'root-*.tar.zst' ! -name "$(basename "$PKGROOT_TARBALL")" -delete
		echo "pkgroot: cached $PKGROOT_TARBALL ($(du -m "$PKGROOT_TARBALL" | cut -f1) MiB)" >&2
	) 8>"$work/.root-lock"
}
