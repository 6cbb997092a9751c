# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Network namespaces, veth pairs and bpffs mounts of a shell selftest's own,
# sourced. Everything in a namespace made here is the test's: netns_kill
# may end it all.

# netns_add NS...: new network namespaces, loopback up.
netns_add() {
	local ns
	for ns in "$@"; do
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
	done
}

# veth NS_A IF_A NS_B IF_B: a veth pair from NS_A to NS_B (which may be the
# same namespace), both ends up.
veth() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" &&
		ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# netns_kill NS...: every process in those namespaces gets SIGTERM, then up
# to 10 s to exit before SIGKILL.
netns_kill() {
	local ns pids p
	for ns in "$@"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # one word per pid
		[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
	done
	for ns in "$@"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
			kill -KILL "$p" 2>/dev/null
		done
	done
}

# netns_del NS...: the namespaces, with the veth ends in them.
netns_del() {
	local ns
	for ns in "$@"; do
		ip netns del "$ns" 2>/dev/null
	done
}

# bpffs_mount DIR: a bpf filesystem of this run's own on DIR (procs.sh's
# tmp_cleanup unmounts $TMP/bpffs).
bpffs_mount() {
	mkdir -p "$1" && mount -t bpf bpf "$1"
}
