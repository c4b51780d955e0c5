#!/bin/bash
# Checks that the documentation shipped in the packages matches the binaries it documents.
#
#   check-docs.sh man BUILD_DIR       the man pages (packaging/man/):
#     - groff -man -ww formats each without a warning;
#     - every long option of `--help` (vscale-hostd, vscale-guestd, vscalectl when built,
#       vscale-sim in section 1) and every vscalectl command is in its page;
#     - vscale.conf(5) and vscale-guestd(8) document every key --print-config shows, and the
#       default they state is the real one: their ".B key = value" lines are fed back to the
#       daemon as a config file and must give the same --print-config as no config at all.
#   check-docs.sh examples BUILD_DIR  the example configs (packaging/config/*.conf):
#     - every key --print-config shows is mentioned, and the commented "#key = value" lines of
#       the real sections ([host], [policy default], [guestd]), uncommented, give the defaults.
#
# Prints what it checked; exits 1 listing every mismatch.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
MODE=${1:-}
BUILD=${2:-}
if [ -z "$MODE" ] || [ ! -d "$BUILD" ]; then
	echo "usage: check-docs.sh man|examples BUILD_DIR" >&2
	exit 2
fi
HOSTD=$BUILD/host-agent/vscale-hostd
GUESTD=$BUILD/guest-agent/vscale-guestd
CTL=$BUILD/host-agent/vscalectl
SIM=$BUILD/sim/vscale-sim
for b in "$HOSTD" "$GUESTD"; do
	[ -x "$b" ] || {
		echo "check-docs: $b missing: build it first" >&2
		exit 1
	}
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }

# --print-config without the "# effective configuration from FILE" line and the help comments
effective() { # DAEMON CONFIG
	"$1" --config "$2" --print-config | grep -v '^#' | sed 's/[[:space:]]*$//'
}
# key names per section of a --print-config output: "[section] key" lines
keys_of() {
	awk '/^\[/ { sec = $0; next } /^[a-z]/ { print sec, $1 }' "$1" | sort -u
}

# The baselines: every key at its default. [vm x] makes hostd print the [vm] keys.
printf '[vm x]\n' >"$TMP/host-base.conf"
: >"$TMP/guest-base.conf"
effective "$HOSTD" "$TMP/host-base.conf" >"$TMP/host-base.out"
effective "$GUESTD" "$TMP/guest-base.conf" >"$TMP/guest-base.out"
keys_of "$TMP/host-base.out" >"$TMP/host-keys"
keys_of "$TMP/guest-base.out" >"$TMP/guest-keys"

# Writes a config from "[section]" and "key = value" lines on stdin; compares what the daemon
# makes of it with the baseline; lists keys the baseline has and the input lacks.
compare_defaults() { # WHAT DAEMON BASE_OUT KEYS_FILE (input on stdin)
	local what=$1 daemon=$2 base=$3 keys=$4 conf="$TMP/gen.conf" missing
	cat >"$conf"
	if ! effective "$daemon" "$conf" >"$TMP/gen.out" 2>"$TMP/gen.err"; then
		fail "$what: the documented values do not parse: $(cat "$TMP/gen.err")"
		return
	fi
	if ! diff -u "$base" "$TMP/gen.out" >"$TMP/gen.diff"; then
		fail "$what: documented defaults differ from the real ones (- real, + documented):"
		grep '^[-+][a-z]' "$TMP/gen.diff" | sed 's/^/    /'
	fi
	missing=$(keys_of "$conf" | comm -13 - "$keys" | sed 's/^\[[^]]*\] //' | tr '\n' ' ')
	if [ -n "$missing" ]; then
		fail "$what: undocumented keys: $missing"
	else
		ok "$what: every key documented ($(wc -l <"$keys")), defaults match"
	fi
}

