#!/bin/bash
# make demo: boots the e2e test guest, starts vscale-hostd on it with the fast test policy, runs a
# load pattern in phases (idle, every CPU busy, load stopped, one busy thread, memory growing,
# memory freed) and shows it live with e2e-demo-view: the guest's vCPUs, RAM, CPU busy,
# MemAvailable and PSI, libvirt's allocation, and each hostd decision with its reason.
# Ctrl-C or the end of the pattern stops the view and hostd and destroys the domain (lib.sh).
# Usage: bash tests/e2e/demo.sh BUILD_DIR    (root; ~3.5 min warm, the first run downloads ~72 MB)
# Environment: VSCALE_DEMO_PLAIN=1 prints one line a second even on a terminal.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

e2e_init "${1:-}"
# Ctrl-C is how a user ends a demo: clean up without the failure post-mortem
trap 'echo; e2e_log "interrupted: cleaning up"; exit 0' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# On a terminal virsh runs pkttyagent, which complains on every call when polkitd is not running
# (no systemd, as in CI containers); root needs no polkit.
virsh_() { virsh -q -c "$E2E_URI" "$@" 2> >(grep -v '^Authorization not available' >&2); }

if [ -f "$E2E_BUILD/CMakeCache.txt" ]; then
	e2e_build vscale-hostd vscalectl e2e-demo-view
fi
VIEW=$E2E_BUILD/tests/e2e/e2e-demo-view
[ -x "$VIEW" ] || e2e_fail "$VIEW missing: build it first"

e2e_log "building the guest (kernel + busybox initramfs + vscale-guestd + load generator)"
e2e_build_guest
"$HERE/libvirt-up.sh" | sed 's/^/          /'
e2e_domain_define NAME="vscale-demo-$$" MEM_MIB=512 VMEM_MIB=2048 MAX_VCPUS=4
e2e_domain_start
e2e_log "domain $E2E_DOMAIN started: 1 of 4 vCPUs, 512 MiB + virtio-mem up to 2 GiB (TCG)"
# lib.sh's fast test policy, with one change: 5 s windows to add and remove a vCPU (2 s and 4 s
# there; scale-down may not be faster than scale-up). The guest
# flags one thread saturating a CPU after 3 samples (vscale-guestd's saturation-samples, 1 s
# apart); a shorter window adds a vCPU for the single busy thread before the flag arrives.
e2e_hostd_conf
sed -i -e 's/^cpu-up-for = .*/cpu-up-for = 5s/' -e 's/^cpu-down-for = .*/cpu-down-for = 5s/' \
	"$E2E_TMP/vscale.conf"
e2e_hostd_start
e2e_log "vscale-hostd started (log $E2E_TMP/hostd.log)"

PHASE_FILE=$E2E_TMP/phase
STATUS=$E2E_TMP/status
PHASES=7
PHASE_N=0
declare -a SUMMARY=()
phase() { # LABEL CAPTION
	PHASE_N=$((PHASE_N + 1))
	printf '%d/%d %s: %s\n' "$PHASE_N" "$PHASES" "$1" "$2" >"$PHASE_FILE.tmp"
	mv "$PHASE_FILE.tmp" "$PHASE_FILE"
	local s=$((($(e2e_now_ms) - E2E_T0) / 1000))
	SUMMARY+=("$(printf '%3d:%02d  %-7s %s' $((s / 60)) $((s % 60)) "$1" "$2")")
}
echo "0/$PHASES booting: the guest boots (TCG: ~15 s); hostd waits for its agent" >"$PHASE_FILE"

# the guest's figures as the view saw them last (the view is the only one polling them)
st() { # KEY -> its value in the latest status line, -1 when there is none
	local v=""
	[ ! -s "$STATUS" ] || v=$(e2e_field "$(cat "$STATUS")" "$1")
	echo "${v:--1}"
}
decided() { # ERE -> true when a decision line matches it
	[ -s "$E2E_DECISIONS" ] && grep -qE "$1" "$E2E_DECISIONS"
}

st_ge() { [ "$(st "$1")" -ge "$2" ]; }
st_le() { [ "$(st "$1")" -ge 0 ] && [ "$(st "$1")" -le "$2" ]; }
pause() { wait_until "$1" "$1" true; }
guest_up() { st_ge cpus_online 1 && grep -q "guest agent .* connected" "$E2E_TMP/hostd.log"; }

# wait_until MIN_S MAX_S COMMAND...: at least MIN_S, then until COMMAND succeeds or MAX_S passed
wait_until() {
	local start=$SECONDS min=$1 max=$2
	shift 2
	while :; do
		e2e_domain_running || e2e_fail "the domain stopped (guest panic? see the console)"
		kill -0 "$E2E_HOSTD_PID" 2>/dev/null ||
			e2e_fail "vscale-hostd exited: $(tail -n 2 "$E2E_TMP/hostd.log")"
		if [ $((SECONDS - start)) -ge "$min" ] && "$@"; then
			return 0
		fi
		[ $((SECONDS - start)) -lt "$max" ] || return 1
		sleep 1
	done
}

