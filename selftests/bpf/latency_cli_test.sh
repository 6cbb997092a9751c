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

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

NTESTS=10

if [ "${KMTLS_LAT_CLI_INNER:-}" != 1 ]; then
	if ! is_root || ! need_files -x "$KMTLSCTL" "$KMTLSD"; then
		ktap_plan "$NTESTS"
		ktap_skip_rest latency_cli "needs root and a build (make userspace)"
		exit 0
	fi
	exec env KMTLS_LAT_CLI_INNER=1 unshare -m --propagation private "$0" "$@"
fi

PRIV=/run/kmtls/cgroup2
CG1=kmtls-cli-$$-a
CG2=kmtls-cli-$$-b
MADE_RUN=

cleanup() {
	[ -n "$TMP" ] && "$KMTLSCTL" latency detach > /dev/null 2>&1
	rmdir "$PRIV/$CG1" "$PRIV/$CG2" 2>/dev/null
	umount "$PRIV" 2>/dev/null
	# Only what this run created on the host's /run.
	for d in $MADE_RUN; do rmdir "$d" 2>/dev/null; done
	tmp_cleanup
}
cleanup_on_exit

ctl() { "$KMTLSCTL" "$@"; }

# rc_of CMD...: the exit status, output discarded.
rc_of() { "$@" > /dev/null 2>&1; echo $?; }

# ---- cases ---------------------------------------------------------------------

t_usage() {
	expect_eq "unknown command" "$(rc_of ctl latency bogus)" 2 &&
	expect_eq "--interval x" "$(rc_of ctl latency --interval x)" 2 &&
	expect_eq "--count without --interval" "$(rc_of ctl latency --count 2)" 2 &&
	expect_eq "--port 0" "$(rc_of ctl latency --port 0)" 2 &&
	# 2^32 + 1 must not wrap to port 1
	expect_eq "--port 4294967297" "$(rc_of ctl latency --port 4294967297)" 2 &&
	expect_eq "--events --port 4294967297" \
		"$(rc_of ctl latency --events --port 4294967297)" 2 &&
	expect_eq "--port ' 80'" "$(rc_of ctl latency --port ' 80')" 2 &&
	expect_eq "--events --duration inf" "$(rc_of ctl latency --events --duration inf)" 2 &&
	expect_eq "attach --ports 0" "$(rc_of ctl latency attach --ports 0)" 2 &&
	expect_eq "attach --ports with 17 ports" \
		"$(rc_of ctl latency attach --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17)" 2 &&
	expect_eq "--help" "$(rc_of ctl latency --help)" 0
}

t_nothing_pinned() {
	local out rc
	out=$(ctl --json latency 2>/dev/null)
	rc=$?
	expect_eq "latency before attach" "$rc" 1 || return 1
	[[ "$(jget "$out" error)" == *"latency attach"* ]] ||
		{ echo "error does not say what to do: $out"; return 1; }
	out=$(ctl --json latency status) || return 1
	expect_eq loaded "$(jget "$out" loaded)" false &&
	expect_eq "detach before attach" "$(rc_of ctl latency detach)" 1
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
	expect_eq "attach to a missing cgroup" "$?" 1 || return 1
	echo "$out"
	expect_eq "cgroup2 mounted on $PRIV" "$(stat -f -c %T "$PRIV")" cgroup2fs || return 1
	mkdir "$PRIV/$CG1" "$PRIV/$CG2" || return 1
	out=$(ctl --json latency attach --cgroup "$CG1" --ports 8443) || { echo "$out"; return 1; }
	expect_eq cgroup "$(jget "$out" cgroup)" "$PRIV/$CG1" &&
	expect_eq already "$(jget "$out" already_attached)" false &&
	expect_eq ports "$(jget "$out" config.ports)" "[8443]"
}

t_pins() {
	local f j
	for f in hs_config hs_conns hs_addrs hs_hist hs_hist_rows hs_hist_rowkey hs_hist_rowix \
		 hs_stats hs_events hs_link_sockops \
		 hs_link_setsockopt hs_link_release; do
		[ -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "missing pin $f"; return 1; }
	done
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hs_config") || return 1
	expect_eq "hs_config ports (by field name)" \
		"$(jget "$j" 0.formatted.value.ports | cut -c1-7)" "[8443,0" &&
	j=$(bpftool -j map dump pinned "$KMTLS_BPF_PIN_DIR/hs_stats") &&
	expect_eq "hs_stats.tracked" "$(jget "$j" 0.formatted.values.0.value.stats.tracked)" 0 &&
	j=$(bpftool -j link show pinned "$KMTLS_BPF_PIN_DIR/hs_link_sockops") &&
	expect_eq "sockops link type" "$(jget "$j" type)" cgroup &&
	j=$(bpftool -j link show pinned "$KMTLS_BPF_PIN_DIR/hs_link_release") &&
	expect_eq "release link type" "$(jget "$j" type)" cgroup
}

