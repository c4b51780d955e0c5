#!/bin/bash
# e2e smoke test on a real VM (libvirt + QEMU TCG): builds the test guest, boots it, and checks
# what the guest itself reports through vscale-guestd's stream: a valid Hello and samples, a
# hot-plugged vCPU onlined, virtio-mem memory onlined, load from the load controller, the agent
# respawned after a kill. Prints the timings. No hostd here: this proves the harness and the guest.
# Usage: bash tests/e2e/smoke.sh BUILD_DIR     (root; ~25 s warm; the first run downloads ~72 MB)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

e2e_init "${1:-}"
declare -A T=()

t=$(e2e_now_ms)
e2e_build_guest
T[guest_build]=$(($(e2e_now_ms) - t))
e2e_log "guest: $KERNEL_PACKAGE $KERNEL_VERSION ($KERNEL_RELEASE), busybox-static $BUSYBOX_VERSION"

t=$(e2e_now_ms)
"$HERE/libvirt-up.sh"
T[libvirt_up]=$(($(e2e_now_ms) - t))

e2e_domain_define MEM_MIB=512 VMEM_MIB=2048 MAX_VCPUS=4
t_boot=$(e2e_now_ms)
e2e_domain_start
T[domain_start]=$(($(e2e_now_ms) - t_boot))
e2e_log "domain $E2E_DOMAIN started in ${T[domain_start]} ms; agent channel $E2E_AGENT_SOCK"
e2e_watch_start

# 1. the stream: Hello first, then samples with real figures
s=$(e2e_wait_sample 0 180 'v["seq"] >= 1') || e2e_fail "no sample from the guest agent within 180 s"
T[boot_to_first_sample]=$(($(e2e_field "$s" t_ms) - t_boot))
e2e_wait_sample 0 10 'v["seq"] >= 3' >/dev/null || e2e_fail "fewer than 3 samples"
first=$(grep -m1 -vE '^(connected|warn)' "$E2E_WATCH_LOG")
[ "${first%% *}" = hello ] || e2e_fail "the first frame is not a Hello: $first"
[ "$(e2e_field "$first" proto)" = 1 ] || e2e_fail "protocol version: $first"
! grep -q '^error' "$E2E_WATCH_LOG" || e2e_fail "stream errors: $(grep -m3 '^error' "$E2E_WATCH_LOG")"
s=$(e2e_wait_sample 0 5 'v["cpus"] == 1 && v["mem_total_kib"] > 0 && v["mem_avail_kib"] > 0') ||
	e2e_fail "samples lack CPUs or memory figures"
mem0=$(e2e_field "$s" mem_total_kib)
e2e_log "first sample ${T[boot_to_first_sample]} ms after start: cpus=1 MemTotal=$((mem0 / 1024)) MiB"

# 2. vCPU hot-plug: the guest must report it online (guestd onlines it)
t=$(e2e_now_ms)
virsh_ setvcpus "$E2E_DOMAIN" 2 --live || e2e_fail "virsh setvcpus 2 --live failed"
T[setvcpus_call]=$(($(e2e_now_ms) - t))
s=$(e2e_wait_sample "$t" 15 'v["cpus"] == 2') || e2e_fail "vCPU 2 not online in the guest within 15 s"
T[vcpu_add_to_online]=$(($(e2e_field "$s" t_ms) - t))
e2e_log "vCPU 1 -> 2: virsh ${T[setvcpus_call]} ms, online in the guest after ${T[vcpu_add_to_online]} ms"

# 3. virtio-mem 0 -> 512 MiB: MemTotal must grow by about that
t=$(e2e_now_ms)
virsh_ update-memory-device "$E2E_DOMAIN" --alias virtiomem0 --requested-size 512MiB --live ||
	e2e_fail "virsh update-memory-device failed"
T[vmem_call]=$(($(e2e_now_ms) - t))
want=$((mem0 + 500 * 1024))
s=$(e2e_wait_sample "$t" 30 "v[\"mem_total_kib\"] >= $want") ||
	e2e_fail "MemTotal did not grow by 500 MiB within 30 s ($(tail -n1 "$E2E_WATCH_LOG"))"
T[vmem_0_to_512]=$(($(e2e_field "$s" t_ms) - t))
e2e_log "virtio-mem 0 -> 512 MiB: virsh ${T[vmem_call]} ms, MemTotal $((mem0 / 1024)) -> $(($(e2e_field "$s" mem_total_kib) / 1024)) MiB after ${T[vmem_0_to_512]} ms, movable blocks $(e2e_field "$s" movable)"

