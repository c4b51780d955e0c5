#!/bin/bash
# Installs vscale-host and vscale-guest into a clean Debian root and checks what they ship:
#
#   1. the .debs (packaging/deb/build.sh): fields, exact file lists, conffiles, modes;
#   2. a debootstrap minbase root of this machine's Debian release, plus systemd, udev, man-db
#      and the packages' Depends (cached as a tarball in BUILD_DIR/pkgtest/: a rerun unpacks it);
#   3. in a chroot (no systemd running): dpkg -i of both (Depends satisfied), dpkg --verify,
#      the files and conffiles, the maintainer scripts' enable symlinks, `man -w` of every page,
#      `systemd-analyze verify` of both units (man pages included; a broken copy must fail),
#      `systemd-analyze security --offline` with a ceiling per unit, the udev rule through
#      `udevadm test` on a fake sysfs (the port org.vscale.agent.0 gets the systemd tag,
#      SYSTEMD_WANTS=vscale-guestd.service and the /dev/virtio-ports/ link; another port does
#      not), the binaries' libraries resolved and the binaries run (--version, --print-config
#      of the shipped configs, vscalectl --help, vscale-sim --help and a replay of a shipped
#      trace with a shipped policy);
#   4. the root booted with systemd-nspawn (systemd as PID 1): vscale-hostd.service started at
#      boot under its sandbox (READY=1, libvirt's test:///default driver from a conf.d file),
#      vscalectl status over /run/vscale/control, /metrics on 127.0.0.1:9810, systemctl reload,
#      the watchdog (WatchdogSec=3s in a drop-in: still running, no restart), the guest unit's
#      sandbox with guestd streaming into a FIFO (a copy of the unit without its device binding:
#      no udev in a container), then dpkg -i again (the upgrade path restarts hostd) and
#      dpkg --purge (stops it, removes its state).
#
# Usage: tests/packaging/install-test.sh BUILD_DIR      (root; exit 77 = skipped when not root)
# Environment: VSCALE_PKG_MIRROR  Debian mirror (default: this machine's apt source)
#              VSCALE_PKG_KEEP=1  keep the unpacked root (BUILD_DIR/pkgtest/root)
#              VSCALE_PKG_NOBOOT=1  skip step 4
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
T0=$(date +%s%3N)
log() {
	local t=$(($(date +%s%3N) - T0))
	printf '[%4d.%01ds] %s\n' $((t / 1000)) $((t % 1000 / 100)) "$*"
}
FAILS=0
fail() {
	log "FAIL: $*"
	FAILS=$((FAILS + 1))
}
ok() { log "ok: $*"; }
die() {
	log "FAIL: $*"
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test: skipped: needs root (debootstrap, chroot, mount)" >&2
	exit 77
fi
[ -f "${1:-}/CMakeCache.txt" ] || die "usage: install-test.sh BUILD_DIR (a configured CMake build directory)"
BUILD=$(cd "$1" && pwd)
for t in debootstrap dpkg-deb chroot mount zstd; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/deps.sh"
done
WORK=$BUILD/pkgtest
ROOT=$WORK/root
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9

cleanup() {
	local rc=$?
	if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || umount -l "$ROOT/proc"; fi
	if [ "${VSCALE_PKG_KEEP:-0}" != 1 ] && [ -d "$ROOT" ]; then
		rm -rf --one-file-system "$ROOT"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# --- 1. the packages -------------------------------------------------------------------------
log "building the packages"
mapfile -t DEBS < <("$SRC/packaging/deb/build.sh" "$BUILD" "$BUILD/deb") || die "packaging/deb/build.sh failed"
HOST_DEB=$(printf '%s\n' "${DEBS[@]}" | grep '/vscale-host_')
GUEST_DEB=$(printf '%s\n' "${DEBS[@]}" | grep '/vscale-guest_')
HAVE_CTL=0
[ -x "$BUILD/host-agent/vscalectl" ] && HAVE_CTL=1

contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort; }
expect_host="/etc/vscale/vscale.conf
/usr/lib/systemd/system/vscale-hostd.service
/usr/sbin/vscale-hostd
/usr/share/doc/vscale-host/README.md
/usr/share/doc/vscale-host/copyright
/usr/share/man/man5/vscale.conf.5.gz
/usr/share/man/man8/vscale-hostd.8.gz"
[ "$HAVE_CTL" = 0 ] || expect_host+=$'\n/usr/sbin/vscalectl\n/usr/share/man/man8/vscalectl.8.gz'
# vscale-sim with the synthetic traces and the example policies (not the Bitbrains traces)
SIMDATA=/usr/share/vscale/sim
expect_host+=$'\n/usr/bin/vscale-sim\n/usr/share/man/man1/vscale-sim.1.gz'
for f in "$SRC"/sim/traces/synthetic/*.csv; do expect_host+=$'\n'"$SIMDATA/traces/synthetic/${f##*/}"; done
for f in "$SRC"/sim/policies/*.conf; do expect_host+=$'\n'"$SIMDATA/policies/${f##*/}"; done
expect_guest="/etc/vscale/guest.conf
/usr/lib/systemd/system/vscale-guestd.service
/usr/lib/udev/rules.d/60-vscale-guestd.rules
/usr/sbin/vscale-guestd
/usr/share/doc/vscale-guest/README.md
/usr/share/doc/vscale-guest/copyright
/usr/share/man/man8/vscale-guestd.8.gz"
check_deb() { # DEB PACKAGE EXPECTED-FILES NEEDED-DEPENDS...
	local deb=$1 pkg=$2 want=$3 d got
	shift 3
	got=$(contents "$deb")
	if [ "$got" = "$(echo "$want" | sort)" ]; then
		ok "$pkg: files as expected ($(echo "$got" | wc -l)), $(du -k "$deb" | cut -f1) KiB"
	else
		fail "$pkg: files differ (- expected, + shipped): $(diff <(echo "$want" | sort) <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
	fi
	[ "$(dpkg-deb -f "$deb" Package)" = "$pkg" ] || fail "$pkg: Package field"
	for d in "$@"; do
		dpkg-deb -f "$deb" Depends | grep -qE "(^|, )$d( |,|$)" || fail "$pkg: Depends lacks $d: $(dpkg-deb -f "$deb" Depends)"
	done
	[ "$(dpkg-deb -I "$deb" conffiles 2>/dev/null)" = "$(echo "$want" | grep '^/etc/')" ] ||
		fail "$pkg: conffiles are not exactly its /etc files"
	dpkg-deb -c "$deb" | awk '$6 ~ /usr\/s?bin\/./ && ($1 != "-rwxr-xr-x" || $2 != "root/root") { bad = 1 } END { exit bad }' ||
		fail "$pkg: a binary is not 0755 root:root"
	log "$pkg Depends: $(dpkg-deb -f "$deb" Depends)"
}
check_deb "$HOST_DEB" vscale-host "$expect_host" libc6 libvirt0 libsystemd0 libev4 procps
check_deb "$GUEST_DEB" vscale-guest "$expect_guest" libc6 libproc2-0 libsystemd0 libev4

