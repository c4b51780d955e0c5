#!/bin/bash
# e2e: a full host moves its VM. Two libvirt hosts on this machine (peers.sh: a mount + network
# namespace each, a veth pair between them); the e2e VM boots on host a, whose [host]
# memory-total is exactly what the VM has, so any growth is host-full there. vscale-hostd runs on
# both hosts: on a with migration = auto and peer = host b, on b with migration off. Memory load
# in the guest makes it ask for more; hostd on a publishes a migration request, asks b's libvirt
# for its capacity and live-migrates the VM there; hostd on b picks it up and grows it.
# Asserted: the request on a's event socket, the VM running on b only (persistent there, gone
# from a), the guest's uptime and counter going on with the same load controller process, a new
# guest agent session on b with samples accepted, the memory scale-up done on b (the guest's
# MemTotal grows), nothing rejected by either hostd.
# Printed: host full -> migration start, the migration (libvirt call), downtime (libvirt's
# completed-job stats on the target), and what followed on b.
# Usage: bash tests/e2e/migrate.sh BUILD_DIR   (root; ~1 minute; exit 77 = skipped: not root, or
# no namespaces / veth here). Run it under flock /tmp/vscale-vm.lock with the other VM tests.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=peers.sh
. "$HERE/peers.sh"

# The two hosts live as long as this outer shell; the test itself runs in a child (below), whose
# own EXIT trap (lib.sh) removes the domain and its files before the hosts go.
if [ "${1:-}" != --inside ]; then
	trap peers_down EXIT
	trap 'exit 130' INT TERM
	peers_up || exit 1
	bash "${BASH_SOURCE[0]}" --inside "$@"
	exit $?
fi
shift
set -e
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

E2E_HOST=a # where the domain runs: lib.sh's virsh_ (define, cleanup) follows it
virsh_() { peers_virsh "$E2E_HOST" "$@"; }

e2e_init "${1:-}"
e2e_build vscale-hostd vscalectl
E2E_HOSTD=$E2E_BUILD/host-agent/vscale-hostd
CTL=$E2E_BUILD/host-agent/vscalectl
declare -a TIMINGS=()
timing() {
	TIMINGS+=("$(printf '%-46s %s' "$1" "$2")")
	e2e_log "$1: $2"
}
fail() { # also shows host b's side, which lib.sh's cleanup does not know about
	local f
	for f in hostd-b.log events-a.log; do
		[ ! -s "$E2E_TMP/$f" ] || { echo "---- $f (last 15 lines) ----" >&2; tail -n 15 "$E2E_TMP/$f" >&2; }
	done
	[ ! -s "$E2E_TMP/state-b/decisions.jsonl" ] ||
		{ echo "---- decision log b ----" >&2; tail -n 8 "$E2E_TMP/state-b/decisions.jsonl" >&2; }
	e2e_fail "$@"
}

# ---- the guest's own figures, through the load controller on whichever host runs it ----
chan() { # TARGET-NAME -> its socket path inside the current host
	virsh_ dumpxml "$E2E_DOMAIN" --xpath "//devices/channel[target/@name='$1']/source/@path" \
		2>/dev/null | sed -n 's/^ *path="\(.*\)"$/\1/p'
}
load() { peers_in "$E2E_HOST" "$E2E_CHECK" cmd "$TEST_SOCK" -t 20 "$@"; }
STATUS=""
status() { STATUS=$(load status) || fail "load controller on host $E2E_HOST: $STATUS"; }