# 4. load through the test channel
r=$(e2e_load status) || e2e_fail "load controller: $r"
e2e_log "load controller: $r"
counter0=$(e2e_field "$r" counter)
pid0=$(e2e_field "$r" pid)
[ "$(e2e_field "$r" cpus_online)" = 2 ] || e2e_fail "the load controller sees $(e2e_field "$r" cpus_online) CPUs"
t=$(e2e_now_ms)
e2e_load "spin 2" >/dev/null || e2e_fail "spin 2 refused"
s=$(e2e_wait_sample "$t" 20 'v["busy"] >= 85') || e2e_fail "busy did not reach 85% with 2 spinners"
T[spin2_to_busy]=$(($(e2e_field "$s" t_ms) - t))
e2e_log "spin 2: busy $(e2e_field "$s" busy)% after ${T[spin2_to_busy]} ms"
t=$(e2e_now_ms)
e2e_load "spin1" >/dev/null || e2e_fail "spin1 refused"
s=$(e2e_wait_sample "$t" 20 'v["saturated"] == 1') || e2e_fail "one spinning thread not reported as saturation"
T[spin1_to_saturated]=$(($(e2e_field "$s" t_ms) - t))
e2e_log "spin1: saturated after ${T[spin1_to_saturated]} ms (busy $(e2e_field "$s" busy)%, top $(e2e_field "$s" top))"
t=$(e2e_now_ms)
e2e_load "stop" >/dev/null
s=$(e2e_wait_sample "$t" 20 'v["busy"] < 30 && v["saturated"] == 0') || e2e_fail "load did not stop"

# memory held by the load controller shows in the guest's MemAvailable, and comes back on free
s=$(tail -n 1 "$E2E_WATCH_LOG")
avail0=$(e2e_field "$s" mem_avail_kib)
t=$(e2e_now_ms)
e2e_load "alloc 256M" >/dev/null || e2e_fail "alloc 256M refused"
s=$(e2e_wait_sample "$t" 30 "v[\"mem_avail_kib\"] <= $((avail0 - 200 * 1024))") ||
	e2e_fail "MemAvailable did not drop by 200 MiB after alloc 256M"
T[alloc_256m]=$(($(e2e_field "$s" t_ms) - t))
t=$(e2e_now_ms)
e2e_load "free" >/dev/null || e2e_fail "free refused"
s=$(e2e_wait_sample "$t" 30 "v[\"mem_avail_kib\"] >= $((avail0 - 50 * 1024))") ||
	e2e_fail "MemAvailable did not recover after free"
T[free_256m]=$(($(e2e_field "$s" t_ms) - t))
e2e_log "alloc 256M: MemAvailable $((avail0 / 1024)) MiB -> lower after ${T[alloc_256m]} ms, back after free in ${T[free_256m]} ms"

# 5. the agent killed in the guest comes back with a new session
t=$(e2e_now_ms)
nonce=$(grep '^hello' "$E2E_WATCH_LOG" | tail -n1 | sed 's/.*nonce=\([^ ]*\).*/\1/')
e2e_load "agent kill" >/dev/null || e2e_fail "agent kill failed"
for _ in $(seq 1 100); do
	h=$(awk -v since="$t" '$1 == "hello" { split($2, a, "="); if (a[2] >= since) { print; exit } }' "$E2E_WATCH_LOG")
	[ -z "$h" ] || break
	sleep 0.1
done
[ -n "$h" ] || e2e_fail "no new Hello within 10 s after the agent was killed"
[ "$(e2e_field "$h" nonce)" != "$nonce" ] || e2e_fail "same session nonce after a restart"
T[agent_kill_to_hello]=$(($(e2e_field "$h" t_ms) - t))
e2e_log "agent killed: new session after ${T[agent_kill_to_hello]} ms"
s=$(e2e_wait_sample "$t" 10 'v["cpus"] == 2') || e2e_fail "no sample after the agent restarted"
! grep -q '^error' "$E2E_WATCH_LOG" || e2e_fail "stream errors: $(grep -m3 '^error' "$E2E_WATCH_LOG")"
r=$(e2e_load status) || e2e_fail "load controller: $r"
[ "$(e2e_field "$r" pid)" = "$pid0" ] || e2e_fail "the load controller restarted: $r"
[ "$(e2e_field "$r" counter)" -gt "$counter0" ] || e2e_fail "the guest's counter did not advance: $r"

T[total]=$(($(e2e_now_ms) - E2E_T0))
echo "---- e2e smoke: timings (ms) ----"
for k in guest_build libvirt_up domain_start boot_to_first_sample setvcpus_call vcpu_add_to_online \
	vmem_call vmem_0_to_512 spin2_to_busy spin1_to_saturated alloc_256m free_256m agent_kill_to_hello \
	total; do
	printf '%-22s %6s\n' "$k" "${T[$k]}"
done
echo "samples: $(grep -c '^sample' "$E2E_WATCH_LOG"), kernel $KERNEL_PACKAGE $KERNEL_VERSION"
echo "PASS"