# --- 2. the root -----------------------------------------------------------------------------
# shellcheck source-path=SCRIPTDIR source=root.sh
. "$HERE/root.sh"
pkgroot_tarball "$WORK" "$HOST_DEB" "$GUEST_DEB" || die "no Debian root"
TARBALL=$PKGROOT_TARBALL
rm -rf --one-file-system "$ROOT"
mkdir -p "$ROOT"
tar -C "$ROOT" -I zstd -xf "$TARBALL" || die "cannot unpack $TARBALL"
log "root unpacked from $(basename "$TARBALL")"
mount -t proc proc "$ROOT/proc"

# --- 3. in a chroot, without systemd -----------------------------------------------------------
cp "$HOST_DEB" "$GUEST_DEB" "$ROOT/tmp/"
if in_root dpkg -i "/tmp/$(basename "$HOST_DEB")" "/tmp/$(basename "$GUEST_DEB")" >"$WORK/dpkg.log" 2>&1; then
	ok "dpkg -i vscale-host vscale-guest: installed, Depends satisfied by the packages they name"
else
	die "dpkg -i failed: $(tail -n 8 "$WORK/dpkg.log")"
fi
for p in vscale-host vscale-guest; do
	# shellcheck disable=SC2016 # dpkg-query expands ${...}, not the shell
	[ "$(in_root dpkg-query -W -f='${Status}' "$p")" = "install ok installed" ] || fail "$p is not 'install ok installed'"
	out=$(in_root dpkg --verify "$p" 2>&1) || true
	[ -z "$out" ] || fail "dpkg --verify $p: $out"
