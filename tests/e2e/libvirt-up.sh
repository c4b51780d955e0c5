#!/bin/bash
# Prepares this host for the end-to-end tests, idempotently: /dev/kvm as Debian's udev would set
# it (else libvirt re-probes QEMU on every lookup and a domain start takes ~50 s instead of
# ~0.5 s; ../../../shared/PLATFORM.md), then virtlogd and libvirtd started by hand when they are
# not running (CI has no systemd), then waits until qemu:///system answers.
# Usage: libvirt-up.sh            (needs root; quick when everything is already up)
set -euo pipefail

URI=qemu:///system
die() {
	echo "libvirt-up: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it starts the system libvirtd)"
for b in virtlogd libvirtd virsh; do
	command -v "$b" >/dev/null || die "$b not found: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86"
done

if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
	if [ "$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then
		chgrp kvm /dev/kvm && chmod 660 /dev/kvm
		echo "libvirt-up: /dev/kvm set to root:kvm 0660"
	fi
fi

running() { # NAME PIDFILE: true when the pid file names a live process of that name
	local pid
	[ -r "$2" ] || return 1
	pid=$(cat "$2" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# Daemons started from here must not keep our caller's descriptors (a flock(1) lock, a ctest
# pipe): they outlive us and would hold them for good.
daemon() {
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
		done
		exec "$@"
	)
}

# With systemd, socket activation does all this; let systemd keep it.
if [ -d /run/systemd/system ]; then
	systemctl start virtlogd.socket libvirtd.socket 2>/dev/null || systemctl start libvirtd
else
	if ! running virtlogd /run/virtlogd.pid && ! pidof virtlogd >/dev/null; then
		daemon virtlogd -d
		echo "libvirt-up: started virtlogd"
	fi
	if ! running libvirtd /run/libvirtd.pid && ! pidof libvirtd >/dev/null; then
		daemon libvirtd -d
		echo "libvirt-up: started libvirtd"
	fi
fi

t0=$(date +%s%N)
for _ in $(seq 1 300); do
	if virsh -c "$URI" version >/dev/null 2>&1; then
		echo "libvirt-up: $URI answers after $((($(date +%s%N) - t0) / 1000000)) ms"
		exit 0
	fi
	sleep 0.1
done
virsh -c "$URI" version || true
die "$URI does not answer after 30 s (see /var/log/libvirt/libvirtd.log)"
