# Shared by the e2e scripts (source it; bash). A test domain from domain.xml.in, its channels,
# waiting on the guest agent's stream, and a cleanup that always destroys and undefines the
# domain and removes the temporary directory, also when a test fails.
#
#   e2e_init BUILD_DIR          checks the binaries, makes E2E_TMP, installs the EXIT trap
#   e2e_build_guest             tests/e2e/build-guest.sh into BUILD_DIR/e2e-guest
#   e2e_domain_define [KEY=VALUE...]  writes E2E_TMP/domain.xml and defines E2E_DOMAIN
#   e2e_domain_start            starts it; E2E_AGENT_SOCK, E2E_TEST_SOCK are the channels
#   e2e_watch_start             e2e-streamcheck watch on the agent channel into E2E_WATCH_LOG
#   e2e_wait_sample SINCE_MS TIMEOUT_S 'AWK CONDITION'   prints the first matching sample line
#   e2e_load COMMAND...         sends commands to the load controller in the guest
#
# Environment: VSCALE_E2E_KEEP=1 keeps the domain's files (not the domain) for a post-mortem;
# VSCALE_E2E_CMDLINE adds kernel command line words (e.g. vscale.verbose=1).

E2E_URI=${E2E_URI:-qemu:///system}
E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_T0=$(date +%s%3N)
E2E_DOMAIN=""
E2E_TMP=""
E2E_PIDS=()

e2e_now_ms() { date +%s%3N; }

e2e_log() {
	local t=$(($(e2e_now_ms) - E2E_T0))
	printf '[%4d.%01ds] %s\n' $((t / 1000)) $((t % 1000 / 100)) "$*"
}

E2E_FAILURE=""
e2e_fail() {
	E2E_FAILURE=$*
	e2e_log "FAIL: $*" >&2
	exit 1
}

virsh_() { virsh -q -c "$E2E_URI" "$@"; }

e2e_cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${E2E_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$E2E_DOMAIN" ]; then
		virsh_ destroy "$E2E_DOMAIN" >/dev/null 2>&1 || true
		virsh_ undefine "$E2E_DOMAIN" >/dev/null 2>&1 || true
		if virsh_ dominfo "$E2E_DOMAIN" >/dev/null 2>&1; then
			echo "e2e: domain $E2E_DOMAIN is still defined" >&2
			rc=1
		fi
		# libvirt keeps the QEMU log of every domain ever run: take it with us
		if [ -f "/var/log/libvirt/qemu/$E2E_DOMAIN.log" ]; then
			mv "/var/log/libvirt/qemu/$E2E_DOMAIN.log" "$E2E_TMP/qemu.log" 2>/dev/null ||
				rm -f "/var/log/libvirt/qemu/$E2E_DOMAIN.log"
		fi
	fi
	if [ "$rc" -ne 0 ] && [ -n "$E2E_TMP" ]; then
		if [ -s "$E2E_TMP/console.log" ]; then
			echo "---- guest console (last 40 lines of $E2E_TMP/console.log) ----" >&2
			tail -n 40 "$E2E_TMP/console.log" >&2
		fi
		if [ -s "$E2E_TMP/qemu.log" ]; then
			echo "---- QEMU log (last 5 lines) ----" >&2
			tail -n 5 "$E2E_TMP/qemu.log" >&2
		fi
		if [ -s "$E2E_TMP/hostd.log" ]; then
			echo "---- vscale-hostd log (last 25 lines) ----" >&2
			tail -n 25 "$E2E_TMP/hostd.log" >&2
		fi
		if [ -s "$E2E_TMP/state/decisions.jsonl" ]; then
			echo "---- decision log (last 8 lines) ----" >&2
			tail -n 8 "$E2E_TMP/state/decisions.jsonl" >&2
		fi
		if [ -s "$E2E_TMP/agent.log" ]; then
			echo "---- agent stream (last 10 lines) ----" >&2
			tail -n 10 "$E2E_TMP/agent.log" >&2
		fi
	fi
	if [ -n "$E2E_TMP" ]; then
		if [ "${VSCALE_E2E_KEEP:-0}" = 1 ]; then
			echo "e2e: kept $E2E_TMP" >&2
		else
			rm -rf "$E2E_TMP"
		fi
	fi
	# again after the logs, so that it is the last line a CI log shows
	[ -z "$E2E_FAILURE" ] || echo "e2e: FAIL: $E2E_FAILURE" >&2
	exit "$rc"
}

# Domains left by a run that was killed outright (SIGKILL: no trap ran): vscale-e2e-PID (tests)
# or vscale-demo-PID (make demo) with PID gone. Runs that are still alive are left alone.
e2e_sweep() {
	local d pid
	for d in $(virsh_ list --all --name 2>/dev/null | grep -E '^vscale-(e2e|demo)-[0-9]+$' || true); do
		pid=${d##*-}
		[ ! -d "/proc/$pid" ] || continue
		echo "e2e: removing domain $d left by an earlier run" >&2
		virsh_ destroy "$d" >/dev/null 2>&1 || true
		virsh_ undefine "$d" >/dev/null 2>&1 || true
		rm -f "/var/log/libvirt/qemu/$d.log"
	done
}

e2e_init() { # BUILD_DIR
	if [ "$(id -u)" -ne 0 ]; then
		echo "e2e: skipped: must run as root (system libvirtd)" >&2
		exit 77 # ctest: skipped
	fi
	[ -d "${1:-}" ] || e2e_fail "usage: $0 BUILD_DIR (a configured CMake build directory)"
	E2E_BUILD=$(cd "$1" && pwd)
	if [ -f "$E2E_BUILD/CMakeCache.txt" ]; then
		# a failed build is reported; binaries from an earlier build are then used
		cmake --build "$E2E_BUILD" --target vscale-guestd e2e-loadgen e2e-streamcheck \
			>"$E2E_BUILD/e2e-build.log" 2>&1 ||
			echo "e2e: WARNING: building the e2e binaries failed ($E2E_BUILD/e2e-build.log)" >&2
	fi
	E2E_GUESTD=$E2E_BUILD/guest-agent/vscale-guestd
	E2E_LOADGEN=$E2E_BUILD/tests/e2e/e2e-loadgen
	E2E_CHECK=$E2E_BUILD/tests/e2e/e2e-streamcheck
	local b
	for b in "$E2E_GUESTD" "$E2E_LOADGEN" "$E2E_CHECK"; do
		[ -x "$b" ] || e2e_fail "$b missing: build it first"
	done
	E2E_TMP=$(mktemp -d /tmp/vscale-e2e.XXXXXX)
	chmod 0755 "$E2E_TMP" # QEMU runs as libvirt-qemu and opens the kernel and initrd here
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
}

e2e_build_guest() {
	E2E_GUEST=$E2E_BUILD/e2e-guest
	"$E2E_HERE/build-guest.sh" "$E2E_GUEST" "$E2E_GUESTD" "$E2E_LOADGEN" ||
		e2e_fail "building the guest failed"
	# shellcheck disable=SC1091
	. "$E2E_GUEST/guest.env"
}

# e2e_domain_define [NAME=... MEM_MIB=... VMEM_MIB=... MAX_VCPUS=... MAX_MIB=... ON_REBOOT=...]
# MAX_MIB: <maxMemory> (default MEM_MIB + VMEM_MIB + 512, room for one 512 MiB DIMM)
# ON_REBOOT: destroy (default: a guest panic, panic=1, ends the domain) or restart
e2e_domain_define() {
	local name="vscale-e2e-$$" mem=512 vmem=2048 maxv=4 maxm="" onreboot=destroy kv vcpus="" i
	for kv in "$@"; do
		case $kv in
		NAME=*) name=${kv#*=} ;;
		MEM_MIB=*) mem=${kv#*=} ;;
		VMEM_MIB=*) vmem=${kv#*=} ;;
		MAX_VCPUS=*) maxv=${kv#*=} ;;
		MAX_MIB=*) maxm=${kv#*=} ;;
		ON_REBOOT=*) onreboot=${kv#*=} ;;
		*) e2e_fail "e2e_domain_define: unknown $kv" ;;
		esac
	done
	e2e_sweep
	# a private copy: libvirt relabels the kernel and initrd it boots
	cp "$E2E_GUEST/vmlinuz" "$E2E_GUEST/initrd.img" "$E2E_TMP/"
	vcpus="    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>"
	for ((i = 1; i < maxv; i++)); do
		vcpus+=$'\n'"    <vcpu id='$i' enabled='no' hotpluggable='yes'/>"
	done
	local cmdline="console=ttyS0 panic=1 vscale.interval=1s ${VSCALE_E2E_CMDLINE:-}"
	local uuid
	uuid=$(cat /proc/sys/kernel/random/uuid)
	awk -v vcpus="$vcpus" '{ if ($0 == "@VCPUS@") print vcpus; else print }' \
		"$E2E_HERE/domain.xml.in" |
		sed -e "s|@NAME@|$name|" -e "s|@UUID@|$uuid|" -e "s|@MEM_MIB@|$mem|g" \
			-e "s|@VMEM_MIB@|$vmem|" -e "s|@MAX_MIB@|${maxm:-$((mem + vmem + 512))}|" \
			-e "s|@MAX_VCPUS@|$maxv|" -e "s|@LAST_VCPU@|$((maxv - 1))|" -e "s|@ON_REBOOT@|$onreboot|" \
			-e "s|@KERNEL@|$E2E_TMP/vmlinuz|" -e "s|@INITRD@|$E2E_TMP/initrd.img|" \
			-e "s|@CMDLINE@|$cmdline|" -e "s|@CONSOLE_LOG@|$E2E_TMP/console.log|g" \
			>"$E2E_TMP/domain.xml"
	E2E_DOMAIN=$name
	virsh_ define "$E2E_TMP/domain.xml" >/dev/null || e2e_fail "virsh define failed ($E2E_TMP/domain.xml)"
}

e2e_channel_path() { # TARGET-NAME -> the unix socket libvirt made for that channel
	# virsh --xpath takes node sets only (no string()): it prints ' path="..."'
	virsh_ dumpxml "$E2E_DOMAIN" --xpath "//devices/channel[target/@name='$1']/source/@path" \
		2>/dev/null | sed -n 's/^ *path="\(.*\)"$/\1/p'
}

e2e_domain_start() {
	virsh_ start "$E2E_DOMAIN" >/dev/null || e2e_fail "virsh start $E2E_DOMAIN failed"
	E2E_AGENT_SOCK=$(e2e_channel_path org.vscale.agent.0)
	E2E_TEST_SOCK=$(e2e_channel_path org.vscale.test.0)
	[ -S "$E2E_AGENT_SOCK" ] || e2e_fail "no socket for org.vscale.agent.0 ('$E2E_AGENT_SOCK')"
	[ -S "$E2E_TEST_SOCK" ] || e2e_fail "no socket for org.vscale.test.0 ('$E2E_TEST_SOCK')"
}

e2e_domain_running() {
	[ "$(virsh_ domstate "$E2E_DOMAIN" 2>/dev/null)" = running ]
}

e2e_watch_start() {
	E2E_WATCH_LOG=$E2E_TMP/agent.log
	"$E2E_CHECK" watch "$E2E_AGENT_SOCK" >"$E2E_WATCH_LOG" 2>&1 &
	E2E_PIDS+=($!)
}

# Prints the first "sample" line of the watch log stamped at or after SINCE_MS that satisfies
# the awk CONDITION over v["key"] (e.g. 'v["cpus"] >= 2'); fails after TIMEOUT_S.
e2e_wait_sample() { # SINCE_MS TIMEOUT_S CONDITION
	local since=$1 deadline=$(($(e2e_now_ms) + $2 * 1000)) line
	while :; do
		line=$(awk -v since="$since" '
			$1 == "sample" {
				delete v
				for (i = 2; i <= NF; i++) {
					split($i, kv, "=")
					v[kv[1]] = kv[2] ~ /^-?[0-9.]+$/ ? kv[2] + 0 : kv[2]
				}
				if (v["t_ms"] + 0 >= since && ('"$3"')) { print; exit }
			}' "$E2E_WATCH_LOG")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		[ "$(e2e_now_ms)" -lt "$deadline" ] || return 1
		e2e_domain_running || e2e_fail "the domain stopped (guest panic? see the console)"
		sleep 0.2
	done
}

e2e_build() { # TARGET...: builds the host-side programs a test runs (log: e2e-build.log)
	cmake --build "$E2E_BUILD" --target "$@" >>"$E2E_BUILD/e2e-build.log" 2>&1 ||
		e2e_fail "building $* failed ($E2E_BUILD/e2e-build.log)"
}

# e2e_wait_services SINCE_MS WHAT: until the guest's load controller answers (init starts it
# with the agent, so the guest's services are up), for at most 120 s after SINCE_MS
e2e_wait_services() {
	until "$E2E_CHECK" cmd "$E2E_TEST_SOCK" -t 1 ping >/dev/null 2>&1; do
		[ $(($(e2e_now_ms) - $1)) -lt 120000 ] || e2e_fail "$2: the guest's load controller never answered"
		sleep 0.1
	done
}

e2e_field() { # LINE KEY -> value of KEY=value in LINE
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

e2e_load() { # COMMAND... -> the replies of the load controller
	"$E2E_CHECK" cmd "$E2E_TEST_SOCK" -t 20 "$@"
}

# The guest's own figures: status reads the load controller's status line into STATUS (a test
# that reaches the guest another way redefines status), sv KEY gives one figure of it, and
# wait_guest polls until a condition on them holds: 0, or 1 at the timeout.
STATUS=""
status() { STATUS=$(e2e_load status) || e2e_fail "load controller: $STATUS"; }
sv() { e2e_field "$STATUS" "$1"; }
wait_guest() { # TIMEOUT_S 'shell condition on $(sv key)'
	local deadline=$(($(e2e_now_ms) + $1 * 1000))
	while :; do
		status
		if eval "$2"; then return 0; fi
		[ "$(e2e_now_ms)" -lt "$deadline" ] || return 1
		e2e_domain_running || e2e_fail "the domain stopped (guest panic? see the console)"
		sleep 0.5
	done
}

# e2e_hostd_conf [FILE]: writes hostd's config (default E2E_TMP/vscale.conf): E2E_URI, managing
# only E2E_DOMAIN with the fast test policy (windows of seconds). Environment: E2E_STATE_DIR,
# E2E_CONTROL_DIR, E2E_METRICS, E2E_RESERVE_CPUS, E2E_HOSTD_HOST_EXTRA (more [host] lines), and
# E2E_CPU_DOWN_FOR, E2E_MEM_AVAIL_DOWN, E2E_MEM_DOWN_FOR for a test that must not see a shrink.
e2e_hostd_conf() {
	cat >"${1:-$E2E_TMP/vscale.conf}" <<CONF
[host]
uri = $E2E_URI
reserve-cpus = ${E2E_RESERVE_CPUS:-0}
# other guests on this host count against headroom too: leave room for them
cpu-overcommit = 16
reserve-memory = 0
interval = 1s
op-timeout = 20s
state-dir = ${E2E_STATE_DIR:-$E2E_TMP/state}
control-dir = ${E2E_CONTROL_DIR:-$E2E_TMP/run}
metrics = ${E2E_METRICS:-off}
${E2E_HOSTD_HOST_EXTRA:-}

[policy e2e]
vcpus = 1..4
cpu-up = 75%
cpu-down = 25%
cpu-up-for = 2s
cpu-down-for = ${E2E_CPU_DOWN_FOR:-4s}
vcpu-cooldown-up = 2s
vcpu-cooldown-down = 3s
vcpu-step-down = 1
mem-available-up = 20%
mem-available-down = ${E2E_MEM_AVAIL_DOWN:-45%}
mem-up-for = 2s
mem-down-for = ${E2E_MEM_DOWN_FOR:-5s}
mem-step-up = 256M
mem-step-down = 256M
mem-margin = 128M
mem-cooldown-up = 2s
mem-cooldown-down = 4s
stale-after = 3s

[vm $E2E_DOMAIN]
policy = e2e

# other domains on this host are not this test's business
[vm *]
enabled = no
CONF
}

e2e_hostd_start() {
	# VSCALE_E2E_HOSTD: another build of hostd, e.g. build-asan's (make check runs the
	# scenarios once more with it: ASan + UBSan on the real libvirt path)
	E2E_HOSTD=${VSCALE_E2E_HOSTD:-$E2E_BUILD/host-agent/vscale-hostd}
	[ -x "$E2E_HOSTD" ] || e2e_fail "$E2E_HOSTD missing: build it first"
	# e2e_hostd_start: vscale-hostd with E2E_TMP/vscale.conf (written by e2e_hostd_conf when
	# missing); log in E2E_TMP/hostd.log, decisions in E2E_TMP/state/decisions.jsonl
	[ -f "$E2E_TMP/vscale.conf" ] || e2e_hostd_conf
	E2E_DECISIONS=$E2E_TMP/state/decisions.jsonl
	"$E2E_HOSTD" --config "$E2E_TMP/vscale.conf" >>"$E2E_TMP/hostd.log" 2>&1 &
	E2E_HOSTD_PID=$!
	E2E_PIDS+=("$E2E_HOSTD_PID")
}
