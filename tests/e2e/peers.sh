#!/bin/bash
# Two libvirt "hosts" on one machine for the migration test: hosts a and b, each a libvirtd (and
# virtlogd) in a mount + network namespace of its own, joined by a veth pair with private
# addresses that exist inside those two namespaces only (10.231.0.1 and .2 by default; nothing is
# added to the machine's own network). Each has its own /run/libvirt, /var/lib/libvirt,
# /etc/libvirt, /var/log/libvirt and /var/cache/libvirt (bind mounts of a temporary directory),
# its own pid files, its own host_uuid (libvirt refuses a migration to the same host UUID), no
# cgroup controllers, and listens on TCP without auth on its private address only, where the peer
# reaches it (qemu+tcp://10.231.0.2/system) and where migration data goes (migration_host).
# Facts behind this: ../../../shared/PLATFORM.md "Live migration on one machine".
#
#   bash peers.sh                 up, print the URIs, wait for Ctrl-C, tear down
#   bash peers.sh CMD ARGS...     up, run CMD with PEERS_* in its environment, tear down; CMD's
#                                 exit status is peers.sh's
#   . peers.sh; peers_up; ...     sourced: the caller installs `trap peers_down EXIT`
#
# Inside a host:  peers_in a|b CMD...  (nsenter into its namespaces; exec, so $! is CMD's pid)
#                 peers_virsh a|b ARGS...   virsh on that host's qemu:///system
# Exported by peers_up: PEERS_DIR, PEERS_PID_A / _B (the namespace holders), PEERS_IP_A / _B,
# PEERS_URI_A / _B (qemu+tcp:// URIs, for the other host), PEERS_LOCAL_URI (qemu:///system, valid
# inside either host). Needs root, unshare, nsenter and ip (iproute2). Exits 77 (skip) from
# peers_up when namespaces or the veth pair cannot be made (an unprivileged container).
# Environment: VSCALE_PEERS_NET (default 10.231.0) for the /24 used between the two hosts.

PEERS_NET=${VSCALE_PEERS_NET:-10.231.0}
PEERS_DIR=${PEERS_DIR:-}

peers_log() { echo "peers: $*" >&2; }

peers_in() { # a|b CMD... -> runs CMD inside that host's mount and network namespaces
	local pid
	case $1 in
	a) pid=$PEERS_PID_A ;;
	b) pid=$PEERS_PID_B ;;
	*)
		peers_log "peers_in: no host '$1' (a or b)"
		return 2
		;;
	esac
	shift
	nsenter -t "$pid" -m -n -- "$@"
}

peers_virsh() { # a|b ARGS...
	local h=$1
	shift
	peers_in "$h" virsh -q -c qemu:///system "$@"
}

