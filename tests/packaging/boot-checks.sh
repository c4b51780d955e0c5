#!/bin/bash
# Runs inside the install test's container at boot, with systemd as PID 1 (install-test.sh puts
# it there as vscale-pkgtest.service, ordered after vscale-hostd.service). Prints "ok: ..." and
# "FAIL: ..." lines, then "done". The host side reads them from /root/pkgtest/result.log.
set -u
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; }
prop() { systemctl show -p "$2" --value "$1"; }
HAVE_CTL=0
[ -x /usr/sbin/vscalectl ] && HAVE_CTL=1

# checks the sandbox systemd applied to a running service's main process
check_sandbox() { # UNIT PID WANT-CapBnd
	local st
	st=$(cat "/proc/$2/status" 2>/dev/null) || {
		fail "$1: no /proc/$2"
		return
	}
	echo "$st" | grep -qx "CapBnd:	$3" || fail "$1: CapBnd $(echo "$st" | sed -n 's/^CapBnd:\t//p'), want $3"
	echo "$st" | grep -qx 'NoNewPrivs:	1' || fail "$1: NoNewPrivs not set"
	echo "$st" | grep -qx 'Seccomp:	2' || fail "$1: no seccomp filter"
	[ "$(readlink "/proc/$2/ns/mnt")" != "$(readlink /proc/1/ns/mnt)" ] || fail "$1: no mount namespace (ProtectSystem= not applied)"
	ok "$1: sandbox applied (CapBnd $3, NoNewPrivs, seccomp filter, own mount namespace)"
}

# ---- vscale-hostd.service: enabled by postinst, started at boot -----------------------------
u=vscale-hostd.service
if [ "$(prop $u ActiveState)/$(prop $u SubState)" = active/running ]; then
	ok "$u started at boot (Type=notify: READY=1 received): $(prop $u StatusText)"
else
	fail "$u is $(prop $u ActiveState)/$(prop $u SubState) ($(prop $u Result))"
fi
pid=$(prop $u MainPID)
check_sandbox $u "$pid" 0000000000000006
[ "$(stat -c %a /run/vscale 2>/dev/null)" = 700 ] || fail "/run/vscale is not mode 0700: $(stat -c %a /run/vscale 2>&1)"
[ "$(stat -c %a:%F /run/vscale/control 2>/dev/null)" = "600:socket" ] ||
	fail "/run/vscale/control is not a 0600 socket: $(stat -c '%a %F' /run/vscale/control 2>&1)"
[ "$(stat -c %a /var/lib/vscale 2>/dev/null)" = 700 ] || fail "/var/lib/vscale is not mode 0700"
ok "/run/vscale 0700 with the control socket 0600, /var/lib/vscale 0700"
if [ "$HAVE_CTL" = 1 ]; then
	if out=$(vscalectl status 2>&1) && echo "$out" | grep -q 'test:///default (connected)'; then
		ok "vscalectl status through /run/vscale/control: $(echo "$out" | head -n 2 | tr '\n' ';')"
	else
		fail "vscalectl status: $out"
	fi
fi
# /metrics on 127.0.0.1:9810, plain HTTP over bash's /dev/tcp
if exec 3<>/dev/tcp/127.0.0.1/9810; then
	printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	m=$(timeout 5 cat <&3)
	exec 3<&-
	if echo "$m" | head -n1 | grep -q ' 200' && echo "$m" | grep -q '^vscale_build_info{'; then
		ok "GET http://127.0.0.1:9810/metrics: 200, $(echo "$m" | grep -c '^vscale_') samples"
	else
		fail "/metrics: $(echo "$m" | head -n 3 | tr '\n' ' ')"
	fi
else
	fail "nothing listens on 127.0.0.1:9810"
fi
# reload: a good file, then a bad one (kept the old config), both without a restart
if systemctl reload $u && [ "$(prop $u MainPID)" = "$pid" ] && [ "$(prop $u ActiveState)" = active ]; then
	ok "systemctl reload $u: same process, still active"
else
	fail "systemctl reload $u: $(prop $u ActiveState) pid $(prop $u MainPID) (was $pid)"
fi
printf '[host]\nreserve-cpus = lots\n' >/etc/vscale/conf.d/60-bad.conf
systemctl reload $u
sleep 1
if [ "$(prop $u ActiveState)" = active ] && [ "$(prop $u MainPID)" = "$pid" ] &&
	journalctl -b -u $u --no-pager | grep -q '60-bad.conf:2'; then
	ok "reload with a bad conf.d file: reported as file:line, old config kept, still running"
else
	fail "reload with a bad file: $(prop $u ActiveState); $(journalctl -b -u $u --no-pager | tail -n 2 | tr '\n' ' ')"
fi
rm -f /etc/vscale/conf.d/60-bad.conf
# watchdog: WatchdogSec=3s here; a hostd that did not ping would be killed within 3 s
sleep 7
if [ "$(prop $u NRestarts)" = 0 ] && [ "$(prop $u MainPID)" = "$pid" ] &&
	[ "$(prop $u WatchdogUSec)" = 3s ]; then
	ok "watchdog: WatchdogSec=3s, 7 s later still the same process, no restart"
