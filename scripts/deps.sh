#!/bin/sh
# Installs the Debian 12 packages vscale needs to build and test. Idempotent: when everything is
# present it only runs dpkg-query and exits (well under a second).
set -eu

BUILD="build-essential cmake pkg-config clang-format
  libev-dev libprotobuf-c-dev protobuf-c-compiler libvirt-dev libproc2-dev libnanomsg-dev
  libinih-dev zlib1g-dev libcmocka-dev libsystemd-dev libmicrohttpd-dev libxml2-dev"

# the e2e tests and make demo boot real VMs: libvirt and QEMU (TCG) at run time; jq reads
# vscalectl --json in tests/e2e/faults.sh
E2E="libvirt-daemon-system libvirt-clients qemu-system-x86 jq"

# the policy simulator's plots (vscale-sim, issue 8)
SIM="gnuplot-nox"
# libFuzzer targets and valgrind (issue 6): clang's libFuzzer and sanitizer runtimes are in
# libclang-rt-14-dev (only recommended by clang, and recommends are not installed here)
FUZZ="clang libclang-rt-14-dev valgrind"
# .deb packages and their install test (issue 5)
PKG="debootstrap dpkg-dev groff-base systemd-container zstd"
# the migration test's second host (issue 7): ip (veth, addresses in the namespaces); unshare
# and nsenter are util-linux, which Debian always has
PEER="iproute2"

want="$BUILD $E2E $SIM $FUZZ $PKG $PEER ${VSCALE_EXTRA_DEPS:-}"
missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