# The private copy of one host's libvirt directories, configured for this pair.
peers_prepare() { # NAME IP
	local d=$PEERS_DIR/$1
	mkdir -p "$d"/run "$d"/lib "$d"/etc "$d"/log/qemu "$d"/cache
	# the daemons' settings only: no domain, network or pool definitions of the machine's own
	# libvirtd (a copied autostart domain would boot twice)
	cp -a /etc/libvirt/*.conf "$d/etc/"
	mkdir -p "$d/etc/qemu"
	# a fresh state tree: domains of the machine's own libvirtd are not this host's
	mkdir -p "$d"/lib/qemu "$d"/lib/images "$d"/lib/boot
	chown libvirt-qemu:libvirt-qemu "$d"/lib/qemu 2>/dev/null || true
	chmod 0750 "$d"/lib/qemu
	# QEMU's capabilities: probing them again costs a few seconds per start
	[ ! -d /var/cache/libvirt/qemu ] || cp -a /var/cache/libvirt/qemu "$d/cache/"
	cat >>"$d/etc/libvirtd.conf" <<CONF

# ---- vscale peers.sh: host $1 ----
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
listen_tls = 0
listen_tcp = 1
listen_addr = "$2"
auth_tcp = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
	cat >>"$d/etc/qemu.conf" <<CONF

# ---- vscale peers.sh: host $1 ----
cgroup_controllers = [ ]
migration_address = "$2"
migration_host = "$2"
CONF
}

# A process that holds a new mount + network namespace with the private directories mounted.
peers_holder() { # NAME -> prints the holder's pid
	local d=$PEERS_DIR/$1
	# shellcheck disable=SC2016 # $1 is the inner shell's
	unshare --mount --net --propagation private -- /bin/sh -c '
		set -e
		mount --bind "$1/run" /run/libvirt
		mount --bind "$1/lib" /var/lib/libvirt
		mount --bind "$1/etc" /etc/libvirt
		mount --bind "$1/log" /var/log/libvirt
		mount --bind "$1/cache" /var/cache/libvirt
		ip link set lo up
		touch "$1/ready"
		trap "" INT TERM HUP # a Ctrl-C of the test must not end it before the teardown
		exec sleep infinity' peers-holder "$d" >"$d/holder.log" 2>&1 &
	echo $!
}

peers_wait_file() { # PATH TENTHS
	local i
	for ((i = 0; i < $2; i++)); do
		[ ! -e "$1" ] || return 0
		sleep 0.1
	done
	return 1
}

peers_daemons() { # NAME
	local d=$PEERS_DIR/$1 h=$1 t0 i
	peers_in "$h" virtlogd -d -p "$d/virtlogd.pid" || return 1
	peers_in "$h" libvirtd -d -l -p "$d/libvirtd.pid" || return 1
	t0=$(date +%s%3N)
	for ((i = 0; i < 300; i++)); do
		if peers_virsh "$h" version >/dev/null 2>&1; then
			peers_log "host $h: libvirtd answers after $(($(date +%s%3N) - t0)) ms"
			return 0
		fi
		sleep 0.1
	done
	peers_log "host $h: libvirtd does not answer (see $d/log/libvirtd.log)"
	return 1
}

peers_up() {
	local n
	if [ "$(id -u)" -ne 0 ]; then
		peers_log "skipped: needs root (namespaces, libvirtd)"
		exit 77
	fi
	for n in unshare nsenter ip libvirtd virtlogd virsh; do
		command -v "$n" >/dev/null || {
			peers_log "skipped: $n not found (scripts/deps.sh installs it)"
			exit 77
		}
	done
	if ! unshare --mount --net --propagation private true 2>/dev/null; then
		peers_log "skipped: cannot create mount and network namespaces here"
		exit 77
	fi
	peers_sweep
	PEERS_DIR=$(mktemp -d /tmp/vscale-peers.XXXXXX)
	chmod 0755 "$PEERS_DIR"
	echo $$ >"$PEERS_DIR/owner"
	PEERS_IP_A=$PEERS_NET.1
	PEERS_IP_B=$PEERS_NET.2
	peers_prepare a "$PEERS_IP_A"
	peers_prepare b "$PEERS_IP_B"
	PEERS_PID_A=$(peers_holder a)
	PEERS_PID_B=$(peers_holder b)
	echo "$PEERS_PID_A" >"$PEERS_DIR/a/holder.pid"
	echo "$PEERS_PID_B" >"$PEERS_DIR/b/holder.pid"
	if ! peers_wait_file "$PEERS_DIR/a/ready" 50 || ! peers_wait_file "$PEERS_DIR/b/ready" 50; then
		peers_log "namespace set-up failed: $(cat "$PEERS_DIR"/?/holder.log)"
		return 1
	fi
	# the teardown finds what runs in them by these, also when a holder is gone
	readlink "/proc/$PEERS_PID_A/ns/net" >"$PEERS_DIR/a/netns"
	readlink "/proc/$PEERS_PID_B/ns/net" >"$PEERS_DIR/b/netns"
	# both ends made straight inside the namespaces: the machine's own network never sees them
	if ! ip link add vscpeer-a netns "$PEERS_PID_A" type veth peer name vscpeer-b \
		netns "$PEERS_PID_B" 2>"$PEERS_DIR/veth.log"; then
		peers_log "skipped: no veth pair: $(cat "$PEERS_DIR/veth.log")"
		exit 77
	fi
	peers_in a ip addr add "$PEERS_IP_A/24" dev vscpeer-a
	peers_in a ip link set vscpeer-a up
	peers_in b ip addr add "$PEERS_IP_B/24" dev vscpeer-b
	peers_in b ip link set vscpeer-b up
	if ! peers_daemons a || ! peers_daemons b; then
		return 1
	fi
	PEERS_URI_A=qemu+tcp://$PEERS_IP_A/system
	PEERS_URI_B=qemu+tcp://$PEERS_IP_B/system
	PEERS_LOCAL_URI=qemu:///system
	export PEERS_DIR PEERS_PID_A PEERS_PID_B PEERS_IP_A PEERS_IP_B PEERS_URI_A PEERS_URI_B \
		PEERS_LOCAL_URI
	# each reaches the other by its URI: what hostd and a migration need
	if ! peers_in a virsh -q -c "$PEERS_URI_B" uri >/dev/null ||
		! peers_in b virsh -q -c "$PEERS_URI_A" uri >/dev/null; then
		peers_log "the hosts cannot reach each other's libvirtd over TCP"
		return 1
	fi
	peers_log "host a: $PEERS_URI_A, host b: $PEERS_URI_B (state in $PEERS_DIR)"
}

# The pids of every process in a host's network namespace: ours alone, since we made it.
peers_ns_pids() { # HOST_DIR
	local ns p
	ns=$(cat "$1/netns" 2>/dev/null) || return 0
	[ -n "$ns" ] || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
	done
}

peers_down_host() { # HOST_DIR
	local d=$1 holder dom f pid i
	holder=$(cat "$d/holder.pid" 2>/dev/null) || holder=""
	if [ -n "$holder" ] && [ -d "/proc/$holder" ]; then
		for dom in $(nsenter -t "$holder" -m -n virsh -q -c qemu:///system list --name 2>/dev/null); do
			nsenter -t "$holder" -m -n virsh -q -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
		done
	fi
	for f in libvirtd virtlogd; do
		pid=$(cat "$d/$f.pid" 2>/dev/null) || continue
		kill "$pid" 2>/dev/null || continue
		for ((i = 0; i < 50; i++)); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
	done
	# anything left (a QEMU libvirtd could not stop, a hostd of the test), the holder last
	for pid in $(peers_ns_pids "$d"); do
		kill -9 "$pid" 2>/dev/null || true
	done
	[ -z "$holder" ] || kill -9 "$holder" 2>/dev/null || true
}

peers_teardown() { # DIR KEEP
	peers_down_host "$1/a"
	peers_down_host "$1/b"
	if [ "$2" = 1 ]; then
		peers_log "kept $1"
	else
		rm -rf "$1"
	fi
}

# Hosts left by a run that was killed outright (SIGKILL, a CI timeout: no trap ran).
peers_sweep() {
	local d owner
	for d in /tmp/vscale-peers.*; do
		[ -d "$d" ] || continue
		owner=$(cat "$d/owner" 2>/dev/null) || owner=""
		[ -z "$owner" ] || [ ! -d "/proc/$owner" ] || continue
		peers_log "removing the hosts left by an earlier run in $d"
		peers_teardown "$d" 0
	done
}

peers_down() {
	[ -n "$PEERS_DIR" ] && [ -d "$PEERS_DIR" ] || return 0
	peers_teardown "$PEERS_DIR" "${VSCALE_E2E_KEEP:-0}"
	wait "${PEERS_PID_A:-}" "${PEERS_PID_B:-}" 2>/dev/null || true
	PEERS_DIR=""
}

# executed rather than sourced
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	trap peers_down EXIT
	trap 'exit 130' INT TERM
	peers_up
	echo "PEERS_URI_A=$PEERS_URI_A"
	echo "PEERS_URI_B=$PEERS_URI_B"
	echo "inside a host: nsenter -t $PEERS_PID_A -m -n (a), nsenter -t $PEERS_PID_B -m -n (b)"
	if [ $# -gt 0 ]; then
		set +e
		"$@"
		exit $?
	fi
	echo "up; Ctrl-C tears both hosts down"
	sleep infinity &
	wait $!
fi
