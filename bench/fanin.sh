#!/usr/bin/env bash
# hostd fan-in benchmark: vscale-hostd reading N simulated guest streams at 1 Hz (sim_guests, a
# separate process) on libvirt's test driver, against the raw cost of receiving the same bytes
# (raw_recv on a fresh sim_guests). Prints CPU % of one core, RSS and latency; asserts nothing.
#   bench/fanin.sh BUILD_DIR [N...]        (default N: 1000 10000)
# WINDOW (s, default 20) and WARMUP (s, default 5) can be set in the environment. SCHEME=test
# (default) runs libvirt's test driver inside hostd, so hostd's RSS includes the driver's copy
# of N domains (measured apart, column drv); SCHEME=test+unix has a running libvirtd hold them,
# as virtqemud does in production.
set -euo pipefail

BUILD=${1:?usage: bench/fanin.sh BUILD_DIR [N...]}
shift
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1000 10000)
WINDOW=${WINDOW:-20}
WARMUP=${WARMUP:-5}
SCHEME=${SCHEME:-test}
HOSTD=$BUILD/host-agent/vscale-hostd
SIM=$BUILD/bench/sim_guests
RAW=$BUILD/bench/raw_recv
TMP=$(mktemp -d /tmp/vscale-fanin-XXXXXX)
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for f in "$HOSTD" "$SIM" "$RAW"; do
	[ -x "$f" ] || { echo "fanin.sh: $f not built" >&2; exit 1; }
done

now() { date +%s.%N; }

# N domains like a real host's: 1 of 4 vCPUs, a 2 GiB balloon in 4 GiB, the vscale channel
write_node() {
	local n=$1 dir=$2
	{
		echo "<node><cpu><mhz>2000</mhz><model>x86_64</model>"
		echo "<active>64</active><max>64</max><nodes>1</nodes><sockets>1</sockets>"
		echo "<cores>64</cores><threads>1</threads></cpu><memory>1073741824</memory>"
		for ((i = 0; i < n; i++)); do
			printf "<domain type='test'><name>g%05d</name>" "$i"
			printf "<uuid>33333333-0000-0000-0000-%012d</uuid>" "$i"
			printf "<memory unit='KiB'>4194304</memory>"
			printf "<currentMemory unit='KiB'>2097152</currentMemory>"
			printf "<vcpu current='1'>4</vcpu><os><type arch='x86_64'>hvm</type></os>"
			printf "<devices><channel type='unix'>"
			printf "<source mode='bind' path='%s/g%05d.sock'/>" "$dir" "$i"
			printf "<target type='virtio' name='org.vscale.agent.0'/></channel>"
			printf "<memballoon model='virtio'/></devices></domain>\n"
		done
		echo "</node>"
	} >"$dir/node.xml"
}

# The default policy's thresholds (the guests sit inside them); bounds open to the domain's.
write_conf() {
	local dir=$1
	cat >"$dir/hostd.conf" <<-EOF
		[host]
		uri = $SCHEME://$dir/node.xml
		interval = 1s
		memory-total = 1T
		reserve-cpus = 0
		reserve-memory = 0
		state-dir = $dir/state
		control-dir = $dir/run
		metrics = off

		[policy default]
		vcpus = 1..4
		memory = 1G..4G
		cpu-up = 80%
		cpu-down = 30%
		mem-available-up = 15%
		mem-available-down = 50%
		stale-after = 5s
	EOF
}

# CPU time of every thread so far, in ns (schedstat: exact, where utime/stime count 10 ms ticks)
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# CPU % of one core used by PID over WINDOW seconds
cpu_pct() {
	local pid=$1 t0 t1 c0 c1
	c0=$(cpu_ns "$pid")
	t0=$(now)
	sleep "$WINDOW"
	c1=$(cpu_ns "$pid")
	t1=$(now)
	awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.2f", 100 * (c1 - c0) / 1e9 / (t1 - t0) }'
}