done
ok "dpkg --verify: every shipped file matches its md5sum"
cmp -s "$ROOT/etc/vscale/vscale.conf" "$SRC/packaging/config/vscale.conf" || fail "/etc/vscale/vscale.conf is not packaging/config/vscale.conf"
cmp -s "$ROOT/etc/vscale/guest.conf" "$SRC/packaging/config/guest.conf" || fail "/etc/vscale/guest.conf is not packaging/config/guest.conf"
[ -d "$ROOT/etc/vscale/conf.d" ] || fail "/etc/vscale/conf.d missing"
# shellcheck disable=SC2016 # dpkg-query expands ${...}, not the shell
in_root dpkg-query -W -f='${Conffiles}\n' vscale-host vscale-guest | grep -q '/etc/vscale/vscale.conf' ||
	fail "/etc/vscale/vscale.conf is not registered as a conffile"
ok "configs: the example configs as conffiles, conf.d/ present"

# maintainer scripts without systemd running: enable symlink only, nothing started
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/vscale-hostd.service" ] ||
	fail "postinst did not enable vscale-hostd.service"
[ "$(in_root systemctl is-enabled vscale-hostd.service 2>&1)" = enabled ] || fail "vscale-hostd.service not enabled"
[ "$(in_root systemctl is-enabled vscale-guestd.service 2>&1)" = static ] ||
	fail "vscale-guestd.service is not 'static' (it must be started by udev only)"
ok "postinst (no systemd): vscale-hostd.service enabled, vscale-guestd.service static"

pages="vscale-hostd.8 vscale.conf.5 vscale-guestd.8 vscale-sim.1"
[ "$HAVE_CTL" = 0 ] || pages+=" vscalectl.8"
for m in $pages; do
	in_root man -w "${m##*.}" "${m%.*}" >/dev/null 2>&1 ||
		fail "man -w ${m%.*}(${m##*.}) finds nothing"
done
ok "man pages found by man: $pages"

# systemd-analyze verify: also runs `man` for every Documentation= page
for u in vscale-hostd.service vscale-guestd.service; do
	if out=$(in_root systemd-analyze verify "/usr/lib/systemd/system/$u" 2>&1) && [ -z "$out" ]; then
		ok "systemd-analyze verify $u: clean (Documentation= man pages included)"
	else
		fail "systemd-analyze verify $u: $out"
	fi
done
sed 's|^ExecStart=.*|ExecStart=/usr/sbin/vscale-nonexistent|' "$ROOT/usr/lib/systemd/system/vscale-hostd.service" \
	>"$ROOT/tmp/vscale-broken.service"
if in_root systemd-analyze verify /tmp/vscale-broken.service >/dev/null 2>&1; then
	fail "systemd-analyze verify passes a unit whose ExecStart= does not exist: it checks nothing here"
else
	ok "systemd-analyze verify fails a copy with a missing ExecStart= (the check can fail)"
