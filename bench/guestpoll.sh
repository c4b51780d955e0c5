# shellcheck shell=bash disable=SC2034 # POLL_LINE and POLL_US are read by the callers
# The e2e guest's own figures at a steady pace, for the real-VM benchmarks (source it after
# tests/e2e/lib.sh and e2e_init). bench/guestpoll asks the guest's load controller for `status`
# every POLL_MS ms (default 20) over one connection and stamps each reply with the host clock at
# its send and its arrival. It runs in the background from before the step being timed, so the
# timing pays for no new connection (one costs ~80-150 ms through virtio-serial under TCG) and
# the guest is asked at a pace that costs it little CPU.
#
#   poll_start [COMMAND]              starts it (log E2E_TMP/poll.log); waits for its first reply
#   poll_send                         sends COMMAND through it (the channel takes one connection
#                                     at a time: e2e_load cannot talk while it runs); waits for
#                                     the reply; POLL_SENT_US is when it was sent
#   poll_wait SINCE_US TIMEOUT_S 'AWK CONDITION'
#                                     the first reply that arrived at or after SINCE_US (host
#                                     wall clock, us) whose v["key"] satisfy CONDITION: sets
#                                     POLL_LINE and POLL_US (its arrival); 1 after TIMEOUT_S
#   poll_stop                         stops it
#   poll_resolution                   "every p50 X ms, ..." between replies, every poll so far
# Figures read this way are late by at most the time between two replies.

POLL_MS=${POLL_MS:-20}
POLL_PID=""
POLL_LINE=""
POLL_US=0
POLL_SENT_US=0

poll_init() {
	cmake --build "$E2E_BUILD" --target guestpoll >>"$E2E_BUILD/e2e-build.log" 2>&1 ||
		e2e_fail "building bench/guestpoll failed ($E2E_BUILD/e2e-build.log)"
	POLLER=$E2E_BUILD/bench/guestpoll
	[ -x "$POLLER" ] || e2e_fail "$POLLER missing: build it first"
	: >"$E2E_TMP/poll-gaps"
}

# drops PID from E2E_PIDS (lib.sh's cleanup kills what is listed there)
forget_pid() {
	local keep=() p
	for p in "${E2E_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	E2E_PIDS=("${keep[@]}")
}

poll_start() {
	[ -n "${POLLER:-}" ] || poll_init
	# emptied here too, not only in the child: the wait below must not see the last log
	: >"$E2E_TMP/poll.log"
	"$POLLER" "$E2E_TEST_SOCK" "$POLL_MS" 0 ${1:+"$1"} >"$E2E_TMP/poll.log" 2>>"$E2E_TMP/poll.err" &
	POLL_PID=$!
	E2E_PIDS+=("$POLL_PID")
	for _ in $(seq 1 300); do
		[ ! -s "$E2E_TMP/poll.log" ] || return 0
		kill -0 "$POLL_PID" 2>/dev/null || e2e_fail "guestpoll exited: $(tail -n 1 "$E2E_TMP/poll.err")"
		sleep 0.1
	done
	e2e_fail "guestpoll: no reply from the load controller in 30 s"
}

poll_send() {
	local line
	kill -USR1 "$POLL_PID"
	for _ in $(seq 1 200); do
		line=$(awk '$3 != "ok" || $4 != "status" { print; exit }' "$E2E_TMP/poll.log")
		if [ -n "$line" ]; then
			POLL_SENT_US=$(e2e_field "$line" sent_us)
			[ "$(echo "$line" | cut -d' ' -f3)" = ok ] || e2e_fail "guestpoll: $line"
			return 0
		fi
		sleep 0.05
	done
	e2e_fail "guestpoll: no reply to its command in 10 s"
}

poll_stop() {
	[ -n "$POLL_PID" ] || return 0
	kill "$POLL_PID" 2>/dev/null || true
	wait "$POLL_PID" 2>/dev/null || true
	forget_pid "$POLL_PID"
	POLL_PID=""
	awk '{ t = substr($2, 6) + 0; if (NR > 1) print t - p; p = t }' "$E2E_TMP/poll.log" \
		>>"$E2E_TMP/poll-gaps"
}

poll_wait() { # SINCE_US TIMEOUT_S CONDITION
	local deadline=$((${EPOCHREALTIME/./} + $2 * 1000000))
	while :; do
		POLL_LINE=$(awk -v since="$1" '
			{
				delete v
				for (i = 1; i <= NF; i++)
					if (split($i, kv, "=") == 2)
						v[kv[1]] = kv[2] ~ /^-?[0-9.]+$/ ? kv[2] + 0 : kv[2]
				if (v["t_us"] >= since && v["sent_us"] > 0 && ('"$3"')) { print; exit }
			}' "$E2E_TMP/poll.log")
		if [ -n "$POLL_LINE" ]; then
			POLL_US=$(e2e_field "$POLL_LINE" t_us)
			return 0
		fi
		[ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
		kill -0 "$POLL_PID" 2>/dev/null || e2e_fail "guestpoll exited: $(tail -n 1 "$E2E_TMP/poll.err")"
		sleep 0.05
	done
}

poll_resolution() {
	sort -n "$E2E_TMP/poll-gaps" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "no polls"; exit }
		printf "p50 %.1f ms, p95 %.1f ms, max %.1f ms (%d replies, one asked every %d ms)\n",
			v[int((NR + 1) / 2)] / 1000, v[int((NR * 95 + 99) / 100)] / 1000, v[NR] / 1000,
			NR, '"$POLL_MS"' }'
}
