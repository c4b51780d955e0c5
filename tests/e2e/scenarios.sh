#!/bin/bash
# e2e scaling scenarios on a real VM (libvirt + QEMU TCG) with the real vscale-hostd closing the
# loop. Each assertion reads what the guest itself reports (the load controller's `status`, on its
# own channel: hostd holds the agent's) and hostd's decision log. Prints the timings.
#   1. load on every vCPU: vCPUs grow step by step to the policy max, back to the min after
#   2. one spinning thread: saturation reported, no vCPU added for it
#   4. host reserve reached (SIGHUP with reserve-cpus = all): scale-up refused as host-full
#   5. guest agent stopped: hostd holds; agent back: it resumes
#   6. hostd killed -9 and restarted mid-run: the VM is picked up again, no thrash
#   3. memory growth: RAM grows (virtio-mem); freed: RAM shrinks; the guest never OOMs
# Usage: bash tests/e2e/scenarios.sh BUILD_DIR   (root; about 3 minutes)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

e2e_init "${1:-}"
e2e_build vscale-hostd
declare -a TIMINGS=()
timing() { TIMINGS+=("$(printf '%-44s %s' "$1" "$2")"); e2e_log "$1: $2"; }

# the guest's own figures: status, sv and wait_guest (lib.sh)

# ---- hostd's decision log ----
# dl SINCE_MS ACTION OUTCOME [REASON] -> number of matching lines at or after SINCE_MS
dl() {
	[ -f "$E2E_DECISIONS" ] || { echo 0; return; }
	awk -v since="$1" -v act="$2" -v out="$3" -v why="${4:-}" '
		function f(k,   m) { return match($0, "\"" k "\":\"[^\"]*\"") ? substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5) : "" }
		{ match($0, /"ts":[0-9.]+/); ts = substr($0, RSTART + 5, RLENGTH - 5) * 1000
		  if (ts >= since && f("action") == act && f("outcome") == out && (why == "" || f("reason") == why)) n++ }
		END { print n + 0 }' "$E2E_DECISIONS"
}
wait_dl() { # TIMEOUT_S SINCE_MS ACTION OUTCOME [REASON]
	local deadline=$(($(e2e_now_ms) + $1 * 1000))
	until [ "$(dl "$2" "$3" "$4" "${5:-}")" -gt 0 ]; do
		[ "$(e2e_now_ms)" -lt "$deadline" ] || return 1
		sleep 0.3
	done
}
hostd_alive() { kill -0 "$E2E_HOSTD_PID" 2>/dev/null || e2e_fail "vscale-hostd died (see $E2E_TMP/hostd.log)"; }

e2e_build_guest
"$HERE/libvirt-up.sh" >/dev/null
e2e_domain_define MEM_MIB=512 VMEM_MIB=2048 MAX_VCPUS=4
e2e_domain_start
e2e_hostd_start
t=$(e2e_now_ms)
for _ in $(seq 1 600); do
	grep -q "vm '$E2E_DOMAIN': guest agent" "$E2E_TMP/hostd.log" 2>/dev/null && break
	sleep 0.2
done
grep -q "vm '$E2E_DOMAIN': guest agent" "$E2E_TMP/hostd.log" || e2e_fail "hostd never heard the guest agent"
timing "boot to hostd's first guest session" "$(($(e2e_now_ms) - t)) ms"
status
pid0=$(sv pid)
mem0=$(sv mem_total_kib)
[ "$(sv cpus_online)" = 1 ] || e2e_fail "the guest starts with $(sv cpus_online) CPUs, want 1"

# ---- 1. load on every vCPU: up to the max step by step, back to the min after the window ----
t=$(e2e_now_ms)
e2e_load "spin 4" >/dev/null
for n in 2 3 4; do
	wait_guest 60 "[ \$(sv cpus_online) -ge $n ]" || e2e_fail "scenario 1: the guest never had $n CPUs online"
	timing "1. load -> vCPU $n online in the guest" "$(($(e2e_now_ms) - t)) ms"
done
sleep 6 # the max holds: no fifth vCPU asked for, none exists
status
[ "$(sv cpus_online)" = 4 ] || e2e_fail "scenario 1: $(sv cpus_online) CPUs online at the max, want 4"
[ "$(dl "$t" vcpu-up done)" -eq 3 ] || e2e_fail "scenario 1: $(dl "$t" vcpu-up done) vCPU additions, want 3"
t=$(e2e_now_ms)
e2e_load stop >/dev/null
wait_guest 90 '[ $(sv cpus_online) -eq 1 ]' || e2e_fail "scenario 1: vCPUs did not come back to 1 ($(sv cpus_online) online)"
timing "1. load stops -> back to 1 vCPU in the guest" "$(($(e2e_now_ms) - t)) ms"
[ "$(dl "$t" vcpu-down done)" -eq 3 ] || e2e_fail "scenario 1: $(dl "$t" vcpu-down done) vCPU removals, want 3"

# ---- 2. one spinning thread: saturation, no vCPU for it ----
t=$(e2e_now_ms)
e2e_load spin1 >/dev/null
wait_dl 30 "$t" hold hold saturated || e2e_fail "scenario 2: no saturated hold in the decision log"
timing "2. one thread spins -> saturation reported" "$(($(e2e_now_ms) - t)) ms"
sleep 8
status
[ "$(dl "$t" vcpu-up started)" -eq 0 ] || e2e_fail "scenario 2: a vCPU was added for a single thread"
[ "$(sv cpus_online)" = 1 ] || e2e_fail "scenario 2: $(sv cpus_online) CPUs online, want 1"
e2e_load stop >/dev/null
sleep 2