fi
# the exposure scores; a ceiling just above today's so that loosening the sandbox is noticed
for uc in vscale-hostd.service:2.5 vscale-guestd.service:2.0; do
	u=${uc%%:*}
	in_root systemd-analyze security --offline=true "/usr/lib/systemd/system/$u" >"$WORK/security-$u.txt" 2>&1 || true
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$WORK/security-$u.txt")
	if [ -z "$score" ]; then
		fail "systemd-analyze security $u: no score: $(tail -n 3 "$WORK/security-$u.txt")"
	elif awk -v s="$score" -v m="${uc##*:}" 'BEGIN { exit !(s <= m) }'; then
		ok "systemd-analyze security $u: exposure $score (ceiling ${uc##*:}; $(grep -c '✗' "$WORK/security-$u.txt") items open, see $WORK/security-$u.txt)"
	else
		fail "systemd-analyze security $u: exposure $score above ${uc##*:}"
	fi
done

# the unit binds to the device unit systemd makes for the udev link
dev=$(in_root systemd-escape --path --suffix=device /dev/virtio-ports/org.vscale.agent.0)
if grep -qxF "BindsTo=$dev" "$ROOT/usr/lib/systemd/system/vscale-guestd.service" &&
	grep -qxF "After=$dev" "$ROOT/usr/lib/systemd/system/vscale-guestd.service"; then
	ok "vscale-guestd.service: BindsTo= and After= $dev"
else
	fail "vscale-guestd.service is not BindsTo= and After= $dev"
fi

# udev: Debian 12's udevadm (252) has no `verify`; `udevadm test` runs the real rules on a
# device, which here is a fake sysfs entry (SYSTEMD_DEVICE_VERIFY_SYSFS=0 lets sd-device read it)
fake_port() { # vportNpM NAME
	local d="$ROOT/sys/devices/pci0000:00/0000:00:04.0/virtio1/virtio-ports/$1"
	mkdir -p "$d" "$ROOT/sys/class/virtio-ports"
	printf 'MAJOR=244\nMINOR=%s\nDEVNAME=%s\n' "${1##*p}" "$1" >"$d/uevent"
	echo "$2" >"$d/name"
	echo "244:${1##*p}" >"$d/dev"
	ln -sfn ../../../../../../class/virtio-ports "$d/subsystem"
	ln -sfn "../../devices/pci0000:00/0000:00:04.0/virtio1/virtio-ports/$1" "$ROOT/sys/class/virtio-ports/$1"
}
udev_test() { # vportNpM -> udevadm test output
	chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin SYSTEMD_DEVICE_VERIFY_SYSFS=0 \
		udevadm test --action=add "/sys/class/virtio-ports/$1" 2>&1
}
fake_port vport1p1 org.vscale.agent.0
fake_port vport1p2 org.qemu.guest_agent.0
udev_fails=$FAILS
out=$(udev_test vport1p1)
echo "$out" >"$WORK/udevadm-test.txt"
grep -q 'Reading rules file: .*/60-vscale-guestd.rules' <<<"$out" || fail "udev: 60-vscale-guestd.rules was not read"
if grep -E '60-vscale-guestd\.rules' <<<"$out" | grep -qiE 'invalid|error|fail|unknown|ignor'; then
	fail "udev: the rule file has problems: $(grep '60-vscale-guestd.rules' <<<"$out" | head -n 3)"
fi
grep -qx 'SYSTEMD_WANTS=vscale-guestd.service' <<<"$out" || fail "udev: port org.vscale.agent.0 lacks SYSTEMD_WANTS=vscale-guestd.service"
grep -qE '^TAGS=.*:systemd:' <<<"$out" || fail "udev: port org.vscale.agent.0 is not tagged systemd"
grep -qE '^DEVLINKS=(.* )?/dev/virtio-ports/org\.vscale\.agent\.0( |$)' <<<"$out" || fail "udev: no /dev/virtio-ports/org.vscale.agent.0 link"
grep -q '60-vscale-guestd.rules:[0-9]* LINK' <<<"$out" || fail "udev: our rule did not match (no LINK from 60-vscale-guestd.rules)"
out=$(udev_test vport1p2)
echo "$out" >"$WORK/udevadm-test-other.txt"
grep -qE '^SUBSYSTEM=virtio-ports' <<<"$out" || fail "udev: the other port was not processed: $(tail -n 3 <<<"$out")"
if grep -q '^SYSTEMD_WANTS=.*vscale-guestd' <<<"$out" || grep -q '60-vscale-guestd.rules:[0-9]' <<<"$out"; then
	fail "udev: the rule matches port org.qemu.guest_agent.0 too"
