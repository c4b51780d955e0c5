#!/bin/bash
# Reaction time on a real VM: load step -> vCPU online in the guest, with vscale-hostd closing the
# loop. Boots the e2e guest (tests/e2e/lib.sh: TCG, 1 of 4 vCPUs), starts hostd with the e2e
# policy (cpu-up 75% for 2 s), and RUNS times: guest idle at 1 vCPU -> `spin 2` at t0 -> poll the
# guest's load controller until it reports 2 CPUs online; then stop the load and wait until hostd
# has taken the guest back to 1 vCPU. Each run is split at the decision log's "started" stamp into
# the policy's wait (load -> decision: the cpu-up-for window plus sampling) and actuation (decision
# -> the CPU online in the guest). Prints figures; asserts no timing.
#   bash bench/reaction.sh BUILD_DIR [RUNS]     (root; default 10 runs, ~15 s each after boot)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
. "$HERE/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=guestpoll.sh
. "$HERE/guestpoll.sh"

RUNS=${2:-10}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/reaction.sh BUILD_DIR [RUNS]" >&2; exit 2; }
e2e_init "${1:-}"
cmake --build "$E2E_BUILD" --target vscale-hostd >>"$E2E_BUILD/e2e-build.log" 2>&1 ||
	e2e_fail "building vscale-hostd failed ($E2E_BUILD/e2e-build.log)"

# ---- the guest's own figures (load controller), hostd's decision log ----
STATUS=""
status() { STATUS=$(e2e_load status) || e2e_fail "load controller: $STATUS"; }
sv() { e2e_field "$STATUS" "$1"; }

# dl_ts SINCE_MS ACTION OUTCOME -> ms stamp of the first such decision-log line at or after
# SINCE_MS, or nothing
dl_ts() {
	[ -f "$E2E_DECISIONS" ] || return 0
	awk -v since="$1" -v act="\"action\":\"$2\"" -v out="\"outcome\":\"$3\"" '
		index($0, act) && index($0, out) {
			match($0, /"ts":[0-9.]+/)
			ts = substr($0, RSTART + 5, RLENGTH - 5) * 1000
			if (ts >= since) { printf "%.0f\n", ts; exit }
		}' "$E2E_DECISIONS"
}

# dl_text SINCE_MS ACTION OUTCOME -> the "text" (the policy's reason) of that line
dl_text() {
	[ -f "$E2E_DECISIONS" ] || return 0
	awk -v since="$1" -v act="\"action\":\"$2\"" -v out="\"outcome\":\"$3\"" '
		index($0, act) && index($0, out) {
			match($0, /"ts":[0-9.]+/)
			if (substr($0, RSTART + 5, RLENGTH - 5) * 1000 < since) next
			match($0, /"text":"[^"]*"/)
			print substr($0, RSTART + 8, RLENGTH - 9)
			exit
		}' "$E2E_DECISIONS"
}

# plugged vCPUs as libvirt sees them (the guest may have some of them offline)
plugged() { virsh_ vcpucount "$E2E_DOMAIN" --live --current 2>/dev/null | tr -d ' '; }

# policy key from hostd's config, for the printout
conf_key() { sed -n "/^\[policy e2e\]/,/^\[/s/^$1 *= *//p" "$E2E_TMP/vscale.conf" | head -n 1; }

# wait_idle TIMEOUT_S SINCE_MS: the guest back at 1 vCPU online and hostd's last vCPU operation
# finished (a vcpu-down "done" at or after SINCE_MS when one started)
wait_idle() {
	local deadline=$(($(e2e_now_ms) + $1 * 1000)) since=$2
	while :; do
		status
		if [ "$(sv cpus_online)" -eq 1 ] &&
			{ [ -z "$(dl_ts "$since" vcpu-down started)" ] ||
				[ -n "$(dl_ts "$since" vcpu-down "done")" ]; }; then
			return 0
		fi
		[ "$(e2e_now_ms)" -lt "$deadline" ] || return 1
		e2e_domain_running || e2e_fail "the domain stopped (guest panic? see the console)"
		sleep 0.5
	done
}

# stats LABEL VALUES...: n, p50, p95 (nearest rank), min, max in ms
stats() {
	local label=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v l="$label" '
		{ v[NR] = $1 }
		END {
			p50 = int((NR * 50 + 99) / 100); p95 = int((NR * 95 + 99) / 100)
			printf "  %-34s n=%-3d p50 %6d  p95 %6d  min %6d  max %6d ms\n", l, NR,
				v[p50], v[p95], v[1], v[NR]
		}'
}

e2e_build_guest
"$E2E_HERE/libvirt-up.sh" >/dev/null
e2e_domain_define MEM_MIB=512 VMEM_MIB=2048 MAX_VCPUS=4
e2e_domain_start
e2e_hostd_conf
e2e_hostd_start
for _ in $(seq 1 600); do
	grep -q "vm '$E2E_DOMAIN': guest agent" "$E2E_TMP/hostd.log" 2>/dev/null && break
	kill -0 "$E2E_HOSTD_PID" 2>/dev/null || e2e_fail "vscale-hostd exited (see its log)"
	sleep 0.2
