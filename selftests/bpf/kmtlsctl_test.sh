#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl ratelimit against real interfaces and pins: attach/detach on a
# veth pair in a network namespace made here, a foreign XDP program that is
# only replaced with --force, set/allow/status with --json, configuration
# that outlives every attachment, bpftool reading the pinned maps by field
# name, and bpffs mounted on /sys/fs/bpf when it is missing (checked in a
# private mount namespace). No traffic is sent. Prints KTAP.
#
# Pins go to a bpffs mounted for this run ($KMTLS_BPF_PIN_DIR), never to
# /sys/fs/bpf/kmtls; the namespace, the mount and the directory go at exit.
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

XDP_PASS=$OUT/bpf/xdp_pass.bpf.o

NS=kmtls-ctl-$$
IF_A=kctla$$
IF_B=kctlb$$
NTESTS=13

cleanup() {
	netns_del "$NS"
	tmp_cleanup
}
cleanup_on_exit

ctl() { nsenter --net="/run/netns/$NS" "$KMTLSCTL" "$@"; }

xdp_prog_on() { ip -n "$NS" -d link show dev "$1" | sed -n 's/.*prog\/xdp id [0-9]* name \([^ ]*\).*/\1/p'; }

# ---- cases ---------------------------------------------------------------------

t_status_empty() {
	local j
	j=$(ctl --json ratelimit status) || return 1
	expect_eq loaded "$(jget "$j" loaded)" false
}

t_attach() {
	local j f
	j=$(ctl --json ratelimit attach "$IF_A") || { echo "$j"; return 1; }
	expect_eq iface "$(jget "$j" iface)" "$IF_A" &&
	expect_eq already "$(jget "$j" already_attached)" false &&
	expect_eq "XDP program on $IF_A" "$(xdp_prog_on "$IF_A")" hello_limit || return 1
	for f in hl_config hl_stats hl_sources hl_global hl_allow hello_limit "hl_link_$IF_A"; do
		[ -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "missing pin $f"; return 1; }
	done
	echo "mode $(jget "$j" mode), prog $(jget "$j" prog_id), link $(jget "$j" link_id)"
}

t_attach_again() {
	local j
	j=$(ctl --json ratelimit attach "$IF_A") || return 1
	expect_eq already "$(jget "$j" already_attached)" true
}

t_bpftool_reads_btf() {
	local j
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_config") || return 1
	expect_eq "hl_config rate" "$(jget "$j" 0.formatted.value.rate)" 20 &&
	expect_eq "hl_config ports" "$(jget "$j" 0.formatted.value.ports | tr -d ' ' | cut -c1-15)" "[443,8443,6443," &&
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_stats") &&
	expect_eq "hl_stats has named counters" "$(jget "$j" 0.formatted.values.0.value.over_source)" 0
}

t_foreign_refused() {
	local out rc
	ip -n "$NS" link set dev "$IF_B" xdpgeneric obj "$XDP_PASS" sec xdp || return 1
	out=$(ctl --json ratelimit attach "$IF_B" 2>/dev/null)
	rc=$?
	expect_eq "exit status" "$rc" 1 &&
	expect_eq "program still on $IF_B" "$(xdp_prog_on "$IF_B")" xdp_pass || return 1
	echo "$(jget "$out" error)"
	[[ "$(jget "$out" error)" == *--force* ]]
}

t_foreign_forced() {
	ctl ratelimit attach "$IF_B" --force --mode skb || return 1
	expect_eq "program on $IF_B" "$(xdp_prog_on "$IF_B")" hello_limit &&
	expect_eq mode "$(jget "$(ctl --json ratelimit status)" attached | grep -o '"skb"')" '"skb"'
}

# An XDP link from someone else (here: another pin directory) is foreign
# too; --force detaches that link.
t_foreign_link_forced() {
	local rc
	ctl ratelimit detach "$IF_A" > /dev/null || return 1
	KMTLS_BPF_PIN_DIR=$TMP/bpffs/other ctl ratelimit attach "$IF_A" > /dev/null || return 1
	ctl ratelimit attach "$IF_A" > /dev/null 2>&1
	rc=$?
	expect_eq "attach over another owner's link" "$rc" 1 || return 1
	ctl ratelimit attach "$IF_A" --force || return 1
	[ -e "$TMP/bpffs/other/hl_link_$IF_A" ] && KMTLS_BPF_PIN_DIR=$TMP/bpffs/other \
		ctl --json ratelimit status | grep '"mode":"detached"' > /dev/null ||
		{ echo "the other owner's link was not detached"; return 1; }
	KMTLS_BPF_PIN_DIR=$TMP/bpffs/other ctl ratelimit detach "$IF_A" > /dev/null
}

t_set() {
	local j rc
	j=$(ctl --json ratelimit set --rate 5 --burst 9 --global-rate 300 --mode monitor \
		--prefix6 56 --ports 443,9443) || return 1
	expect_eq rate "$(jget "$j" rate)" 5 && expect_eq burst "$(jget "$j" burst)" 9 &&
	expect_eq global_burst "$(jget "$j" global_burst)" 300 &&
	expect_eq mode "$(jget "$j" mode)" monitor && expect_eq prefix6 "$(jget "$j" prefix6)" 56 &&
	expect_eq ports "$(jget "$j" ports | tr -d ' ')" "[443,9443]" || return 1
	ctl ratelimit set --burst 0 > /dev/null 2>&1
	rc=$?
	expect_eq "exit status of --burst 0" "$rc" 2 || return 1
	ctl ratelimit set --mode panic > /dev/null 2>&1
	rc=$?
	expect_eq "exit status of --mode panic" "$rc" 2 || return 1
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_config") &&
	expect_eq "interval_ns in the map" "$(jget "$j" 0.formatted.value.interval_ns)" 200000000
}