fi
[ "$FAILS" != "$udev_fails" ] || ok "udev (udevadm test, fake sysfs): org.vscale.agent.0 -> TAGS systemd, SYSTEMD_WANTS=vscale-guestd.service, link /dev/virtio-ports/org.vscale.agent.0; org.qemu.guest_agent.0 untouched"
rm -rf "$ROOT/sys/devices" "$ROOT/sys/class" "$ROOT/dev/virtio-ports" "$ROOT/dev/char" "$ROOT/run/udev"

# the binaries run in the clean root
bins="vscale-hostd vscale-guestd"
[ "$HAVE_CTL" = 0 ] || bins+=" vscalectl"
for b in $bins; do
	nf=$(in_root ldd "/usr/sbin/$b" | grep 'not found' || true)
	[ -z "$nf" ] || fail "$b: libraries not found: $nf"
done
want_ver=$(dpkg-deb -f "$HOST_DEB" Version)
[ "$(in_root vscale-hostd --version)" = "vscale-hostd $want_ver" ] || fail "vscale-hostd --version: $(in_root vscale-hostd --version 2>&1)"
[ "$(in_root vscale-guestd --version)" = "vscale-guestd $want_ver" ] || fail "vscale-guestd --version: $(in_root vscale-guestd --version 2>&1)"
in_root vscale-hostd --config /etc/vscale/vscale.conf --print-config >"$WORK/hostd-print-config.txt" 2>&1 ||
	fail "vscale-hostd --print-config with the shipped config: $(cat "$WORK/hostd-print-config.txt")"
grep -q '^\[policy default\]' "$WORK/hostd-print-config.txt" || fail "vscale-hostd --print-config printed no [policy default]"
in_root vscale-guestd --print-config >"$WORK/guestd-print-config.txt" 2>&1 ||
	fail "vscale-guestd --print-config with the shipped config: $(cat "$WORK/guestd-print-config.txt")"
grep -q '^\[guestd\]' "$WORK/guestd-print-config.txt" || fail "vscale-guestd --print-config printed no [guestd]"
if [ "$HAVE_CTL" = 1 ]; then
	in_root vscalectl --help | grep -q '^Usage: vscalectl' || fail "vscalectl --help"
fi
ok "binaries run in the root ($bins): libraries resolved, --version $want_ver, --print-config of the shipped configs"
# vscale-sim: the shipped trace 'step' with the shipped tuned policy, which is the built-in one
sim_fails=$FAILS
nf=$(in_root ldd /usr/bin/vscale-sim | grep 'not found' || true)
[ -z "$nf" ] || fail "vscale-sim: libraries not found: $nf"
out=$(in_root vscale-sim --help 2>&1) || true
grep -q '^usage: vscale-sim ' <<<"$out" || fail "vscale-sim --help: $(head -n 3 <<<"$out")"
step=$SIMDATA/traces/synthetic/step.csv
in_root vscale-sim --config "$SIMDATA/policies/tuned.conf" "$step" >"$WORK/sim-tuned.txt" 2>&1 ||
	fail "vscale-sim --config tuned.conf step.csv: $(head -n 5 "$WORK/sim-tuned.txt")"
grep -qxF "== step (vscale, 2881 rows, 0 missing; 48.0 h simulated; policy 'default' from $SIMDATA/policies/tuned.conf)" \
	"$WORK/sim-tuned.txt" || fail "vscale-sim: no table header for step with tuned.conf: $(head -n 3 "$WORK/sim-tuned.txt")"
for row in vscale proxmox mom static-peak oracle; do
	grep -qE "^$row +[0-9]+\.[0-9] +[0-9]+\.[0-9] " "$WORK/sim-tuned.txt" || fail "vscale-sim: no '$row' row in the table"
