#!/bin/bash
# The vscale-guest package in a real VM with systemd and udev: the clean Debian root of the
# install test (tests/packaging/root.sh) with vscale-guest installed by dpkg and the e2e kernel's
# virtio modules, booted as the initramfs of the e2e test domain (libvirt + QEMU TCG; systemd is
# /init and the root stays in RAM). Nothing starts vscale-guestd but the package's udev rule and
# unit, so each step checks them and the unit's sandbox:
#
#   1. udev starts the agent when the port appears at boot: its stream reaches the host (Hello,
#      samples) and the console shows the unit started;
#   2. under the sandbox it onlines a hot-plugged vCPU, and virtio-mem memory comes online movable
#      (the agent set auto_online_blocks): /sys writes;
#   3. the channel is detached live: the port goes and systemd stops the unit (BindsTo=);
#   4. the channel is attached again: udev starts the agent again, a new session reaches the host;
#   5. vscale-host in a container booted from the same root (systemd-nspawn, this host's libvirt
#      socket and channel directories bind-mounted in): its hostd, under the shipped unit's
#      sandbox, reads the VM's stream and scales it (vCPUs 2 -> 1 through the guest agent), and
#      with the unit's two capabilities taken away it cannot reach the channel.
#
# Usage: tests/packaging/guest-boot.sh BUILD_DIR   (root; exit 77 = skipped; one VM at a time:
#        ctest runs it serially; by hand: flock /tmp/vscale-vm.lock bash tests/packaging/...)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$SRC/tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=root.sh
. "$HERE/root.sh"
# the guest journal goes to the console too: systemd's "Started"/"Stopped" lines after boot
export VSCALE_E2E_CMDLINE="systemd.show_status=1 systemd.status_unit_format=name systemd.journald.forward_to_console=1 ${VSCALE_E2E_CMDLINE:-}"

e2e_init "${1:-}"
SYSROOT=""
cleanup_root() {
	local rc=$?
	set +e # the domain must go whatever fails here
	if [ -n "$SYSROOT" ] && mountpoint -q "$SYSROOT/proc" 2>/dev/null; then umount "$SYSROOT/proc"; fi
	[ -z "$SYSROOT" ] || rm -rf --one-file-system "$SYSROOT"
	(exit "$rc")
	e2e_cleanup
}
trap cleanup_root EXIT

# --- the packages, the kernel, the root ----------------------------------------------------------
mapfile -t DEBS < <("$SRC/packaging/deb/build.sh" "$E2E_BUILD" "$E2E_BUILD/deb") || e2e_fail "packaging/deb/build.sh failed"
HOST_DEB=$(printf '%s\n' "${DEBS[@]}" | grep '/vscale-host_')
GUEST_DEB=$(printf '%s\n' "${DEBS[@]}" | grep '/vscale-guest_')
e2e_build_guest # the e2e kernel, and its virtio modules unpacked in the download cache
KTREE=${VSCALE_E2E_CACHE:-$E2E_GUEST/cache}/kernel-$KERNEL_PACKAGE-$KERNEL_VERSION
[ -d "$KTREE/lib/modules/$KERNEL_RELEASE" ] || e2e_fail "no unpacked modules in $KTREE"
pkgroot_tarball "$E2E_BUILD/pkgtest" "$HOST_DEB" "$GUEST_DEB" || e2e_fail "no Debian root"

t=$(e2e_now_ms)
SYSROOT=$E2E_TMP/root
mkdir -p "$SYSROOT"
tar -C "$SYSROOT" -I zstd -xf "$PKGROOT_TARBALL" || e2e_fail "cannot unpack $PKGROOT_TARBALL"
cp "$GUEST_DEB" "$SYSROOT/tmp/"
mount -t proc proc "$SYSROOT/proc"
chroot "$SYSROOT" env -i PATH=/usr/sbin:/usr/bin dpkg -i "/tmp/$(basename "$GUEST_DEB")" >"$E2E_TMP/dpkg.log" 2>&1 ||
	e2e_fail "dpkg -i vscale-guest: $(tail -n 5 "$E2E_TMP/dpkg.log")"
