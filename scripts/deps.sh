#!/bin/sh
# Installs the Debian 12 packages vscale needs to build and test. Idempotent: when everything is
# present it only runs dpkg-query and exits (well under a second).
set -eu

BUILD="build-essential cmake pkg-config clang-format
  libev-dev libprotobuf-c-dev protobuf-c-compiler libvirt-dev libproc2-dev libnanomsg-dev
  libinih-dev zlib1g-dev libcmocka-dev libsystemd-dev libmicrohttpd-dev libxml2-dev"

# the e2e tests and make demo boot real VMs: libvirt and QEMU (TCG) at run time
E2E="libvirt-daemon-system libvirt-clients qemu-system-x86"

want="$BUILD $E2E ${VSCALE_EXTRA_DEPS:-}"
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
