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
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
PY=/usr/bin/python3

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
KMTLSCTL=$OUT/bin/kmtlsctl
XDP_PASS=$OUT/bpf/xdp_pass.bpf.o

NS=kmtls-ctl-$$
IF_A=kctla$$
IF_B=kctlb$$
TMP=
testno=0
failures=0
NTESTS=13

cleanup() {
	ip netns del "$NS" 2>/dev/null
	if [ -n "$TMP" ]; then
		umount "$TMP/bpffs" 2>/dev/null
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '# %s\n' "$*"; }

# case NAME FUNC: FUNC's output is the diagnostics; 0 is ok.
case_() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	testno=$((testno + 1))
	if [ "$rc" -eq 0 ]; then
		echo "ok $testno $name"
	else
		failures=$((failures + 1))
		echo "not ok $testno $name"
	fi
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
	return 0
}

ctl() { nsenter --net="/run/netns/$NS" "$KMTLSCTL" "$@"; }

# jget JSON PATH: one value ("a.b.0.c") from a JSON document.
jget() {
	"$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)' "$1" "$2"
}

# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] && return 0
	echo "$1: got '$2', expected '$3'"
	return 1
}

xdp_prog_on() { ip -n "$NS" -d link show dev "$1" | sed -n 's/.*prog\/xdp id [0-9]* name \([^ ]*\).*/\1/p'; }

# ---- cases ---------------------------------------------------------------------

t_status_empty() {
	local j
	j=$(ctl --json ratelimit status) || return 1
	expect loaded "$(jget "$j" loaded)" false
}

t_attach() {
	local j f
	j=$(ctl --json ratelimit attach "$IF_A") || { echo "$j"; return 1; }
	expect iface "$(jget "$j" iface)" "$IF_A" &&
	expect already "$(jget "$j" already_attached)" false &&
	expect "XDP program on $IF_A" "$(xdp_prog_on "$IF_A")" hello_limit || return 1
	for f in hl_config hl_stats hl_sources hl_global hl_allow hello_limit "hl_link_$IF_A"; do
		[ -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "missing pin $f"; return 1; }
	done
	echo "mode $(jget "$j" mode), prog $(jget "$j" prog_id), link $(jget "$j" link_id)"
}

t_attach_again() {
	local j
	j=$(ctl --json ratelimit attach "$IF_A") || return 1
	expect already "$(jget "$j" already_attached)" true
}

t_bpftool_reads_btf() {
	local j
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_config") || return 1
	expect "hl_config rate" "$(jget "$j" 0.formatted.value.rate)" 20 &&
	expect "hl_config ports" "$(jget "$j" 0.formatted.value.ports | tr -d ' ' | cut -c1-15)" "[443,8443,6443," &&
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_stats") &&
	expect "hl_stats has named counters" "$(jget "$j" 0.formatted.values.0.value.over_source)" 0
}

t_foreign_refused() {
	local out rc
	ip -n "$NS" link set dev "$IF_B" xdpgeneric obj "$XDP_PASS" sec xdp || return 1
	out=$(ctl --json ratelimit attach "$IF_B" 2>/dev/null)
	rc=$?
	expect "exit status" "$rc" 1 &&
	expect "program still on $IF_B" "$(xdp_prog_on "$IF_B")" xdp_pass || return 1
	echo "$(jget "$out" error)"
	[[ "$(jget "$out" error)" == *--force* ]]
}

t_foreign_forced() {
	ctl ratelimit attach "$IF_B" --force --mode skb || return 1
	expect "program on $IF_B" "$(xdp_prog_on "$IF_B")" hello_limit &&
	expect mode "$(jget "$(ctl --json ratelimit status)" attached | grep -o '"skb"')" '"skb"'
}

# An XDP link from someone else (here: another pin directory) is foreign
# too; --force detaches that link.
t_foreign_link_forced() {
	local rc
	ctl ratelimit detach "$IF_A" > /dev/null || return 1
	KMTLS_BPF_PIN_DIR=$TMP/bpffs/other ctl ratelimit attach "$IF_A" > /dev/null || return 1
	ctl ratelimit attach "$IF_A" > /dev/null 2>&1
	rc=$?
	expect "attach over another owner's link" "$rc" 1 || return 1
	ctl ratelimit attach "$IF_A" --force || return 1
	[ -e "$TMP/bpffs/other/hl_link_$IF_A" ] && KMTLS_BPF_PIN_DIR=$TMP/bpffs/other \
		ctl --json ratelimit status | grep -q '"mode":"detached"' ||
		{ echo "the other owner's link was not detached"; return 1; }
	KMTLS_BPF_PIN_DIR=$TMP/bpffs/other ctl ratelimit detach "$IF_A" > /dev/null
}

