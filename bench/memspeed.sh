#!/bin/bash
# Memory grow and shrink speed by mechanism, in one run on one e2e guest (tests/e2e/lib.sh, QEMU
# TCG) whose XML allows all three: virtio-mem (virsh update-memory-device --requested-size), a
# DIMM (virsh attach-device / detach-device of a <memory model='dimm'>; vscale-guestd in the guest
# onlines it movable, so it can be removed) and the balloon (virsh setmem within <memory>). Each
# mechanism is used alone, by virsh directly (no hostd), and timed from the virsh call until the
# guest's own figures (its load controller's `status`) show the change. A shrink is only asked
# when the guest keeps MARGIN MiB available after it (PLATFORM.md: shrinking below what the
# guest uses panicked it). Prints figures; asserts no timing.
#   bash bench/memspeed.sh BUILD_DIR [ROUNDS]     (root; default 3 rounds, ~2 min)
# SIZE: MEMSPEED_MIB (default 1024, 512 when the host has less than 4 GiB available).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
. "$HERE/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=guestpoll.sh
. "$HERE/guestpoll.sh"

ROUNDS=${2:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/memspeed.sh BUILD_DIR [ROUNDS]" >&2; exit 2; }
MARGIN=128 # MiB the guest keeps available after a shrink
TIMEOUT_S=120
e2e_init "${1:-}"

host_avail_mib=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
if [ -n "${MEMSPEED_MIB:-}" ]; then
	SIZE=$MEMSPEED_MIB
	if ! [[ $SIZE =~ ^[1-9][0-9]*$ ]] || [ $((SIZE % 128)) -ne 0 ]; then
		e2e_fail "MEMSPEED_MIB=$SIZE: a size in MiB, a multiple of 128 (the guest's memory block)"
	fi
elif [ "$host_avail_mib" -ge 4096 ]; then
	SIZE=1024
else
	SIZE=512
fi
SIZE_KIB=$((SIZE * 1024))
# boot RAM: the balloon can take SIZE away and leave 512 MiB; the virtio-mem device and one DIMM
# of SIZE each fit under <maxMemory> (+512 MiB slack, as lib.sh's default)
BASE=$((SIZE + 512))
MAXMEM=$((BASE + SIZE + SIZE + 512))

# ---- the guest's own figures (load controller) ----
STATUS=""
status() { STATUS=$(e2e_load status) || e2e_fail "load controller: $STATUS"; }
sv() { e2e_field "$STATUS" "$1"; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { print a "-" b }'; }

declare -a ROWS=()
declare -A SPG=() CALL=() # "mech dir" -> s/GiB and virsh call ms of each round

# measure MECH DIR COMMAND...: runs COMMAND (the virsh call) and times it until the guest's
# figure has moved by 90% of SIZE in direction DIR (grow/shrink). The figure is MemTotal, or
# MemAvailable for the balloon (with autodeflate='on', as the e2e domain has, the guest's
# balloon driver keeps inflated pages counted in MemTotal: only MemAvailable moves).
measure() {
	local mech=$1 dir=$2 key=mem_total_kib sign=1 v0 t0 t_call t_done total0 avail0 moved spg
	shift 2
	[ "$mech" != balloon ] || key=mem_avail_kib
	[ "$dir" = grow ] || sign=-1
	status
	total0=$(sv mem_total_kib)
	avail0=$(sv mem_avail_kib)
	v0=$(sv "$key")
	if [ "$dir" = shrink ] && [ $((avail0 - SIZE_KIB)) -lt $((MARGIN * 1024)) ]; then
		ROWS+=("$(printf '%-10s %-6s %5s  skipped: the guest has %d MiB available, a %d MiB %s' \
			"$mech" "$dir" "$round" $((avail0 / 1024)) "$SIZE" \
			"shrink would leave less than $MARGIN MiB")")
		return 0
	fi
	poll_start "" # status polls only
	t0=${EPOCHREALTIME/./}
	"$@" >/dev/null || e2e_fail "$mech $dir: '$*' failed"
	t_call=$(((${EPOCHREALTIME/./} - t0) / 1000))
	if ! poll_wait "$t0" "$TIMEOUT_S" "$sign * (v[\"$key\"] - $v0) * 10 >= $SIZE_KIB * 9"; then
		status
		e2e_fail "$mech $dir: the guest's ${key%_kib} moved" \
			"$((sign * ($(sv "$key") - v0) / 1024)) of $SIZE MiB in $TIMEOUT_S s"
	fi
	poll_stop
	t_done=$(((POLL_US - t0) / 1000))
	moved=$((sign * ($(e2e_field "$POLL_LINE" "$key") - v0)))
	sleep 1 # settled figures for the row, and a quiet guest for the next step
	status
	spg=$(awk -v ms="$t_done" -v k="$moved" 'BEGIN { printf "%.3f", ms / 1000 / (k / 1048576) }')
	SPG["$mech $dir"]+="$spg "
	CALL["$mech $dir"]+="$t_call "
	ROWS+=("$(printf '%-10s %-6s %5d %7d %7d %8d %9d %9d %8s' "$mech" "$dir" "$round" "$t_call" \
		"$t_done" $((moved / 1024)) $((($(sv mem_total_kib) - total0) / 1024)) \
		$((($(sv mem_avail_kib) - avail0) / 1024)) "$spg")")
	e2e_log "$mech $dir: call $t_call ms, guest ${key%_kib} moved $((moved / 1024)) MiB" \
		"at $t_done ms ($spg s/GiB)"
}

vmem() { virsh_ update-memory-device "$E2E_DOMAIN" --alias "$VMEM_ALIAS" --requested-size "$1" --live; }

e2e_build_guest
"$E2E_HERE/libvirt-up.sh" >/dev/null
e2e_domain_define "MEM_MIB=$BASE" "VMEM_MIB=$SIZE" MAX_VCPUS=4 "MAX_MIB=$MAXMEM"
e2e_domain_start
for _ in $(seq 1 120); do
	e2e_load ping >/dev/null 2>&1 && break
	e2e_domain_running || e2e_fail "the domain stopped while booting (see the console)"
	sleep 1
done
status
VMEM_ALIAS=$(virsh_ dumpxml "$E2E_DOMAIN" --xpath "//devices/memory[@model='virtio-mem']/alias/@name" |
	sed -n 's/^ *name="\(.*\)"$/\1/p')
[ -n "$VMEM_ALIAS" ] || e2e_fail "no virtio-mem alias in the live XML"
cat >"$E2E_TMP/dimm.xml" <<EOF
<memory model='dimm'><target><size unit='MiB'>$SIZE</size><node>0</node></target></memory>
EOF
e2e_log "guest up: MemTotal $(($(sv mem_total_kib) / 1024)) MiB," \
	"MemAvailable $(($(sv mem_avail_kib) / 1024)) MiB; boot RAM $BASE MiB, virtio-mem $SIZE MiB" \
	"(requested 0), maxMemory $MAXMEM MiB, host MemAvailable $host_avail_mib MiB"

for ((round = 1; round <= ROUNDS; round++)); do
	measure virtio-mem grow vmem "${SIZE}MiB"
	measure virtio-mem shrink vmem 0
	measure dimm grow virsh_ attach-device "$E2E_DOMAIN" "$E2E_TMP/dimm.xml" --live
	measure dimm shrink virsh_ detach-device "$E2E_DOMAIN" "$E2E_TMP/dimm.xml" --live
	measure balloon shrink virsh_ setmem "$E2E_DOMAIN" "$((BASE - SIZE))MiB" --live
	measure balloon grow virsh_ setmem "$E2E_DOMAIN" "${BASE}MiB" --live
done
grep -qi "out of memory\|oom-kill\|kernel panic" "$E2E_TMP/console.log" &&
	e2e_log "NOTE: the guest's console reports an OOM or a panic (see $E2E_TMP/console.log)"

cat <<EOF

---- memory grow and shrink speed by mechanism ($SIZE MiB steps, $ROUNDS rounds, $E2E_DOMAIN, QEMU TCG) ----
guest: boot RAM $BASE MiB in one NUMA cell, virtio-mem device of $SIZE MiB (2 MiB blocks),
maxMemory $MAXMEM MiB with 4 slots, balloon autodeflate='on'; no hostd, no load
  virtio-mem  virsh update-memory-device --alias $VMEM_ALIAS --requested-size ${SIZE}MiB / 0 --live
  dimm        virsh attach-device / detach-device of <memory model='dimm'> $SIZE MiB, node 0, --live
              (the guest onlines it movable: vscale-guestd sets auto_online_blocks=online_movable)
  balloon     virsh setmem $((BASE - SIZE))MiB (shrink: inflate) / ${BASE}MiB (grow: deflate) --live
  call        ms until virsh returned (virsh start and connect included)
  done        ms from just before the virsh call to the first reply of the guest's load
              controller (\`status\`, asked every $POLL_MS ms over one open connection by
              bench/guestpoll) whose figure has moved by >= 90% of $SIZE MiB; late by at most
              the time between two replies (below)
  figure      MemTotal for virtio-mem and DIMM; MemAvailable for the balloon (the guest keeps
              ballooned pages in MemTotal with autodeflate: see the dTotal column)
  moved       how far the figure had moved at "done", MiB
  dTotal dAvail  MemTotal and MemAvailable 1 s after "done", less before the call, MiB
  s/GiB       done / moved
mech       dir    round call-ms done-ms moved-MiB dTotal-MiB dAvail-MiB    s/GiB
EOF
printf '%s\n' "${ROWS[@]}"
echo
echo "median over $ROUNDS rounds (range), s/GiB from the virsh call to the guest's figure:"
printf '  %-10s %-22s %-22s %s\n' mech grow shrink "virsh call ms (grow/shrink)"
# cell "V1 V2 ..." [range]: the median (and range) of the values, "-" when there are none
cell() {
	local -a a
	read -ra a <<<"$1"
	if [ ${#a[@]} -eq 0 ]; then
		echo -
	elif [ -n "${2:-}" ]; then
		echo "$(median "${a[@]}") ($(range "${a[@]}"))"
	else
		median "${a[@]}"
	fi
}
for mech in virtio-mem dimm balloon; do
	printf '  %-10s %-22s %-22s %s\n' "$mech" "$(cell "${SPG["$mech grow"]:-}" range)" \
		"$(cell "${SPG["$mech shrink"]:-}" range)" \
		"$(cell "${CALL["$mech grow"]:-}")/$(cell "${CALL["$mech shrink"]:-}")"
done
echo "time between status replies (done is late by at most this): $(poll_resolution)"