done
grep -q "vm '$E2E_DOMAIN': guest agent" "$E2E_TMP/hostd.log" || e2e_fail "hostd never heard the guest agent"
e2e_log "guest up, hostd connected; policy e2e: cpu-up $(conf_key cpu-up) for $(conf_key cpu-up-for)," \
	"cooldown-up $(conf_key vcpu-cooldown-up); cpu-down $(conf_key cpu-down) for $(conf_key cpu-down-for)"

declare -a ROWS=() TOTAL=() POLICY=() ACT=() HDONE=() ACT_PLUG=() ACT_ONLINE=()
since=0
for ((run = 1; run <= RUNS; run++)); do
	wait_idle 120 "$since" ||
		e2e_fail "run $run: the guest did not come back to 1 vCPU online ($(sv cpus_online))"
	sleep 3 # past vcpu-cooldown-up, and the busy % window starts from idle samples
	status
	[ "$(sv cpus_online)" -eq 1 ] || e2e_fail "run $run: $(sv cpus_online) CPUs online before the load step"
	if [ "$(plugged)" -ge 2 ]; then kind=online; else kind=hot-plug; fi
	poll_start "spin 2"
	poll_send # the load step, through the poller's connection
	t0_us=$POLL_SENT_US
	t0=$((t0_us / 1000))
	poll_wait "$t0_us" 60 'v["cpus_online"] >= 2' ||
		e2e_fail "run $run: no second CPU online in the guest 60 s after the load step"
	poll_stop
	t_online=$((POLL_US / 1000))
	e2e_load stop >/dev/null || e2e_fail "run $run: stop failed"
	since=$t_online
	started=$(dl_ts "$t0" vcpu-up started)
	[ -n "$started" ] || e2e_fail "run $run: a CPU came online with no vcpu-up in hostd's decision log"
	# hostd's own "done" lands with the guest's reply or next sample: wait for it briefly
	done_ts=""
	for _ in $(seq 1 30); do
		done_ts=$(dl_ts "$t0" vcpu-up "done")
		[ -z "$done_ts" ] || break
		sleep 0.1
	done
	total=$(((POLL_US - t0_us) / 1000))
	policy=$((started - t0))
	act=$((t_online - started))
	TOTAL+=("$total")
	POLICY+=("$policy")
	ACT+=("$act")
	if [ "$kind" = hot-plug ]; then ACT_PLUG+=("$act"); else ACT_ONLINE+=("$act"); fi
	hd=-
	if [ -n "$done_ts" ]; then
		hd=$((done_ts - started))
		HDONE+=("$hd")
	fi
	ROWS+=("$(printf '%4d  %-8s %8d %8d %8d %8s  %s' "$run" "$kind" "$total" "$policy" "$act" "$hd" \
		"$(dl_text "$t0" vcpu-up started)")")
	e2e_log "run $run ($kind): load -> online $total ms = policy $policy + actuation $act ms" \
		"(hostd done +$hd ms)"
done

cat <<EOF

---- reaction time: load step -> vCPU online in the guest ($RUNS runs, $E2E_DOMAIN, QEMU TCG) ----
policy e2e: cpu-up $(conf_key cpu-up) for $(conf_key cpu-up-for), samples every 1 s (guestd), hostd interval 1 s
  total      t0 = \`spin 2\` written to the guest's load-controller channel; end = the first
             reply of that controller to \`status\` (asked every $POLL_MS ms over the same open
             connection by bench/guestpoll) with cpus_online >= 2, host clock at the reply
  policy     t0 -> hostd's decision-log "started" stamp for vcpu-up: the sample showing the load,
             then the cpu-up-for window (the policy's wait)
  actuation  "started" -> that status reply: libvirt plug or guest request, the guest agent
             onlining the CPU; late by at most the time between two status replies (below)
  hostd      "started" -> hostd's own "done" in the decision log (the guest's reply, or for a
             hot-plug the next sample showing the CPU)
  kind       hot-plug: libvirt plugs vCPU 1 (virDomainSetVcpusFlags) and the agent onlines it;
             online: vCPU 1 stayed plugged after the last scale-down (TCG cannot unplug:
             PLATFORM.md), hostd asks the agent to online it
 run  kind        total   policy actuation    hostd  (ms)  hostd's reason
EOF
printf '%s\n' "${ROWS[@]}"
echo
stats "load -> vCPU online (total)" "${TOTAL[@]}"
stats "load -> decision (policy)" "${POLICY[@]}"
stats "decision -> online (actuation)" "${ACT[@]}"
[ ${#ACT_PLUG[@]} -eq 0 ] || stats "  actuation, hot-plug runs" "${ACT_PLUG[@]}"
[ ${#ACT_ONLINE[@]} -eq 0 ] || stats "  actuation, online runs" "${ACT_ONLINE[@]}"
[ ${#HDONE[@]} -eq 0 ] || stats "decision -> hostd done" "${HDONE[@]}"
echo "  time between status replies (online is seen late by at most this): $(poll_resolution)"