load() { # COMMAND...
	e2e_load "$@" >/dev/null || e2e_fail "the load controller refused '$*'"
}

view_args=(--sock "$E2E_TEST_SOCK" --name "$E2E_DOMAIN" --uuid "$(virsh_ domuuid "$E2E_DOMAIN")"
	--uri "$E2E_URI" --decisions "$E2E_DECISIONS" --hostd-log "$E2E_TMP/hostd.log"
	--phase "$PHASE_FILE" --status-out "$STATUS" --t0-ms "$E2E_T0"
	--cpu-up 75 --cpu-down 25 --mem-up 20 --mem-down 45)
[ "${VSCALE_DEMO_PLAIN:-0}" != 1 ] || view_args+=(--plain)
"$VIEW" "${view_args[@]}" &
VIEW_PID=$!
E2E_PIDS=("$VIEW_PID" "${E2E_PIDS[@]}") # stopped first: the terminal is back before cleanup

wait_until 0 240 guest_up ||
	e2e_fail "the guest did not answer within 240 s"

phase "idle" "1 vCPU, 512 MiB; hostd reads a sample a second and holds"
pause 8

phase "spin 4" "4 busy threads; CPU >= 75% for 5 s adds a vCPU, up to 4"
load "spin 4"
wait_until 5 120 st_ge cpus_online 4 || true
pause 5

phase "stop" "load gone; CPU <= 25% for 5 s removes a vCPU, down to 1"
load stop
wait_until 5 120 st_le cpus_online 1 || true
pause 3

phase "spin1" "one busy thread; hostd reports saturation, adds no vCPU"
load spin1
wait_until 10 45 decided '"reason":"saturated"' || true
pause 6
load stop

phase "alloc" "+32 MiB every 2 s; available <= 20% for 2 s adds 256 MiB"
mem0=$(st mem_cur_kib)
# 640 MiB in steps, slower when the guest runs short, so that hostd keeps ahead of it
for _ in $(seq 1 20); do
	wait_until 0 20 st_ge mem_avail_kib $((80 * 1024)) || true
	load "alloc 32M"
	pause 2
done
wait_until 0 30 st_ge mem_cur_kib $((mem0 + 1)) || true
pause 3

phase "free" "memory freed; available >= 45% for 5 s removes 256 MiB"
load free
wait_until 5 120 st_le mem_cur_kib "$mem0" || true
pause 4

phase "end" "pattern over; stopping the view and hostd, destroying the VM"
pause 3
kill "$VIEW_PID" 2>/dev/null || true
wait "$VIEW_PID" 2>/dev/null || true

echo
echo "---- vscale demo: what hostd did (decision log) ----"
if [ -s "$E2E_DECISIONS" ]; then
	# one line per operation (at its start, like the view) with its outcome, and each hold
	awk -v t0="$E2E_T0" '{
		ts = $0; sub(/.*"ts":/, "", ts); ts = ts + 0
		o = $0; sub(/.*"outcome":"/, "", o); sub(/".*/, "", o)
		x = $0; sub(/.*"text":"/, "", x); sub(/","outcome".*/, "", x)
		a = $0; sub(/.*"action":"/, "", a); sub(/".*/, "", a)
		r = $0; sub(/.*"reason":"/, "", r); sub(/".*/, "", r)
		v = $0; sub(/.*"vcpus":\[/, "", v); sub(/\].*/, "", v); split(v, vv, ",")
		m = $0; sub(/.*"mem_kib":\[/, "", m); sub(/\].*/, "", m); split(m, mm, ",")
		if (a ~ /^vcpu/) w = sprintf("vcpus %d -> %d", vv[1], vv[2])
		else if (a ~ /^mem/) w = sprintf("memory %d -> %d MiB", mm[1] / 1024, mm[2] / 1024)
		else w = "hold (" r ")"
		if (o == "started") { started[w] = ts; next }
		if (w in started) { ts = started[w]; delete started[w] }
		s = int(ts - t0 / 1000)
		printf "%3d:%02d  %-22s %-7s %s\n", s / 60, s % 60, w, o, x
	}' "$E2E_DECISIONS"
else
	echo "(none)"
fi
echo "---- the operator's view (vscalectl show; the VM's metering included) ----"
"$E2E_BUILD/host-agent/vscalectl" --socket "$E2E_TMP/run" show "$E2E_DOMAIN" 2>&1 || true
echo "---- phases (since the start) ----"
printf '%s\n' "${SUMMARY[@]}"
echo "demo: $((($(e2e_now_ms) - E2E_T0) / 1000)) s in all; cleaning up"
