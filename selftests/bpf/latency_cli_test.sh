#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl latency without traffic: usage errors, nothing pinned yet,
# attach on a host where cgroup2 is not mounted (kmtlsctl mounts it on
# /run/kmtls/cgroup2), the pins, bpftool reading the maps by field name,
# attach again (settings only), another cgroup refused, USDT on a binary
# without the probes refused and on kmtlsd pinned per probe site, reset,
# detach. The handshakes themselves are hs_latency_test's. Prints KTAP.
#
# Everything runs in a private mount namespace: its own bpffs for the pins
# ($KMTLS_BPF_PIN_DIR), the cgroup2 mounts of the host hidden in it. The
# cgroups made here (empty: nothing runs in them) and the directories
# created on /run are removed at exit.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
PY=/usr/bin/python3

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
KMTLSCTL=$OUT/bin/kmtlsctl
KMTLSD=$OUT/bin/kmtlsd
NTESTS=9

if [ "${KMTLS_LAT_CLI_INNER:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ] || [ ! -x "$KMTLSCTL" ] || [ ! -x "$KMTLSD" ]; then
		echo "TAP version 13"
		echo "1..$NTESTS"
		for ((i = 1; i <= NTESTS; i++)); do
			echo "ok $i latency_cli # SKIP needs root and a build (make userspace)"
		done
		exit 0
	fi
	exec env KMTLS_LAT_CLI_INNER=1 unshare -m --propagation private "$0" "$@"
fi

PRIV=/run/kmtls/cgroup2
TMP=
CG1=kmtls-cli-$$-a
CG2=kmtls-cli-$$-b
MADE_RUN=
testno=0
failures=0

cleanup() {
	[ -n "$TMP" ] && "$KMTLSCTL" latency detach > /dev/null 2>&1
	rmdir "$PRIV/$CG1" "$PRIV/$CG2" 2>/dev/null
	umount "$PRIV" 2>/dev/null
	# Only what this run created on the host's /run.
	for d in $MADE_RUN; do rmdir "$d" 2>/dev/null; done
	if [ -n "$TMP" ]; then
		umount "$TMP/bpffs" 2>/dev/null
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

ctl() { "$KMTLSCTL" "$@"; }

jget() {
	"$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict, bool)) or v is None else v)' "$1" "$2"
}

expect() {
	[ "$2" = "$3" ] && return 0
	echo "$1: got '$2', expected '$3'"
	return 1
}

# rc_of CMD...: the exit status, output discarded.
rc_of() { "$@" > /dev/null 2>&1; echo $?; }

# ---- cases ---------------------------------------------------------------------

t_usage() {
	expect "unknown command" "$(rc_of ctl latency bogus)" 2 &&
	expect "--interval x" "$(rc_of ctl latency --interval x)" 2 &&
	expect "--count without --interval" "$(rc_of ctl latency --count 2)" 2 &&
	expect "--port 0" "$(rc_of ctl latency --port 0)" 2 &&
	expect "attach --ports 0" "$(rc_of ctl latency attach --ports 0)" 2 &&
	expect "attach --ports with 17 ports" \
		"$(rc_of ctl latency attach --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17)" 2 &&
	expect "--help" "$(rc_of ctl latency --help)" 0
}

t_nothing_pinned() {
	local out rc
	out=$(ctl --json latency 2>/dev/null)
	rc=$?
	expect "latency before attach" "$rc" 1 || return 1
	[[ "$(jget "$out" error)" == *"latency attach"* ]] ||
		{ echo "error does not say what to do: $out"; return 1; }
	out=$(ctl --json latency status) || return 1
	expect loaded "$(jget "$out" loaded)" false &&
	expect "detach before attach" "$(rc_of ctl latency detach)" 1
}

t_mounts_cgroup2() {
	local out d
	# Hide every cgroup2 mount of the host in this namespace.
	while read -r _ d t _; do
		[ "$t" = cgroup2 ] && umount "$d"
	done < <(tac /proc/self/mounts)
	grep -q ' cgroup2 ' /proc/self/mounts && { echo "could not hide cgroup2"; return 1; }
	# The cgroup does not exist yet: kmtlsctl mounts the hierarchy, then fails.
	out=$(ctl latency attach --cgroup "$CG1" --ports 8443 2>&1)
	expect "attach to a missing cgroup" "$?" 1 || return 1
	echo "$out"
	expect "cgroup2 mounted on $PRIV" "$(stat -f -c %T "$PRIV")" cgroup2fs || return 1
	mkdir "$PRIV/$CG1" "$PRIV/$CG2" || return 1
	out=$(ctl --json latency attach --cgroup "$CG1" --ports 8443) || { echo "$out"; return 1; }
	expect cgroup "$(jget "$out" cgroup)" "$PRIV/$CG1" &&
	expect already "$(jget "$out" already_attached)" false &&
	expect ports "$(jget "$out" config.ports)" "[8443]"
}

t_pins() {
	local f j
	for f in hs_config hs_sk hs_pending hs_hist hs_stats hs_events hs_link_sockops \
		 hs_link_setsockopt; do
		[ -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "missing pin $f"; return 1; }
	done
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hs_config") || return 1
	expect "hs_config ports (by field name)" \
		"$(jget "$j" 0.formatted.value.ports | cut -c1-7)" "[8443,0" &&
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hs_stats") &&
	expect "hs_stats.tracked" "$(jget "$j" 0.formatted.values.0.value.tracked)" 0 &&
	j=$(bpftool -j link show pinned "$KMTLS_BPF_PIN_DIR/hs_link_sockops") &&
	expect "sockops link type" "$(jget "$j" type)" cgroup
}

t_attach_again() {
	local j
	j=$(ctl --json latency attach --cgroup "$PRIV/$CG1" --ports all --active-ports 443,8443) ||
		{ echo "$j"; return 1; }
	expect already "$(jget "$j" already_attached)" true &&
	expect ports "$(jget "$j" config.ports)" all &&
	expect active "$(jget "$j" config.active_ports)" "[443,8443]" &&
	expect "another cgroup" "$(rc_of ctl latency attach --cgroup "$CG2")" 1
}

t_usdt() {
	local j n
	expect "--usdt on a binary without the probes" "$(rc_of ctl latency attach \
		--cgroup "$CG1" --usdt /bin/true)" 1 || return 1
	n=$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)
	expect "USDT pins after the failure" "$n" 0 || return 1
	j=$(ctl --json latency attach --cgroup "$CG1" --usdt "$KMTLSD") || { echo "$j"; return 1; }
	n=$(readelf -n "$KMTLSD" | grep -c 'Name: handshake_done')
	expect "USDT links (probe sites of handshake_done)" "$(jget "$j" usdt_links)" "$n" &&
	expect "USDT pins" "$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" "$n" &&
	j=$(ctl --json latency status) &&
	expect "status usdt" "$(jget "$j" usdt)" "$KMTLSD" || return 1
	# Again: replaced, not doubled.
	j=$(ctl --json latency attach --cgroup "$CG1" --usdt "$KMTLSD") &&
	expect "USDT pins after a second attach" \
		"$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" "$n"
}

t_show_empty() {
	local j
	j=$(ctl --json latency) || return 1
	expect ports "$(jget "$j" ports)" "[]" &&
	expect "ok total" "$(jget "$j" totals.ok)" 0 &&
	ctl latency | grep -q "no handshakes"
}

t_reset_detach() {
	local j f
	ctl latency reset > /dev/null || return 1
	j=$(ctl --json latency detach) || return 1
	expect detached "$(jget "$j" detached)" true || return 1
	for f in hs_link_sockops hs_link_setsockopt; do
		[ ! -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "$f left behind"; return 1; }
	done
	expect "USDT pins after detach" \
		"$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" 0 &&
	[ -e "$KMTLS_BPF_PIN_DIR/hs_hist" ] || { echo "maps gone after detach"; return 1; }
	j=$(ctl --json latency status) &&
	expect attached "$(jget "$j" attached)" false &&
	expect "settings kept" "$(jget "$j" config.active_ports)" "[443,8443]"
}

# ---- main ----------------------------------------------------------------------

echo "TAP version 13"
echo "1..$NTESTS"
# Cgroups of a killed earlier run (empty, their shell gone): remove them.
for d in $(awk '$3 == "cgroup2" { print $2 }' /proc/self/mounts) /run/kmtls/cgroup2; do
	for c in "$d"/kmtls-cli-*-[ab]; do
		[ -d "$c" ] || continue
		p=${c##*/kmtls-cli-}
		kill -0 "${p%-*}" 2>/dev/null || rmdir "$c" 2>/dev/null
	done
done
TMP=$(mktemp -d /tmp/kmtls-latcli.XXXXXX)
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs" || { echo "not ok 1 latency_cli.setup: cannot mount bpffs"; exit 1; }
export KMTLS_BPF_PIN_DIR=$TMP/bpffs/kmtls
# What kmtlsctl will create on the host's /run, innermost first.
for d in /run/kmtls /run/kmtls/cgroup2; do
	[ -d "$d" ] || MADE_RUN="$d $MADE_RUN"
done

case_ latency_cli.usage_errors t_usage
case_ latency_cli.nothing_pinned t_nothing_pinned
case_ latency_cli.mounts_cgroup2_when_missing t_mounts_cgroup2
case_ latency_cli.pins_and_btf t_pins
case_ latency_cli.attach_again_and_another_cgroup t_attach_again
case_ latency_cli.usdt_attach t_usdt
case_ latency_cli.show_with_no_handshakes t_show_empty
case_ latency_cli.reset_and_detach t_reset_detach
case_ latency_cli.cgroups_removable rmdir "$PRIV/$CG1" "$PRIV/$CG2"

[ "$failures" -eq 0 ]