t_attach_again() {
	local j
	j=$(ctl --json latency attach --cgroup "$PRIV/$CG1" --ports all --active-ports 443,8443) ||
		{ echo "$j"; return 1; }
	expect_eq already "$(jget "$j" already_attached)" true &&
	expect_eq ports "$(jget "$j" config.ports)" all &&
	expect_eq active "$(jget "$j" config.active_ports)" "[443,8443]" &&
	expect_eq "another cgroup" "$(rc_of ctl latency attach --cgroup "$CG2")" 1
}

t_usdt() {
	local j n
	expect_eq "--usdt on a binary without the probes" "$(rc_of ctl latency attach \
		--cgroup "$CG1" --usdt /bin/true)" 1 || return 1
	n=$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)
	expect_eq "USDT pins after the failure" "$n" 0 || return 1
	j=$(ctl --json latency attach --cgroup "$CG1" --usdt "$KMTLSD") || { echo "$j"; return 1; }
	n=$(readelf -n "$KMTLSD" | grep -c 'Name: handshake_done')
	expect_eq "USDT links (probe sites of handshake_done)" "$(jget "$j" usdt_links)" "$n" &&
	expect_eq "USDT pins" "$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" "$n" &&
	j=$(ctl --json latency status) &&
	expect_eq "status usdt" "$(jget "$j" usdt)" "$KMTLSD" || return 1
	# Again: replaced, not doubled.
	j=$(ctl --json latency attach --cgroup "$CG1" --usdt "$KMTLSD") &&
	expect_eq "USDT pins after a second attach" \
		"$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" "$n"
}

t_show_empty() {
	local j
	j=$(ctl --json latency) || return 1
	expect_eq ports "$(jget "$j" ports)" "[]" &&
	expect_eq "ok total" "$(jget "$j" totals.ok)" 0 &&
	ctl latency | grep "no handshakes" > /dev/null
}

t_reset_detach() {
	local j f
	ctl latency reset > /dev/null || return 1
	j=$(ctl --json latency detach) || return 1
	expect_eq detached "$(jget "$j" detached)" true || return 1
	for f in hs_link_sockops hs_link_setsockopt hs_link_release; do
		[ ! -e "$KMTLS_BPF_PIN_DIR/$f" ] || { echo "$f left behind"; return 1; }
	done
	expect_eq "USDT pins after detach" \
		"$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_usdt_*' | wc -l)" 0 &&
	[ -e "$KMTLS_BPF_PIN_DIR/hs_hist" ] || { echo "maps gone after detach"; return 1; }
	j=$(ctl --json latency status) &&
	expect_eq attached "$(jget "$j" attached)" false &&
	expect_eq "settings kept" "$(jget "$j" config.active_ports)" "[443,8443]"
}

# A configuration pinned by another version: attach refuses it and says so,
# and leaves it as it was.
t_foreign_version() {
	local m=$KMTLS_BPF_PIN_DIR/hs_config val out rc
	val=$(bpftool -j map lookup pinned "$m" key 0 0 0 0 |
	      "$PY" -c 'import json, sys; print(" ".join(json.load(sys.stdin)["value"]))') || return 1
	# shellcheck disable=SC2086 # one word per byte
	bpftool map update pinned "$m" key 0 0 0 0 value 0x63 ${val#* } || return 1
	out=$(ctl latency attach --cgroup "$CG1" 2>&1)
	rc=$?
	echo "$out"
	# shellcheck disable=SC2086
	bpftool map update pinned "$m" key 0 0 0 0 value $val || return 1
	expect_eq "attach with version 99 pinned" "$rc" 1 &&
	case $out in
	*"hs_config: configuration from another kmtls version"*) ;;
	*) echo "the reason is not given"; return 1 ;;
	esac &&
	expect_eq "nothing attached" "$(find "$KMTLS_BPF_PIN_DIR" -name 'hs_link_*' | wc -l)" 0
}

# ---- main ----------------------------------------------------------------------

ktap_plan "$NTESTS"
# Cgroups of a killed earlier run (empty, their shell gone): remove them.
for d in $(awk '$3 == "cgroup2" { print $2 }' /proc/self/mounts) /run/kmtls/cgroup2; do
	for c in "$d"/kmtls-cli-*-[ab]; do
		[ -d "$c" ] || continue
		p=${c##*/kmtls-cli-}
		kill -0 "${p%-*}" 2>/dev/null || rmdir "$c" 2>/dev/null
	done
done
TMP=$(mktemp -d /tmp/kmtls-latcli.XXXXXX)
bpffs_mount "$TMP/bpffs" || { not_ok "latency_cli.setup: cannot mount bpffs"; ktap_exit; }
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
case_ latency_cli.foreign_config_version t_foreign_version
case_ latency_cli.cgroups_removable rmdir "$PRIV/$CG1" "$PRIV/$CG2"

[ "$failures" -eq 0 ]