t_set() {
	local j rc
	j=$(ctl --json ratelimit set --rate 5 --burst 9 --global-rate 300 --mode monitor \
		--prefix6 56 --ports 443,9443) || return 1
	expect rate "$(jget "$j" rate)" 5 && expect burst "$(jget "$j" burst)" 9 &&
	expect global_burst "$(jget "$j" global_burst)" 300 &&
	expect mode "$(jget "$j" mode)" monitor && expect prefix6 "$(jget "$j" prefix6)" 56 &&
	expect ports "$(jget "$j" ports | tr -d ' ')" "[443,9443]" || return 1
	ctl ratelimit set --burst 0 > /dev/null 2>&1
	rc=$?
	expect "exit status of --burst 0" "$rc" 2 || return 1
	ctl ratelimit set --mode panic > /dev/null 2>&1
	rc=$?
	expect "exit status of --mode panic" "$rc" 2 || return 1
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hl_config") &&
	expect "interval_ns in the map" "$(jget "$j" 0.formatted.value.interval_ns)" 200000000
}

t_allow() {
	local j rc
	ctl ratelimit allow add 192.0.2.77/24 > /dev/null &&
	ctl ratelimit allow add 2001:db8:aa::1/48 > /dev/null &&
	ctl ratelimit allow add 198.51.100.9 > /dev/null || return 1
	j=$(ctl --json ratelimit allow list) || return 1
	expect allowlist "$(jget "$j" allowlist | tr -d ' ')" \
		'["192.0.2.0/24","198.51.100.9/32","2001:db8:aa::/48"]' || return 1
	ctl ratelimit allow del 198.51.100.9/32 > /dev/null || return 1
	ctl ratelimit allow del 198.51.100.9/32 > /dev/null 2>&1
	rc=$?
	expect "deleting a missing prefix" "$rc" 1 || return 1
	ctl ratelimit allow add 300.1.1.1/8 > /dev/null 2>&1
	rc=$?
	expect "a bad prefix" "$rc" 2
}

t_config_survives() {
	local j
	ctl ratelimit detach "$IF_A" > /dev/null && ctl ratelimit detach "$IF_B" > /dev/null || return 1
	expect "XDP left on $IF_A" "$(xdp_prog_on "$IF_A")" "" || return 1
	[ ! -e "$KMTLS_BPF_PIN_DIR/hello_limit" ] || { echo "program pin left behind"; return 1; }
	[ -e "$KMTLS_BPF_PIN_DIR/hl_config" ] || { echo "maps gone after detach"; return 1; }
	ctl ratelimit attach "$IF_A" > /dev/null || return 1
	j=$(ctl --json ratelimit status) || return 1
	expect "rate after re-attach" "$(jget "$j" config.rate)" 5 &&
	expect "mode after re-attach" "$(jget "$j" config.mode)" monitor &&
	expect "allowlist after re-attach" "$(jget "$j" allowlist | tr -d ' ')" \
		'["192.0.2.0/24","2001:db8:aa::/48"]' &&
	ctl ratelimit detach "$IF_A" > /dev/null
}

t_errors() {
	local rc out
	ctl ratelimit attach nosuchif0 > /dev/null 2>&1
	rc=$?
	expect "attach to a missing interface" "$rc" 1 || return 1
	ctl ratelimit detach "$IF_A" > /dev/null 2>&1
	rc=$?
	expect "detach when not attached" "$rc" 1 || return 1
	out=$(ctl --json nosuchverb 2>/dev/null)
	rc=$?
	expect "an unknown verb" "$rc" 2 &&
	expect "unknown verb error" "$(jget "$out" error)" "kmtlsctl: unknown verb 'nosuchverb'"
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
		"$1" --json ratelimit status | grep -q "\"rate\":3"' _ "$KMTLSCTL"
}

# ---- main ----------------------------------------------------------------------

echo "TAP version 13"
echo "1..$NTESTS"
if [ "$(id -u)" != 0 ] || [ ! -x "$KMTLSCTL" ] || [ ! -e "$XDP_PASS" ]; then
	for ((i = 1; i <= NTESTS; i++)); do
		echo "ok $i kmtlsctl # SKIP needs root and a build (make userspace)"
	done
	exit 0
fi
TMP=$(mktemp -d /tmp/kmtls-ctl.XXXXXX)
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs" || { echo "not ok 1 kmtlsctl.setup: cannot mount bpffs"; exit 1; }
export KMTLS_BPF_PIN_DIR=$TMP/bpffs/kmtls
ip netns add "$NS" &&
ip -n "$NS" link add "$IF_A" type veth peer name "$IF_B" &&
ip -n "$NS" link set "$IF_A" up && ip -n "$NS" link set "$IF_B" up ||
	{ echo "not ok 1 kmtlsctl.setup: cannot make the veth pair"; exit 1; }

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
case_ kmtlsctl.interfaces_clean expect "XDP on $IF_A $IF_B" "$(xdp_prog_on "$IF_A")$(xdp_prog_on "$IF_B")" ""

[ "$failures" -eq 0 ]
