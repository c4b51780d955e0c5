#!/bin/sh
# Runs one libFuzzer target for a while and says what it did, or what it found.
#
#   run.sh [--keep] BIN SECONDS WORKDIR MAX_LEN SEED_DIR...
#
# WORKDIR gets corpus/ (new inputs; emptied first unless --keep, which make fuzz uses so the
# corpus grows from run to run), crashes/ (failing inputs), tmp/ (TMPDIR: the config targets
# write their files there when there is no /dev/shm) and fuzz.log (libFuzzer's output). Exit 0
# when the time ran out with no failure.
set -eu

keep=0
if [ "$1" = --keep ]; then
	keep=1
	shift
fi
bin=$1 secs=$2 work=$3 maxlen=$4
shift 4
name=$(basename "$bin")

[ "$keep" = 1 ] || rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/crashes" "$work/tmp"
rm -rf "${work:?}/tmp/"*
before=$(find "$work/corpus" -type f | wc -l)
rc=0
TMPDIR=$work/tmp "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len="$maxlen" -print_final_stats=1 -artifact_prefix="$work/crashes/" \
	"$work/corpus" "$@" >"$work/fuzz.log" 2>&1 || rc=$?

stat() { sed -n "s/^stat::$1: *//p" "$work/fuzz.log" | tail -n 1; }
runs=$(stat number_of_executed_units)
eps=$(stat average_exec_per_sec)
after=$(find "$work/corpus" -type f | wc -l)
if [ "$rc" -ne 0 ]; then
	echo "FUZZ FAILURE: $name exited $rc after ${runs:-?} runs; libFuzzer's report:" >&2
	grep -n -A 40 -m 1 -E 'ERROR: |FUZZ INVARIANT|==[0-9]+==|runtime error' "$work/fuzz.log" \
		| head -n 60 >&2 || tail -n 60 "$work/fuzz.log" >&2
	for f in "$work/crashes/"*; do
		[ -f "$f" ] || continue
		echo "FUZZ FAILURE: failing input saved as $f" >&2
		echo "  reproduce: $bin $f" >&2
	done
	exit 1
fi
echo "$name: ${runs:-?} runs in ${secs} s (${eps:-?} exec/s), corpus $before -> $after files, no failure"