# ---- decision logs: ts (ms) of the first line at or after SINCE with this outcome (action, reason)
dl_ts() { # FILE SINCE_MS OUTCOME [ACTION [REASON]] -> ms, "" when none
	[ -f "$1" ] || return 0
	awk -v since="$2" -v out="$3" -v act="${4:-}" -v why="${5:-}" '
		function f(k) { return match($0, "\"" k "\":\"[^\"]*\"") ? substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5) : "" }
		{ match($0, /"ts":[0-9.]+/); ts = int(substr($0, RSTART + 5, RLENGTH - 5) * 1000 + 0.5)
		  if (ts >= since && f("outcome") == out && (act == "" || f("action") == act) &&
		      (why == "" || f("reason") == why)) { printf "%.0f\n", ts; exit } }' "$1"
}
dl_line() { # FILE OUTCOME -> the first such line
	grep -m1 "\"outcome\":\"$2\"" "$1" 2>/dev/null || true
}
wait_for() { # TIMEOUT_S 'shell condition'
	local deadline=$(($(e2e_now_ms) + $1 * 1000))
	until eval "$2"; do
		[ "$(e2e_now_ms)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

hostd_conf() { # FILE STATE_DIR CONTROL_DIR [HOST KEYS...]: lib.sh's, scale-down windows long
	# enough that nothing shrinks while the test looks (30 s CPU, 60 s memory at 60% free)
	E2E_STATE_DIR=$2 E2E_CONTROL_DIR=$3 E2E_METRICS=off E2E_RESERVE_CPUS=0 \
		E2E_HOSTD_HOST_EXTRA=$(printf '%s\n' "${@:4}") E2E_CPU_DOWN_FOR=30s \
		E2E_MEM_AVAIL_DOWN=60% E2E_MEM_DOWN_FOR=60s e2e_hostd_conf "$1"
}
hostd_start() { # HOST CONF LOG -> pid in HOSTD_PID
	peers_in "$1" "$E2E_HOSTD" --config "$2" >>"$3" 2>&1 &
	HOSTD_PID=$!
	E2E_PIDS+=("$HOSTD_PID")
}

e2e_build_guest
e2e_domain_define MEM_MIB=512 VMEM_MIB=1024 MAX_VCPUS=2
virsh_ start "$E2E_DOMAIN" >/dev/null || fail "virsh start on host a failed"
TEST_SOCK=$(chan org.vscale.test.0)
peers_in a test -S "$TEST_SOCK" || fail "no socket for org.vscale.test.0 on host a ('$TEST_SOCK')"
e2e_log "domain $E2E_DOMAIN started on host a"

# host a: memory-total = the VM's 512 MiB, so no growth fits; it may move VMs to b
hostd_conf "$E2E_TMP/a.conf" "$E2E_TMP/state" "$E2E_TMP/ctl-a" "memory-total = 512M" \
	"migration = auto" "peer = $PEERS_URI_B" "migration-cooldown = 1m" "migration-timeout = 2m"
hostd_conf "$E2E_TMP/b.conf" "$E2E_TMP/state-b" "$E2E_TMP/ctl-b"
hostd_start a "$E2E_TMP/a.conf" "$E2E_TMP/hostd.log"
HOSTD_A=$HOSTD_PID
hostd_start b "$E2E_TMP/b.conf" "$E2E_TMP/hostd-b.log"
HOSTD_B=$HOSTD_PID
DL_A=$E2E_TMP/state/decisions.jsonl
DL_B=$E2E_TMP/state-b/decisions.jsonl
wait_for 180 "grep -q \"vm '$E2E_DOMAIN': guest agent\" '$E2E_TMP/hostd.log'" ||
	fail "hostd on a never heard the guest agent"
# the balancer's view: every event of host a's hostd
peers_in a "$CTL" --socket "$E2E_TMP/ctl-a" --json watch >"$E2E_TMP/events-a.log" 2>&1 &
E2E_PIDS+=($!)

status
pid0=$(sv pid)
up0=$(sv uptime_s)
counter0=$(sv counter)
total0=$(sv mem_total_kib)
avail=$(sv mem_avail_kib)
e2e_log "guest on a: uptime ${up0} s, counter $counter0, MemTotal $((total0 / 1024)) MiB"

# ---- load: MemAvailable to ~10%, under the policy's 20%: a scale-up a cannot give ----
t_load=$(e2e_now_ms)
load "alloc $(((avail - total0 / 10) / 1024))M" >/dev/null || fail "alloc refused"
wait_for 30 "[ -n \"\$(dl_ts '$DL_A' $t_load hold hold host-full)\" ]" || fail "no host-full hold on a"
t_full=$(dl_ts "$DL_A" "$t_load" hold hold host-full)
wait_for 30 "[ -n \"\$(dl_ts '$DL_A' $t_load migrating)\" ]" || fail "no migration started on a"
t_start=$(dl_ts "$DL_A" "$t_load" migrating)
# vscalectl on a says the VM is on the move (unless it already arrived: then nothing to see)
st=$(peers_in a "$CTL" --socket "$E2E_TMP/ctl-a" --json show "$E2E_DOMAIN" 2>/dev/null | jq -r .state || true)
if [ -z "$(dl_ts "$DL_A" "$t_load" migrated)$(dl_ts "$DL_A" "$t_load" migrate-failed)" ]; then
	[ "$st" = migrating ] || fail "vscalectl show on a during the migration: state '$st', want migrating"
	e2e_log "host a: vscalectl show says '$st' during the migration"
else
	e2e_log "host a: the migration ended before vscalectl was asked (state '$st'); not checked"
fi
wait_for 120 "[ -n \"\$(dl_ts '$DL_A' $t_load migrated)\$(dl_ts '$DL_A' $t_load migrate-failed)\" ]" ||
	fail "the migration did not end within 120 s"
[ -n "$(dl_ts "$DL_A" "$t_load" migrated)" ] ||
	fail "the migration failed: $(dl_line "$DL_A" migrate-failed)"
t_done=$(dl_ts "$DL_A" "$t_load" migrated)
done_line=$(dl_line "$DL_A" migrated)
detail=$(echo "$done_line" | sed -n 's/.*"detail":"\([^"]*\)".*/\1/p')
total_ms=$(echo "$detail" | sed -n 's/.* in \([0-9]*\) ms,.*/\1/p')
downtime_ms=$(echo "$detail" | sed -n 's/.*downtime \(-\{0,1\}[0-9]*\) ms.*/\1/p')
e2e_log "host a: migrated $detail"
E2E_HOST=b

# ---- where the VM is now ----
[ "$(peers_virsh b domstate "$E2E_DOMAIN" 2>/dev/null)" = running ] || fail "the VM is not running on b"
info=$(peers_virsh b dominfo "$E2E_DOMAIN")
echo "$info" | grep -q '^Persistent: *yes' || fail "the VM is not persistent on b: $info"
! peers_virsh a dominfo "$E2E_DOMAIN" >/dev/null 2>&1 || fail "the VM is still defined on a"
grep -q "vm '$E2E_DOMAIN': migrated to $PEERS_URI_B" "$E2E_TMP/hostd.log" ||
	grep -q "vm '$E2E_DOMAIN': migrated away" "$E2E_TMP/hostd.log" ||
	fail "hostd on a still manages the VM"
grep -q '"kind":"migration-request".*"need_mem_kib":786432.*"peer":"'"$PEERS_URI_B"'"' \
	"$E2E_TMP/events-a.log" || fail "no migration-request event for 768 MiB to b on a's event socket"

# ---- the guest kept running: same load controller, uptime and counter went on ----
TEST_SOCK=$(chan org.vscale.test.0)
status
[ "$(sv pid)" = "$pid0" ] || fail "the load controller restarted (pid $pid0 -> $(sv pid))"
awk -v a="$(sv uptime_s)" -v b="$up0" 'BEGIN { exit !(a > b) }' || fail "guest uptime went back"
[ "$(sv counter)" -gt "$counter0" ] || fail "the guest's counter did not go on"
e2e_log "guest on b: uptime $(sv uptime_s) s, counter $(sv counter)"

# ---- the guest agent's stream on b, and the scale-up there ----
wait_for 30 "grep -q \"vm '$E2E_DOMAIN': guest agent\" '$E2E_TMP/hostd-b.log'" ||
	fail "hostd on b never heard the guest agent"
t_session=$(e2e_now_ms)
# b knows it came by migration: it is not sent on before migration-cooldown (b has it off here)
grep -q "vm '$E2E_DOMAIN': arrived by live migration" "$E2E_TMP/hostd-b.log" ||
	fail "hostd on b did not see the VM arrive by migration (no cooldown for it)"
wait_for 60 "[ -n \"\$(dl_ts '$DL_B' 0 done mem-up)\" ]" || fail "no memory scale-up on b"
t_grown=$(dl_ts "$DL_B" 0 "done" mem-up)
# shellcheck disable=SC2016 # wait_for evaluates it
wait_for 20 'status; [ "$(sv mem_total_kib)" -ge $((total0 + 200 * 1024)) ]' ||
	fail "the guest's MemTotal did not grow on b ($(($(sv mem_total_kib) / 1024)) MiB)"
! grep -q "rejected" "$E2E_TMP/hostd.log" "$E2E_TMP/hostd-b.log" ||
	fail "a hostd rejected guest frames: $(grep -h -m2 rejected "$E2E_TMP/hostd.log" "$E2E_TMP/hostd-b.log")"
for p in "$HOSTD_A" "$HOSTD_B"; do
	kill -0 "$p" 2>/dev/null || fail "a hostd died (see $E2E_TMP/hostd*.log)"
done
load free >/dev/null || true

for v in "$t_full" "$t_start" "$t_done" "$t_grown" "$total_ms" "$downtime_ms"; do
	[[ $v =~ ^-?[0-9]+$ ]] || fail "a figure did not parse ('$v'; migrated: $detail)"
done
[ "$downtime_ms" -ge 0 ] || fail "libvirt gave no downtime for the migration"
timing "host full -> migration start" "$((t_start - t_full)) ms (capacity of b asked on the way)"
timing "migration (virDomainMigrateToURI3)" "$total_ms ms"
timing "downtime (libvirt job stats on b)" "$downtime_ms ms"
timing "migration start -> done in hostd on a" "$((t_done - t_start)) ms"
timing "done -> guest session on b seen by the test" "$((t_session - t_done)) ms (polled)"
timing "done in hostd on a -> scale-up done on b" "$((t_grown - t_done)) ms (b's 2 s window may start before)"
e2e_log "guest MemTotal $((total0 / 1024)) -> $(($(sv mem_total_kib) / 1024)) MiB on b; $detail"
echo "---- e2e migrate: timings ----"
printf '%s\n' "${TIMINGS[@]}"
echo "PASS"