status_kib() {
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

# wait_for SECONDS COMMAND...: polls every 0.2 s; fails after SECONDS
wait_for() {
	local until=$((SECONDS + $1))
	shift
	until "$@"; do
		if ((SECONDS >= until)); then
			return 1
		fi
		sleep 0.2
	done
}

# lines of file $1 matching $2; 0 while the file does not exist yet
count_in() {
	local c
	c=$(grep -c "$2" "$1" 2>/dev/null) || true
	echo "${c:-0}"
}

has_n() {
	[ "$(count_in "$1" "$2")" -ge "$3" ]
}

# MiB that libvirt's in-process test driver holds for this node file: the peak RSS of virsh
# listing it, less that of virsh on the built-in one-domain node. "-" when libvirtd holds it.
drv_mib() {
	local a b
	if [ "$SCHEME" != test ] || ! command -v virsh >/dev/null; then
		echo -
		return
	fi
	a=$( (/usr/bin/time -f %M virsh -c "test://$1/node.xml" list >/dev/null) 2>&1 | tail -n 1)
	b=$( (/usr/bin/time -f %M virsh -c test:///default list >/dev/null) 2>&1 | tail -n 1)
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (a - b) / 1024 }'
}

start_sim() {
	local n=$1 dir=$2
	"$SIM" --dir "$dir" --count "$n" --seconds 3600 2>"$dir/sim.log" &
	SIM_PID=$!
	PIDS+=("$SIM_PID")
	wait_for 60 has_n "$dir/sim.log" "listening" 1 || {
		echo "fanin.sh: sim_guests did not start: $(cat "$dir/sim.log")" >&2
		exit 1
	}
}

# stops one of ours and forgets it, so cleanup never signals a recycled pid
stop_pid() {
	local keep=() p
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# hostd phase: sets H_CPU H_RSS H_HWM H_DRV H_P99_US H_P99_AGE H_RATE H_OPEN_S H_CONN_S
run_hostd() {
	local n=$1 dir=$TMP/h$1 t0 stats line
	mkdir -p "$dir"
	write_node "$n" "$dir"
	write_conf "$dir"
	H_DRV=$(drv_mib "$dir")
	start_sim "$n" "$dir"
	t0=$(now)
	"$HOSTD" --config "$dir/hostd.conf" --dry-run 2>"$dir/hostd.log" &
	HOSTD_PID=$!
	PIDS+=("$HOSTD_PID")
	wait_for 600 has_n "$dir/hostd.log" "connected to $SCHEME:" 1 || {
		echo "fanin.sh: hostd did not connect to libvirt; see its log:" >&2
		tail "$dir/hostd.log" >&2
		exit 1
	}
	H_OPEN_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	if ! wait_for 600 has_n "$dir/hostd.log" "guest agent sim connected" "$n"; then
		echo "fanin.sh: only $(count_in "$dir/hostd.log" "guest agent sim connected") of" \
			"$n streams up after 600 s" >&2
		exit 1
	fi
	H_CONN_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	sleep "$WARMUP"
	kill -USR1 "$HOSTD_PID" # starts the latency window
	H_CPU=$(cpu_pct "$HOSTD_PID")
	H_RSS=$(status_kib "$HOSTD_PID" VmRSS)
	H_HWM=$(status_kib "$HOSTD_PID" VmHWM)
	kill -USR1 "$HOSTD_PID"
	wait_for 10 has_n "$dir/hostd.log" "stats:" 2
	line=$(grep "stats:" "$dir/hostd.log" | tail -n 1)
	# "... read to decision p50 A p99 B max C us (N); sample age p50 D p99 E max F ms (M)"
	H_P99_US=$(sed -n 's/.*read to decision p50 [0-9]* p99 \([0-9]*\) .*/\1/p' <<<"$line")
	H_P99_AGE=$(sed -n 's/.*sample age p50 [0-9]* p99 \([0-9]*\) .*/\1/p' <<<"$line")
	stats=$(sed -n 's/.*read to decision .* us (\([0-9]*\)).*/\1/p' <<<"$line")
	H_RATE=$(awk -v s="$stats" -v w="$WINDOW" 'BEGIN { printf "%.0f", s / w }')
	echo "  N=$n hostd: $line" >&2
	stop_pid "$HOSTD_PID"
	stop_pid "$SIM_PID"
	echo "  N=$n $(tail -n 1 "$dir/sim.log")" >&2
}

# raw phase: sets R_CPU
run_raw() {
	local n=$1 dir=$TMP/r$1
	mkdir -p "$dir"
	start_sim "$n" "$dir"
	"$RAW" --dir "$dir" --count "$n" --seconds 3600 2>"$dir/raw.log" &
	RAW_PID=$!
	PIDS+=("$RAW_PID")
	wait_for 120 has_n "$dir/raw.log" "of $n connected" 1 || {
		echo "fanin.sh: raw_recv did not connect: $(cat "$dir/raw.log")" >&2
		exit 1
	}
	sleep "$WARMUP"
	R_CPU=$(cpu_pct "$RAW_PID")
	stop_pid "$RAW_PID"
	stop_pid "$SIM_PID"
}

rows=()
for n in "${COUNTS[@]}"; do
	echo "fanin: $n guests: hostd ..." >&2
	run_hostd "$n"
	echo "fanin: $n guests: raw receive ..." >&2
	run_raw "$n"
	rows+=("$(awk -v n="$n" -v h="$H_CPU" -v r="$R_CPU" -v rss="$H_RSS" -v hwm="$H_HWM" \
		-v d="$H_DRV" -v p="$H_P99_US" -v a="$H_P99_AGE" -v rate="$H_RATE" \
		-v o="$H_OPEN_S" -v c="$H_CONN_S" 'BEGIN {
		printf "%6d %7s %6s %5.2f %7.1f %7.1f %6s %9s %7s %9s %5s %5s\n", n, h, r,
			(r > 0 ? h / r : 0), rss / 1024, hwm / 1024, d, p, a, rate, o, c }')")
done

echo
echo "hostd fan-in on $SCHEME://, 1 sample/s per guest, $WINDOW s from $WARMUP s after all are up"
echo "  hostd%, raw%  CPU % of one core: hostd; receiving the same bytes only (raw_recv)"
echo "  RSS, HWM      hostd's resident and peak MiB; drv: MiB of that in libvirt's test driver"
echo "  p99-rd-us     p99 from the read that completed a sample to the end of its decision, us"
echo "  p99-age       p99 age of a sample at its decision (the guest's stamp to then), ms"
echo "  samples/s     samples hostd decided per second in the window"
echo "  open, up      s from hostd's start to libvirt connected, to all streams up"
printf "%6s %7s %6s %5s %7s %7s %6s %9s %7s %9s %5s %5s\n" N hostd% raw% ratio RSS HWM drv \
	p99-rd-us p99-age samples/s open up
for r in "${rows[@]}"; do
	printf "%s\n" "$r"
done