done
grep -qE '^goal \(.*\): (met|MISSED); ' "$WORK/sim-tuned.txt" || fail "vscale-sim: no goal line"
in_root vscale-sim "$step" >"$WORK/sim-default.txt" 2>&1 || fail "vscale-sim step.csv: $(head -n 5 "$WORK/sim-default.txt")"
if ! diff <(tail -n +2 "$WORK/sim-tuned.txt") <(tail -n +2 "$WORK/sim-default.txt") >/dev/null; then
	fail "vscale-sim: $SIMDATA/policies/tuned.conf does not give the built-in policy's figures (vscale-sim(1) says it is the default)"
fi
[ "$FAILS" != "$sim_fails" ] ||
	ok "vscale-sim: /usr/bin/vscale-sim --help; step.csv with tuned.conf: $(grep '^vscale ' "$WORK/sim-tuned.txt" | tr -s ' '), same as the built-in policy"
umount "$ROOT/proc"

# --- 4. booted: systemd as PID 1 -----------------------------------------------------------------
if [ "${VSCALE_PKG_NOBOOT:-0}" = 1 ]; then
	log "skipped the boot test (VSCALE_PKG_NOBOOT=1)"
elif ! command -v systemd-nspawn >/dev/null; then
	fail "systemd-nspawn not found (apt-get install systemd-container): the units were not run"
else
	mkdir -p "$ROOT/etc/vscale/conf.d" "$ROOT/etc/systemd/system/vscale-hostd.service.d" "$ROOT/root/pkgtest"
	printf '# install test: the libvirt test driver, no libvirtd in the container\n[host]\nuri = test:///default\n' \
		>"$ROOT/etc/vscale/conf.d/50-test.conf"
	printf '[Service]\nWatchdogSec=3s\n' >"$ROOT/etc/systemd/system/vscale-hostd.service.d/50-test.conf"
	cp "$HOST_DEB" "$GUEST_DEB" "$ROOT/root/pkgtest/"
	install -m 0755 "$HERE/boot-checks.sh" "$ROOT/root/pkgtest/boot-checks.sh"
	cat >"$ROOT/etc/systemd/system/vscale-pkgtest.service" <<'EOF'
[Unit]
Description=vscale install test, run at boot
After=vscale-hostd.service
[Service]
Type=oneshot
ExecStart=/root/pkgtest/boot-checks.sh
StandardOutput=append:/root/pkgtest/result.log
StandardError=inherit
ExecStopPost=/bin/systemctl --no-block --check-inhibitors=no poweroff
[Install]
WantedBy=multi-user.target
EOF
	ln -sf /etc/systemd/system/vscale-pkgtest.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
	log "booting the root with systemd-nspawn"
	t=$(date +%s%3N)
	timeout 240 systemd-nspawn --quiet --register=no --keep-unit --private-network -D "$ROOT" --boot \
		</dev/null >"$WORK/boot.log" 2>&1 || true
	log "container ran for $(($(date +%s%3N) - t)) ms (console: $WORK/boot.log)"
	if [ ! -s "$ROOT/root/pkgtest/result.log" ]; then
		fail "the boot checks did not run: $(tail -n 15 "$WORK/boot.log")"
	else
		cp "$ROOT/root/pkgtest/result.log" "$WORK/boot-checks.log"
		while IFS= read -r line; do
			case $line in
			ok:*) log "boot $line" ;;
			FAIL:*) fail "boot: ${line#FAIL: }" ;;
			*) echo "    $line" ;;
			esac
		done <"$WORK/boot-checks.log"
		grep -q '^done$' "$WORK/boot-checks.log" || fail "the boot checks did not finish (see $WORK/boot-checks.log)"
	fi
fi

t=$(($(date +%s%3N) - T0))
if [ "$FAILS" -gt 0 ]; then
	log "install test: $FAILS check(s) failed ($t ms)"
	exit 1
fi
log "install test: all checks passed ($t ms)"
