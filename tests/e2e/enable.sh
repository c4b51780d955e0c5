#!/bin/bash
# e2e: `vscalectl enable` on a real domain that was not made for scaling. A plain domain (fixed
# vCPUs and memory, no virtio-mem, no vscale channel) is defined; vscalectl enable --dry-run shows
# the diff and changes nothing; enable defines the scalable XML; the domain boots with it, its
# guest agent streams to hostd, and runtime overrides (vscalectl set) make hostd grow its memory
# through the new virtio-mem device and its vCPUs through the new hotpluggable ones. Also checks
# /metrics and vscalectl list/show/history against the real VM. Prints the timings.
# Usage: bash tests/e2e/enable.sh BUILD_DIR     (root)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

e2e_init "${1:-}"
e2e_build vscale-hostd vscalectl
CTL="$E2E_BUILD/host-agent/vscalectl --socket $E2E_TMP/run"
e2e_build_guest
"$HERE/libvirt-up.sh"
e2e_sweep

# a domain as virt-install would make it: nothing for scaling
E2E_DOMAIN=vscale-e2e-$$
cp "$E2E_GUEST/vmlinuz" "$E2E_GUEST/initrd.img" "$E2E_TMP/"
cat >"$E2E_TMP/plain.xml" <<XML
<domain type='qemu'>
  <name>$E2E_DOMAIN</name>
  <memory unit='MiB'>512</memory>
  <currentMemory unit='MiB'>512</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$E2E_TMP/vmlinuz</kernel>
    <initrd>$E2E_TMP/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=1 vscale.interval=1s</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='$E2E_TMP/console.log' append='on'/><target port='0'/></serial>
    <console type='file'><source path='$E2E_TMP/console.log' append='on'/><target type='serial' port='0'/></console>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.vscale.test.0'/></channel>
    <memballoon model='virtio'/>
  </devices>
</domain>
XML
virsh_ define "$E2E_TMP/plain.xml" >/dev/null || e2e_fail "virsh define of the plain domain failed"
inactive() { virsh_ dumpxml --inactive "$E2E_DOMAIN"; }

E2E_METRICS=127.0.0.1:0 e2e_hostd_start
for _ in $(seq 100); do
	grep -q "^<6>connected to" "$E2E_TMP/hostd.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "connected to" "$E2E_TMP/hostd.log" || e2e_fail "hostd did not connect to libvirt"

# 1. --dry-run: a diff, no change
out=$($CTL enable "$E2E_DOMAIN" --max-vcpus 4 --max-memory 1G --dry-run) ||
	e2e_fail "enable --dry-run failed: $out"
echo "$out" | grep -q "^+.*virtio-mem" || e2e_fail "enable --dry-run shows no virtio-mem in the diff: $out"
echo "$out" | grep -q "dry run" || e2e_fail "enable --dry-run does not say so: $out"
! inactive | grep -q "virtio-mem" || e2e_fail "enable --dry-run changed the domain"
e2e_log "enable --dry-run: $(echo "$out" | grep -c '^[+-][^+-]') changed lines shown, domain unchanged"

# 2. enable: libvirt accepts the definition, and it has what scaling needs
out=$($CTL enable "$E2E_DOMAIN" --max-vcpus 4 --max-memory 1G) || e2e_fail "enable failed: $out"
echo "$out" | grep -q "next boot" || e2e_fail "enable does not say when it applies: $out"
xml=$(inactive)
for want in "model='virtio-mem'" "<maxMemory" "hotpluggable='yes'" "org.vscale.agent.0" "<numa>"; do
	echo "$xml" | grep -q "$want" || e2e_fail "enabled definition lacks $want"
done
out=$($CTL enable "$E2E_DOMAIN" --max-vcpus 4 --max-memory 1G) || e2e_fail "enable again failed: $out"
echo "$out" | grep -q "already scalable" || e2e_fail "enable is not idempotent: $out"
e2e_log "enable: defined; virtio-mem, maxMemory, hotpluggable vCPUs, NUMA cell and channel present"

# 3. it boots, and hostd scales it (the guest's own figures come from the load controller:
# the agent channel has one reader, and that is hostd)
t_boot=$(e2e_now_ms)
e2e_domain_start
for _ in $(seq 600); do
	$CTL --json show "$E2E_DOMAIN" 2>/dev/null | grep -q '"streaming":true' && break
	sleep 0.3
done
$CTL --json show "$E2E_DOMAIN" | grep -q '"streaming":true' ||
	e2e_fail "the enabled domain's guest agent never reached hostd: $($CTL show "$E2E_DOMAIN")"
$CTL --json show "$E2E_DOMAIN" | grep -q '"mem_mechanism":"virtio-mem"' ||
	e2e_fail "hostd does not see virtio-mem: $($CTL show "$E2E_DOMAIN")"
e2e_log "booted and streaming to hostd in $(($(e2e_now_ms) - t_boot)) ms"

status
mem0=$(e2e_field "$STATUS" mem_total_kib)
t=$(e2e_now_ms)
# 512 MiB boot -> at least 768 MiB: the guest's MemTotal grows by the 256 MiB plugged
$CTL set "$E2E_DOMAIN" memory=768M..1G vcpus=2..4 >/dev/null || e2e_fail "vscalectl set failed"
wait_guest 60 "[ \"\$(sv mem_total_kib)\" -ge $((mem0 + 250 * 1024)) ]" ||
	e2e_fail "memory did not grow to the new minimum: $($CTL show "$E2E_DOMAIN")"
e2e_log "memory grown through the new virtio-mem device in $(($(e2e_now_ms) - t)) ms: MemTotal $mem0 -> $(e2e_field "$STATUS" mem_total_kib) KiB"
wait_guest 60 '[ "$(sv cpus_online)" -ge 2 ]' ||
	e2e_fail "vCPUs did not grow to the new minimum: $($CTL show "$E2E_DOMAIN")"
e2e_log "vCPUs grown through the new hotpluggable ones in $(($(e2e_now_ms) - t)) ms: $(e2e_field "$STATUS" cpus_online)"

# 4. what an operator sees of it
list=$($CTL list)
echo "$list" | grep -q "$E2E_DOMAIN" || e2e_fail "list lacks the VM: $list"
hist=$($CTL history "$E2E_DOMAIN")
echo "$hist" | grep -q "mem-up" || e2e_fail "history lacks the memory step: $hist"
port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$E2E_TMP/hostd.log" | tail -n1)
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
metrics=$(cat <&3)
exec 3<&-
echo "$metrics" | grep -q "^vscale_vm_memory_bytes{vm=\"$E2E_DOMAIN\"" ||
	e2e_fail "/metrics lacks the VM's memory"
e2e_log "vscalectl list/history and /metrics show the VM"
echo "$list"
echo "$hist" | tail -n 4
e2e_log "PASS"
