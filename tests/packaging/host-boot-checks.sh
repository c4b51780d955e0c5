#!/bin/bash
# Runs inside guest-boot.sh's host container at boot, with systemd as PID 1: vscale-hostd from
# the vscale-host package under its shipped unit, on the host's real libvirtd (its socket
# directory and the channel directory are bind-mounted in), following the test VM whose agent
# runs under vscale-guest's unit. Prints "ok: ..." and "FAIL: ..." lines, then "done".
set -u
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; }
prop() { systemctl show -p "$2" --value "$1"; }
u=vscale-hostd.service
dom=$(cat /root/pkgtest/domain)

if [ "$(prop $u ActiveState)/$(prop $u SubState)" = active/running ]; then
	ok "$u started at boot on qemu:///system: $(prop $u StatusText)"
else
	fail "$u is $(prop $u ActiveState)/$(prop $u SubState) ($(prop $u Result))"
fi
capbnd=$(sed -n 's/^CapBnd:\t//p' "/proc/$(prop $u MainPID)/status")
[ "$capbnd" = 0000000000000006 ] || fail "$u: CapBnd $capbnd, want 0000000000000006"

# the stream through the channel socket (libvirt-qemu 0750 directories: CAP_DAC_READ_SEARCH and
# CAP_DAC_OVERRIDE are what let it in)
for _ in $(seq 60); do
	out=$(vscalectl show "$dom" 2>&1)
	echo "$out" | grep -qE 'stream: +connected' && echo "$out" | grep -qE 'guest: +cpu' && break
	sleep 1
done
if echo "$out" | grep -qE 'stream: +connected' && echo "$out" | grep -qE 'guest: +cpu'; then
	ok "sandboxed hostd reads the VM's stream: $(echo "$out" | grep -E 'guest: +cpu' | sed 's/^ *//')"
else
	fail "no stream from $dom within 60 s: $(echo "$out" | tr '\n' ' ')"
fi
# a scale-down (2 idle vCPUs, policy 1..2): hostd asks, the sandboxed guest agent offlines one
for _ in $(seq 60); do
	journalctl -b -u $u --no-pager -o cat | grep -q "vcpus 2 -> 1.*done in" && break
	sleep 1
done
if line=$(journalctl -b -u $u --no-pager -o cat | grep -m1 "vcpus 2 -> 1.*done in"); then
	ok "scaled through the real libvirtd and the guest agent: $line"
else
	fail "no 'vcpus 2 -> 1 ... done' within 60 s: $(journalctl -b -u $u --no-pager -o cat | tail -n 4 | tr '\n' ' ')"
fi
echo "--- vscalectl list"
vscalectl list

# least privilege, the other way round: without the two capabilities the channel is out of reach
mkdir -p /run/systemd/system/$u.d
printf '[Service]\nCapabilityBoundingSet=\n' >/run/systemd/system/$u.d/50-nocaps.conf
systemctl daemon-reload
systemctl restart $u
sleep 8
out=$(vscalectl show "$dom" 2>&1)
if [ "$(sed -n 's/^CapBnd:\t//p' "/proc/$(prop $u MainPID)/status")" = 0000000000000000 ] &&
	echo "$out" | grep -qE 'stream: +not connected'; then
	ok "with CapabilityBoundingSet= (none) hostd cannot reach the channel: the two capabilities are needed"
else
	fail "without capabilities: $(echo "$out" | grep -E 'stream:' | sed 's/^ *//')"
fi
rm -f /run/systemd/system/$u.d/50-nocaps.conf
systemctl daemon-reload
systemctl stop $u
echo "done"