t_allow() {
	local j rc
	ctl ratelimit allow add 192.0.2.77/24 > /dev/null &&
	ctl ratelimit allow add 2001:db8:aa::1/48 > /dev/null &&
	ctl ratelimit allow add 198.51.100.9 > /dev/null || return 1
	j=$(ctl --json ratelimit allow list) || return 1
	expect_eq allowlist "$(jget "$j" allowlist | tr -d ' ')" \
		'["192.0.2.0/24","198.51.100.9/32","2001:db8:aa::/48"]' || return 1
	ctl ratelimit allow del 198.51.100.9/32 > /dev/null || return 1
	ctl ratelimit allow del 198.51.100.9/32 > /dev/null 2>&1
	rc=$?
	expect_eq "deleting a missing prefix" "$rc" 1 || return 1
	ctl ratelimit allow add 300.1.1.1/8 > /dev/null 2>&1
	rc=$?
	expect_eq "a bad prefix" "$rc" 2
}

t_config_survives() {
	local j
	ctl ratelimit detach "$IF_A" > /dev/null && ctl ratelimit detach "$IF_B" > /dev/null || return 1
	expect_eq "XDP left on $IF_A" "$(xdp_prog_on "$IF_A")" "" || return 1
	[ ! -e "$KMTLS_BPF_PIN_DIR/hello_limit" ] || { echo "program pin left behind"; return 1; }
	[ -e "$KMTLS_BPF_PIN_DIR/hl_config" ] || { echo "maps gone after detach"; return 1; }
	ctl ratelimit attach "$IF_A" > /dev/null || return 1
	j=$(ctl --json ratelimit status) || return 1
	expect_eq "rate after re-attach" "$(jget "$j" config.rate)" 5 &&
	expect_eq "mode after re-attach" "$(jget "$j" config.mode)" monitor &&
	expect_eq "allowlist after re-attach" "$(jget "$j" allowlist | tr -d ' ')" \
		'["192.0.2.0/24","2001:db8:aa::/48"]' &&
	ctl ratelimit detach "$IF_A" > /dev/null
}

t_errors() {
	local rc out
	ctl ratelimit attach nosuchif0 > /dev/null 2>&1
	rc=$?
	expect_eq "attach to a missing interface" "$rc" 1 || return 1
	ctl ratelimit detach "$IF_A" > /dev/null 2>&1
	rc=$?
	expect_eq "detach when not attached" "$rc" 1 || return 1
	out=$(ctl --json nosuchverb 2>/dev/null)
	rc=$?
	expect_eq "an unknown verb" "$rc" 2 &&
	expect_eq "unknown verb error" "$(jget "$out" error)" "kmtlsctl: unknown verb 'nosuchverb'"
}

t_mounts_bpffs() {
	# A private mount namespace without bpffs on /sys/fs/bpf: kmtlsctl
	# mounts it there itself (and it vanishes with the namespace).
	unshare -m --propagation private bash -c '
		umount /sys/fs/bpf 2>/dev/null
		unset KMTLS_BPF_PIN_DIR
		"$1" ratelimit set --rate 3 > /dev/null || exit 1
		[ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ] || { echo "no bpffs on /sys/fs/bpf"; exit 1; }
		[ -e /sys/fs/bpf/kmtls/hl_config ] || { echo "nothing pinned"; exit 1; }
		"$1" --json ratelimit status | grep "\"rate\":3" > /dev/null' _ "$KMTLSCTL"
}

# ---- main ----------------------------------------------------------------------

ktap_plan "$NTESTS"
if ! is_root || ! need_files -x "$KMTLSCTL" || ! need_files -e "$XDP_PASS"; then
	ktap_skip_rest kmtlsctl "needs root and a build (make userspace)"
	exit 0
fi
TMP=$(mktemp -d /tmp/kmtls-ctl.XXXXXX)
bpffs_mount "$TMP/bpffs" || { not_ok "kmtlsctl.setup: cannot mount bpffs"; ktap_exit; }
export KMTLS_BPF_PIN_DIR=$TMP/bpffs/kmtls
netns_add "$NS" && veth "$NS" "$IF_A" "$NS" "$IF_B" ||
	{ not_ok "kmtlsctl.setup: cannot make the veth pair"; ktap_exit; }

case_ kmtlsctl.status_before_anything t_status_empty
case_ kmtlsctl.attach_pins_everything t_attach
case_ kmtlsctl.attach_twice_is_a_no_op t_attach_again
case_ kmtlsctl.bpftool_dumps_maps_by_field t_bpftool_reads_btf
case_ kmtlsctl.foreign_xdp_program_refused t_foreign_refused
case_ kmtlsctl.foreign_xdp_program_replaced_with_force t_foreign_forced
case_ kmtlsctl.foreign_xdp_link_replaced_with_force t_foreign_link_forced
case_ kmtlsctl.set t_set
case_ kmtlsctl.allowlist t_allow
case_ kmtlsctl.config_survives_detach_and_reattach t_config_survives
case_ kmtlsctl.errors_and_unimplemented_verbs t_errors
case_ kmtlsctl.mounts_bpffs_when_missing t_mounts_bpffs
# Nothing of ours may be left on the interfaces.
case_ kmtlsctl.interfaces_clean expect_eq "XDP on $IF_A $IF_B" "$(xdp_prog_on "$IF_A")$(xdp_prog_on "$IF_B")" ""

[ "$failures" -eq 0 ]