# ".B key = value" after .TP, per section; roff escapes undone. Sections: .SS "[host]" etc.
man_keys() { # PAGE SECTION-MAP ("SS-title=[ini section]" words)
	awk -v map="$2" '
		BEGIN { n = split(map, m, ";"); for (i = 1; i <= n; i++) { split(m[i], kv, "="); sec[kv[1]] = kv[2] } }
		/^\.S[SH] / { t = $0; sub(/^\.S[SH] +/, "", t); gsub(/"/, "", t); cur = (t in sec) ? sec[t] : ""
			if (cur != "") print cur; tp = 0; next }
		/^\.TP/ { tp = 1; next }
		tp && cur != "" && /^\.B [a-z\\-]+ =/ { l = $0; sub(/^\.B /, "", l); gsub(/\\-/, "-", l); print l }
		{ tp = 0 }' "$1"
}

check_man() {
	local page long opt cmd
	# 1. groff
	if ! command -v groff >/dev/null; then
		fail "groff not found (apt-get install groff-base)"
	else
		for page in "$SRC"/packaging/man/*.[1-8]; do
			if [ -n "$(LC_ALL=C.UTF-8 groff -t -man -ww -z "$page" 2>&1)" ]; then
				fail "$(basename "$page"): groff warnings: $(LC_ALL=C.UTF-8 groff -t -man -ww -z "$page" 2>&1 | head -n 5)"
			else
				ok "$(basename "$page") formats without warnings"
			fi
		done
	fi
	# 2. options and commands
	for b in "$HOSTD" "$GUESTD" "$CTL" "$SIM"; do
		[ -x "$b" ] || {
			echo "skip: $(basename "$b") not built: its page is not checked against --help"
			continue
		}
		page="$SRC/packaging/man/$(basename "$b").8"
		[ "$b" != "$SIM" ] || page="$SRC/packaging/man/vscale-sim.1"
		[ -f "$page" ] || {
			fail "$(basename "$b") has no man page $(basename "$page")"
			continue
		}
		long=$("$b" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
		for opt in $long; do
			grep -qF -- "${opt//-/\\-}" "$page" || fail "$(basename "$page"): option $opt of --help is not documented"
		done
		ok "$(basename "$page"): the $(echo "$long" | wc -w) long options of --help are documented"
	done
	if [ -x "$CTL" ]; then
		for cmd in $("$CTL" --help | sed -n '/^Commands:/,/^$/p' | grep -oE '^  [a-z]+( VM \| [a-z]+)?' |
			tr -d '|' | grep -oE '[a-z]+' | grep -vx VM); do
			grep -qE "^\.B[IR]? \"?$cmd( |\"|$)" "$SRC/packaging/man/vscalectl.8" ||
				fail "vscalectl.8: command '$cmd' of --help has no entry under COMMANDS"
		done
		ok "vscalectl.8: every command of --help has an entry"
	fi
	# 3. keys and defaults
	# (files, not pipes: compare_defaults must run in this shell to count failures)
	man_keys "$SRC/packaging/man/vscale.conf.5" \
		'[host]=[host];[policy NAME]=[policy default];[vm PATTERN]=[vm x]' >"$TMP/man-host"
	compare_defaults "vscale.conf(5)" "$HOSTD" "$TMP/host-base.out" "$TMP/host-keys" <"$TMP/man-host"
	man_keys "$SRC/packaging/man/vscale-guestd.8" 'CONFIGURATION=[guestd]' >"$TMP/man-guest"
	compare_defaults "vscale-guestd(8)" "$GUESTD" "$TMP/guest-base.out" "$TMP/guest-keys" <"$TMP/man-guest"
	# 4. the EXAMPLE of vscale.conf(5) is a valid configuration
	awk '/^\.SH EXAMPLE/ { ex = 1; next } ex && /^\.nf/ { on = 1; next } on && /^\.fi/ { exit }
		on { gsub(/\\-/, "-"); print }' "$SRC/packaging/man/vscale.conf.5" >"$TMP/example.conf"
	if [ ! -s "$TMP/example.conf" ]; then
		fail "vscale.conf(5): no EXAMPLE block found"
	elif "$HOSTD" --config "$TMP/example.conf" --print-config >/dev/null 2>"$TMP/example.err"; then
		ok "vscale.conf(5): its EXAMPLE is a valid configuration"
	else
		fail "vscale.conf(5): its EXAMPLE is refused: $(cat "$TMP/example.err")"
	fi
}

# "#key = value" lines of the real sections, uncommented; stops at a commented-out header.
example_defaults() { # FILE
	awk '/^\[/ { print; real = 1; next } /^#[[:space:]]*\[/ { real = 0; next }
		real && /^#[a-z][a-z-]* =/ { sub(/^#/, ""); print }' "$1"
}
# every key name of KEYS mentioned in FILE as "key =" (commented or not)
mentioned() { # FILE KEYS WHAT
	local missing
	missing=$(sed 's/^\[[^]]*\] //' "$2" | sort -u | while read -r k; do
		grep -qE "^#?[[:space:]]*${k}[[:space:]]*=" "$1" || printf '%s ' "$k"
	done)
	if [ -n "$missing" ]; then
		fail "$3: keys not in the example: $missing"
	else
		ok "$3 mentions every key ($(sed 's/^\[[^]]*\] //' "$2" | sort -u | wc -l))"
	fi
}

check_examples() {
	local conf="$SRC/packaging/config/vscale.conf" gconf="$SRC/packaging/config/guest.conf"
	mentioned "$conf" "$TMP/host-keys" "packaging/config/vscale.conf"
	mentioned "$gconf" "$TMP/guest-keys" "packaging/config/guest.conf"
	# [vm] keys cannot be shown at a default in a commented example: host and policy only
	printf '[vm x]\n' >"$TMP/vmx"
	{ example_defaults "$conf"; cat "$TMP/vmx"; } >"$TMP/ex.conf"
	if effective "$HOSTD" "$TMP/ex.conf" >"$TMP/ex.out" 2>"$TMP/ex.err"; then
		if diff -u "$TMP/host-base.out" "$TMP/ex.out" >"$TMP/ex.diff"; then
			ok "packaging/config/vscale.conf: its commented values are the defaults"
		else
			fail "packaging/config/vscale.conf: commented values differ from the defaults (- real, + example):"
			grep '^[-+][a-z]' "$TMP/ex.diff" | sed 's/^/    /'
		fi
	else
		fail "packaging/config/vscale.conf: its commented values do not parse: $(cat "$TMP/ex.err")"
	fi
	example_defaults "$gconf" >"$TMP/gex.conf"
	if effective "$GUESTD" "$TMP/gex.conf" >"$TMP/gex.out" 2>"$TMP/gex.err" &&
		diff -u "$TMP/guest-base.out" "$TMP/gex.out" >"$TMP/gex.diff"; then
		ok "packaging/config/guest.conf: its commented values are the defaults"
	else
		fail "packaging/config/guest.conf: commented values are not the defaults: $(cat "$TMP/gex.err" "$TMP/gex.diff" 2>/dev/null | grep -v '^[-+][-+]' | head -n 10)"
	fi
}

case $MODE in
man) check_man ;;
examples) check_examples ;;
*)
	echo "usage: check-docs.sh man|examples BUILD_DIR" >&2
	exit 2
	;;
esac
if [ "$FAILS" -gt 0 ]; then
	echo "check-docs $MODE: $FAILS problem(s)"
	exit 1
fi
echo "check-docs $MODE: all good"