else
	fail "watchdog: NRestarts $(prop $u NRestarts), pid $(prop $u MainPID) (was $pid), WatchdogUSec $(prop $u WatchdogUSec)"
fi
if journalctl -b -u $u --no-pager | grep -qiE 'permission denied|operation not permitted|bad system call|read-only file system'; then
	fail "$u log has sandbox denials: $(journalctl -b -u $u --no-pager | grep -iE 'denied|not permitted|bad system call|read-only' | head -n 3 | tr '\n' ' ')"
else
	ok "$u log has no sandbox denial"
fi
echo "--- journal of $u (last 6 lines)"
journalctl -b -u $u --no-pager -o cat | tail -n 6

# ---- vscale-guestd.service's sandbox: the unit less its device binding, on a unix socket ----
# (in a container there is no udev, so the port's device unit never appears)
mkdir -p /run/vscale-test
perl -MIO::Socket::UNIX -e '
	my $l = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 1) or die "listen: $!";
	$SIG{ALRM} = sub { exit 0 }; alarm 15;
	my $c = $l->accept or die "accept: $!";
	open(my $o, ">", $ARGV[1]) or die; binmode $o;
	alarm 4; while (sysread($c, my $b, 65536)) { print $o $b }' \
	/run/vscale-test/agent.sock /run/vscale-test/stream.bin &
listener=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S /run/vscale-test/agent.sock ] && break; sleep 0.2; done
sed -e '/^BindsTo=/d' -e '/^After=dev-/d' \
	-e 's|^ExecStart=.*|ExecStart=/usr/sbin/vscale-guestd --device /run/vscale-test/agent.sock --interval 500ms|' \
	-e 's|^\[Service\]|[Service]\nTimeoutStartSec=20s|' \
	/usr/lib/systemd/system/vscale-guestd.service >/run/systemd/system/vscale-guestd-sandbox.service
systemctl daemon-reload
g=vscale-guestd-sandbox.service
if systemctl start $g; then
	ok "vscale-guestd under the shipped unit's sandbox: started (Type=notify: READY=1 received): $(prop $g StatusText)"
	check_sandbox "$g" "$(prop $g MainPID)" 0000000000000000
else
	fail "vscale-guestd (shipped unit less BindsTo=): $(prop $g Result); $(journalctl -b -u $g --no-pager -o cat | tail -n 3 | tr '\n' ' ')"
fi
wait "$listener" 2>/dev/null
n=$(stat -c %s /run/vscale-test/stream.bin 2>/dev/null || echo 0)
if [ "$n" -gt 0 ] && [ "$(head -c 4 /run/vscale-test/stream.bin)" = VSCL ]; then
	ok "vscale-guestd streamed $n bytes of frames from inside its sandbox"
else
	fail "vscale-guestd sent nothing on its socket ($n bytes); $(journalctl -b -u $g --no-pager -o cat | tail -n 3 | tr '\n' ' ')"
fi
journalctl -b -u $g --no-pager | grep -qiE 'permission denied|operation not permitted|bad system call' &&
	fail "$g log has sandbox denials: $(journalctl -b -u $g --no-pager -o cat | grep -iE 'denied|not permitted|bad system' | head -n 3 | tr '\n' ' ')"
systemctl stop $g
rm -f /run/systemd/system/$g
systemctl daemon-reload

# ---- the maintainer scripts with systemd running ----------------------------------------------
if dpkg -i /root/pkgtest/vscale-host_*.deb /root/pkgtest/vscale-guest_*.deb >/root/pkgtest/dpkg-again.log 2>&1; then
	newpid=$(prop $u MainPID)
	if [ "$(prop $u ActiveState)" = active ] && [ "$newpid" != "$pid" ] && [ "$newpid" != 0 ]; then
		ok "dpkg -i again (upgrade path): postinst restarted $u (pid $pid -> $newpid)"
	else
		fail "dpkg -i again: $u $(prop $u ActiveState), pid $newpid (was $pid): not restarted"
	fi
else
	fail "dpkg -i again: $(tail -n 5 /root/pkgtest/dpkg-again.log)"
fi
if dpkg --purge vscale-host vscale-guest >/root/pkgtest/dpkg-purge.log 2>&1; then
	left=""
	[ "$(prop $u ActiveState)" = inactive ] || left+="$u $(prop $u ActiveState); "
	[ ! -e /var/lib/vscale ] || left+="/var/lib/vscale; "
	[ ! -e /etc/vscale/vscale.conf ] || left+="/etc/vscale/vscale.conf; "
	[ ! -e /etc/vscale/guest.conf ] || left+="/etc/vscale/guest.conf; "
	[ ! -e /etc/systemd/system/multi-user.target.wants/vscale-hostd.service ] || left+="the enable symlink; "
	[ ! -e /usr/sbin/vscale-hostd ] || left+="/usr/sbin/vscale-hostd; "
	if [ -z "$left" ]; then
		ok "dpkg --purge: $u stopped, state, conffiles and enable symlink removed"
	else
		fail "dpkg --purge left: $left"
	fi
else
	fail "dpkg --purge: $(tail -n 5 /root/pkgtest/dpkg-purge.log)"
fi
echo "done"