umount "$SYSROOT/proc"
rm -f "$SYSROOT/tmp/"*.deb
# the kernel's virtio drivers, for udev to load by modalias
mkdir -p "$SYSROOT/lib/modules"
cp -a "$KTREE/lib/modules/$KERNEL_RELEASE" "$SYSROOT/lib/modules/"
chroot "$SYSROOT" /sbin/depmod "$KERNEL_RELEASE" 2>/dev/null || e2e_fail "depmod failed"
# what a RAM root does not need; systemd is /init
rm -rf "$SYSROOT"/usr/share/{man,doc,info,locale} "$SYSROOT"/var/cache/* "$SYSROOT"/usr/lib/udev/hwdb.bin
ln -sf /lib/systemd/systemd "$SYSROOT/init"
echo vscale-pkgtest >"$SYSROOT/etc/hostname"
SYSGUEST=$E2E_TMP/sysguest
mkdir -p "$SYSGUEST"
cp "$E2E_GUEST/vmlinuz" "$SYSGUEST/vmlinuz"
# cpio newc; busybox's (from build-guest.sh's cache) when the host has none
CPIO=(cpio)
command -v cpio >/dev/null || CPIO=("${VSCALE_E2E_CACHE:-$E2E_GUEST/cache}/busybox-$BUSYBOX_VERSION/bin/busybox" cpio)
(cd "$SYSROOT" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}" -o -H newc -R 0:0 2>/dev/null) |
	zstd -q -T0 -3 >"$SYSGUEST/initrd.img" || e2e_fail "cannot pack the root as an initramfs"
chmod 0644 "$SYSGUEST/vmlinuz" "$SYSGUEST/initrd.img"
rm -rf --one-file-system "$SYSROOT"
SYSROOT=""
e2e_log "guest: Debian root + vscale-guest $(dpkg-deb -f "$GUEST_DEB" Version) as a $(du -m "$SYSGUEST/initrd.img" | cut -f1) MiB initramfs ($(($(e2e_now_ms) - t)) ms)"
E2E_GUEST=$SYSGUEST

# --- 1. started by udev at boot --------------------------------------------------------------
e2e_domain_define MEM_MIB=1024 VMEM_MIB=1024 MAX_VCPUS=2
t_boot=$(e2e_now_ms)
e2e_domain_start
: >"$E2E_TMP/agent.log" # e2e_watch_start's log, there before the first look at it
e2e_watch_start
s=$(e2e_wait_sample 0 300 'v["seq"] >= 2') || e2e_fail "no sample from vscale-guestd within 300 s of boot"
e2e_log "boot to first samples: $(($(e2e_field "$s" t_ms) - t_boot)) ms"
first=$(grep -m1 -vE '^(connected|warn)' "$E2E_WATCH_LOG")
[ "${first%% *}" = hello ] || e2e_fail "the first frame is not a Hello: $first"
grep -q 'Started .*vscale-guestd\.service' "$E2E_TMP/console.log" ||
	e2e_fail "the console does not show vscale-guestd.service started"
e2e_log "ok: udev started vscale-guestd.service when the port appeared; Hello and samples reached the host"

# --- 2. hotplug under the sandbox ------------------------------------------------------------
t=$(e2e_now_ms)
virsh_ setvcpus "$E2E_DOMAIN" 2 --live || e2e_fail "virsh setvcpus 2 --live failed"
s=$(e2e_wait_sample "$t" 30 'v["cpus"] == 2') || e2e_fail "vCPU 2 not onlined within 30 s"
e2e_log "ok: the sandboxed agent onlined a hot-plugged vCPU ($(($(e2e_field "$s" t_ms) - t)) ms)"
mem0=$(e2e_field "$s" mem_total_kib)
t=$(e2e_now_ms)
virsh_ update-memory-device "$E2E_DOMAIN" --alias virtiomem0 --requested-size 256MiB --live ||
	e2e_fail "virsh update-memory-device failed"
s=$(e2e_wait_sample "$t" 60 "v[\"mem_total_kib\"] >= $((mem0 + 250 * 1024)) && v[\"movable\"] >= 2") ||
	e2e_fail "MemTotal did not grow by 256 MiB of movable blocks within 60 s: hot-added memory not onlined"
# (the agent sets /sys/devices/system/memory/auto_online_blocks to online_movable at start)
e2e_log "ok: 256 MiB of virtio-mem came online movable, as the sandboxed agent set it up ($(($(e2e_field "$s" t_ms) - t)) ms)"

# --- 3. the port goes: systemd stops the agent ------------------------------------------------
cat >"$E2E_TMP/channel.xml" <<'EOF'
<channel type='unix'>
  <source mode='bind'/>
  <target type='virtio' name='org.vscale.agent.0'/>
</channel>
EOF
# detach-device matches the live element (with its path and address), not the minimal one
virsh_ dumpxml "$E2E_DOMAIN" --xpath "//devices/channel[target/@name='org.vscale.agent.0']" \
	>"$E2E_TMP/channel-live.xml" || e2e_fail "no live XML for the agent channel"
stops0=$(grep -c 'Stopped .*vscale-guestd\.service' "$E2E_TMP/console.log" || true)
virsh_ detach-device "$E2E_DOMAIN" "$E2E_TMP/channel-live.xml" --live ||
	e2e_fail "virsh detach-device (the agent channel) failed"
deadline=$(($(e2e_now_ms) + 30000))
until [ "$(grep -c 'Stopped .*vscale-guestd\.service' "$E2E_TMP/console.log" || true)" -gt "$stops0" ]; do
	[ "$(e2e_now_ms)" -lt "$deadline" ] || e2e_fail "vscale-guestd.service was not stopped within 30 s of the port going"
	sleep 0.5
done
e2e_log "ok: the port was removed and systemd stopped vscale-guestd.service (BindsTo=)"

# --- 4. the port comes back: udev starts it again ---------------------------------------------
starts0=$(grep -c 'Started .*vscale-guestd\.service' "$E2E_TMP/console.log" || true)
virsh_ attach-device "$E2E_DOMAIN" "$E2E_TMP/channel.xml" --live || e2e_fail "virsh attach-device (the agent channel) failed"
E2E_AGENT_SOCK=$(e2e_channel_path org.vscale.agent.0)
[ -S "$E2E_AGENT_SOCK" ] || e2e_fail "no socket for the re-attached channel"
E2E_WATCH_LOG=$E2E_TMP/agent2.log
: >"$E2E_WATCH_LOG"
t=$(e2e_now_ms)
"$E2E_CHECK" watch "$E2E_AGENT_SOCK" >"$E2E_WATCH_LOG" 2>&1 &
E2E_PIDS+=($!)
e2e_wait_sample "$t" 60 'v["seq"] >= 1' >/dev/null || e2e_fail "no sample on the re-attached channel within 60 s"
[ "$(grep -c 'Started .*vscale-guestd\.service' "$E2E_TMP/console.log" || true)" -gt "$starts0" ] ||
	e2e_fail "the console does not show the agent started again"
e2e_log "ok: the port came back and udev started vscale-guestd.service again; a new session reached the host"

# --- 5. vscale-hostd from vscale-host, sandboxed, on this host's libvirtd --------------------
# A container booted from the same root with vscale-host installed; libvirt's socket directory
# and the channel sockets are bind-mounted in, so its hostd follows this VM for real.
for p in "${E2E_PIDS[@]}"; do # one consumer per channel: the watchers step aside
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
done
E2E_PIDS=()
HOSTROOT=$E2E_TMP/hostroot
SYSROOT=$HOSTROOT # removed by cleanup_root
mkdir -p "$HOSTROOT"
tar -C "$HOSTROOT" -I zstd -xf "$PKGROOT_TARBALL" || e2e_fail "cannot unpack $PKGROOT_TARBALL"
cp "$HOST_DEB" "$HOSTROOT/tmp/"
mount -t proc proc "$HOSTROOT/proc"
chroot "$HOSTROOT" env -i PATH=/usr/sbin:/usr/bin dpkg -i "/tmp/$(basename "$HOST_DEB")" >"$E2E_TMP/dpkg-host.log" 2>&1 ||
	e2e_fail "dpkg -i vscale-host: $(tail -n 5 "$E2E_TMP/dpkg-host.log")"
umount "$HOSTROOT/proc"
printf '%s\n' "# guest-boot.sh: this VM only, a fast vCPU policy" "[host]" "reserve-cpus = 0" \
	"reserve-memory = 0" "cpu-overcommit = 16" "[policy t]" "vcpus = 1..2" "cpu-up-for = 3s" \
	"cpu-down-for = 3s" "vcpu-cooldown-up = 3s" "vcpu-cooldown-down = 3s" "[vm $E2E_DOMAIN]" \
	"policy = t" "[vm *]" "enabled = no" >"$HOSTROOT/etc/vscale/conf.d/50-test.conf"
mkdir -p "$HOSTROOT/root/pkgtest"
echo "$E2E_DOMAIN" >"$HOSTROOT/root/pkgtest/domain"
install -m 0755 "$HERE/host-boot-checks.sh" "$HOSTROOT/root/pkgtest/checks.sh"
printf '%s\n' "[Unit]" "Description=vscale host test, run at boot" "After=vscale-hostd.service" \
	"[Service]" "Type=oneshot" "ExecStart=/root/pkgtest/checks.sh" \
	"StandardOutput=append:/root/pkgtest/result.log" "StandardError=inherit" \
	"ExecStopPost=/bin/systemctl --no-block --check-inhibitors=no poweroff" \
	>"$HOSTROOT/etc/systemd/system/vscale-pkgtest.service"
ln -sf /etc/systemd/system/vscale-pkgtest.service "$HOSTROOT/etc/systemd/system/multi-user.target.wants/"
t=$(e2e_now_ms)
timeout 240 systemd-nspawn --quiet --register=no --keep-unit --private-network -D "$HOSTROOT" --boot \
	--bind=/run/libvirt --bind=/var/lib/libvirt/qemu/channel/target </dev/null >"$E2E_TMP/host-boot.log" 2>&1 || true
e2e_log "host container ran for $(($(e2e_now_ms) - t)) ms"
[ -s "$HOSTROOT/root/pkgtest/result.log" ] || e2e_fail "the host checks did not run: $(tail -n 10 "$E2E_TMP/host-boot.log")"
cp "$HOSTROOT/root/pkgtest/result.log" "$E2E_TMP/host-checks.log"
failed=""
while IFS= read -r line; do
	case $line in
	ok:*) e2e_log "host $line" ;;
	FAIL:*)
		e2e_log "host $line"
		failed+="${line#FAIL: }; "
		;;
	*) echo "    $line" ;;
	esac
done <"$E2E_TMP/host-checks.log"
[ -z "$failed" ] || e2e_fail "host container: $failed"
grep -q '^done$' "$E2E_TMP/host-checks.log" || e2e_fail "the host checks did not finish"
e2e_log "guest boot test: all checks passed"