# ---- 4. host reserve reached: scale-up refused and reported as host full ----
E2E_RESERVE_CPUS=$(virsh_ nodeinfo | awk '/^CPU\(s\)/ { print $2 }') e2e_hostd_conf
kill -HUP "$E2E_HOSTD_PID"
sleep 1
t=$(e2e_now_ms)
e2e_load "spin 4" >/dev/null
wait_dl 30 "$t" hold hold host-full || e2e_fail "scenario 4: no host-full hold in the decision log"
timing "4. load with no host headroom -> host-full" "$(($(e2e_now_ms) - t)) ms"
sleep 4
status
[ "$(sv cpus_online)" = 1 ] || e2e_fail "scenario 4: grew to $(sv cpus_online) CPUs past the host reserve"
[ "$(dl "$t" vcpu-up started)" -eq 0 ] || e2e_fail "scenario 4: a vCPU was added past the reserve"
e2e_load stop >/dev/null
E2E_RESERVE_CPUS=0 e2e_hostd_conf
kill -HUP "$E2E_HOSTD_PID"
hostd_alive

# ---- 5. guest agent down: hold; back: resume ----
e2e_load "agent stop" >/dev/null
sleep 2
t=$(e2e_now_ms)
e2e_load "spin 4" >/dev/null
sleep 8
[ "$(dl "$t" vcpu-up started)" -eq 0 ] || e2e_fail "scenario 5: acted without samples"
status
[ "$(sv cpus_online)" = 1 ] || e2e_fail "scenario 5: $(sv cpus_online) CPUs online while the agent was down"
t=$(e2e_now_ms)
e2e_load "agent start" >/dev/null
# a restarted agent onlines every plugged CPU until hostd restates its grant: count hostd's action
wait_dl 60 "$t" vcpu-up done || e2e_fail "scenario 5: no scaling after the agent came back"
wait_guest 10 '[ $(sv cpus_online) -ge 2 ]' || e2e_fail "scenario 5: $(sv cpus_online) CPUs online after the scale-up"
timing "5. agent back (load on) -> vCPU added and online" "$(($(e2e_now_ms) - t)) ms"

# ---- 6. hostd killed -9 mid-run and restarted: picked up again, no thrash ----
kill -9 "$E2E_HOSTD_PID"
wait "$E2E_HOSTD_PID" 2>/dev/null || true
before=$(dl 0 vcpu-down started)
t=$(e2e_now_ms)
e2e_hostd_start
wait_guest 60 '[ $(sv cpus_online) -ge 4 ]' || e2e_fail "scenario 6: growth did not go on after the restart ($(sv cpus_online) CPUs)"
timing "6. hostd restarted (load on) -> 4 vCPUs online" "$(($(e2e_now_ms) - t)) ms"
[ "$(dl 0 vcpu-down started)" -eq "$before" ] || e2e_fail "scenario 6: a vCPU was removed under load after the restart"
grep -q "vm '$E2E_DOMAIN': managed" "$E2E_TMP/hostd.log" || e2e_fail "scenario 6: VM not picked up"
t=$(e2e_now_ms)
e2e_load stop >/dev/null
wait_guest 90 '[ $(sv cpus_online) -eq 1 ]' || e2e_fail "scenario 6: no scale-down after the restart"

# ---- 3. memory: grows with use (virtio-mem), shrinks when freed, no OOM ----
status
avail=$(sv mem_avail_kib)
total=$(sv mem_total_kib)
# take MemAvailable under the policy's 20%
alloc_mib=$(((avail - total / 10) / 1024))
t=$(e2e_now_ms)
e2e_load "alloc ${alloc_mib}M" >/dev/null
wait_guest 60 "[ \$(sv mem_total_kib) -ge $((total + 200 * 1024)) ]" ||
	e2e_fail "scenario 3: MemTotal did not grow (now $(($(sv mem_total_kib) / 1024)) MiB)"
grow_ms=$(($(e2e_now_ms) - t))
grown=$(($(sv mem_total_kib) - total))
timing "3. alloc ${alloc_mib} MiB -> RAM +$((grown / 1024)) MiB in the guest" "$grow_ms ms, up window 2 s included ($(awk -v ms="$grow_ms" -v k="$grown" 'BEGIN { printf "%.1f s/GiB", ms / 1000 / (k / 1048576) }'))"
sleep 3
status
peak=$(sv mem_total_kib)
t=$(e2e_now_ms)
e2e_load free >/dev/null
wait_guest 90 "[ \$(sv mem_total_kib) -le $((peak - 200 * 1024)) ]" ||
	e2e_fail "scenario 3: MemTotal did not shrink after free ($(($(sv mem_total_kib) / 1024)) MiB)"
shrink_ms=$(($(e2e_now_ms) - t))
shrunk=$((peak - $(sv mem_total_kib)))
timing "3. free -> RAM -$((shrunk / 1024)) MiB in the guest" "$shrink_ms ms after free ($(awk -v ms="$shrink_ms" -v k="$shrunk" 'BEGIN { printf "%.1f s/GiB; the down window may run before: held by in-use + margin", ms / 1000 / (k / 1048576) }'))"
[ "$(sv pid)" = "$pid0" ] || e2e_fail "scenario 3: the load controller restarted (OOM?)"
grep -qi "out of memory\|oom-kill" "$E2E_TMP/console.log" && e2e_fail "scenario 3: the guest's kernel reports an OOM"
hostd_alive
e2e_log "decisions: $(grep -c . "$E2E_DECISIONS") lines; guest MemTotal $((mem0 / 1024)) -> $((peak / 1024)) -> $(($(sv mem_total_kib) / 1024)) MiB"

echo "---- e2e scenarios: timings ----"
printf '%s\n' "${TIMINGS[@]}"
echo "PASS"
