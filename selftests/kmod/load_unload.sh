#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtls.ko foundation: load, per-netns state, unload. Prints KTAP.
#
# Runs as root inside a guest (tools/vm/kmtls-vm), which normally has loaded
# build/kmod/$(uname -r)/kmtls.ko already; the module is inserted here if not.
# The script unloads and reloads the module, and leaves it loaded when done.
#
#   KMTLS_KMOD   path of kmtls.ko (default: $KMTLS_BUILD/kmod/<release>/kmtls.ko)
#   KMTLS_BUILD  build directory (default: <repo>/build)
set -u

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${KMTLS_BUILD:-$TOP/build}
KO=${KMTLS_KMOD:-$BUILD/kmod/$(uname -r)/kmtls.ko}
LOOPS=20

DEV=/dev/kmtls
STAT=/proc/net/kmtls_stat
SYSCTL_DIR=/proc/sys/net/kmtls
COUNTERS="Submitted Accepted Completed Failed FailedAuth FailedConn FailedProto FailedOther TimedOut NoAgent QueueFull Cancelled AgentLost PendingNow InFlightNow"
# name default min max
SYSCTLS="handshake_timeout_ms 10000 100 600000
max_pending 128 1 65536
agent_wait_ms 5000 0 600000"

# Kernel messages that mean something went wrong.
BAD_DMESG='BUG:|WARNING:|Oops|general protection|Call Trace|kmemleak|memory leak|refcount_t:|UBSAN|KASAN|list_(add|del) corruption|sysctl.*(duplicate|failed)|proc_dir_entry .* already registered|remove_proc_entry|unregister_netdevice: waiting|kmtls: initialization failed'

NTESTS=19
# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

# result NAME CMD...: ok when CMD succeeds; CMD's output becomes diagnostics.
result() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name"
	fi
	[ -n "$out" ] && printf '%s\n' "$out" | diag
	return 0
}

# ---- helpers ---------------------------------------------------------------

loaded() { [ -d /sys/module/kmtls ]; }

load() {
	loaded && return 0
	[ -f "$KO" ] || { echo "$KO not found (make modules)"; return 1; }
	insmod "$KO"
}

unload() {
	loaded || return 0
	rmmod kmtls
}

# Print every problem with STAT (in the current netns); silent when the
# counters are exactly COUNTERS, in order, all 0.
check_stat() {
	local names values bad=0

	[ -r "$STAT" ] || { echo "$STAT missing"; return 1; }
	names=$(awk '{ print $1 }' "$STAT" | xargs)
	values=$(awk '{ print $2 }' "$STAT" | sort -u | xargs)
	if [ "$names" != "$COUNTERS" ]; then
		echo "counters: '$names', expected '$COUNTERS'"
		bad=1
	fi
	if [ "$values" != 0 ]; then
		echo "values not all 0:"
		cat "$STAT"
		bad=1
	fi
	awk 'NF != 2 { print "malformed line: " $0; bad = 1 } END { exit bad }' "$STAT" || bad=1
	return $bad
}

# check_defaults: every sysctl holds its default (in the current netns).
check_defaults() {
	local name def min max val bad=0

	while read -r name def min max; do
		if ! val=$(cat "$SYSCTL_DIR/$name" 2>&1); then
			echo "$SYSCTL_DIR/$name: $val"
			bad=1
		elif [ "$val" != "$def" ]; then
			echo "$name = $val, expected $def"
			bad=1
		fi
	done <<< "$SYSCTLS"
	return $bad
}

# write_sysctl NAME VALUE: status of the write itself (echo is a builtin, so
# the write(2) error is the shell's).
write_sysctl() {
	( echo "$2" > "$SYSCTL_DIR/$1" ) 2>/dev/null
}

# check_range NAME DEF MIN MAX: bounds accepted, values outside refused and
# left without effect; restores DEF.
check_range() {
	local name=$1 def=$2 min=$3 max=$4 v bad=0

	for v in "$min" "$max" "$def"; do
		if ! write_sysctl "$name" "$v"; then
			echo "$name: writing $v (in range) failed"
			bad=1
		elif [ "$(cat "$SYSCTL_DIR/$name")" != "$v" ]; then
			echo "$name: wrote $v, reads $(cat "$SYSCTL_DIR/$name")"
			bad=1
		fi
	done
	for v in $((min - 1)) $((max + 1)) 4294967296 -1 abc; do
		# -1 is in range nowhere: min is >= 0 for every sysctl here
		if write_sysctl "$name" "$v"; then
			echo "$name: writing $v (out of range) succeeded"
			bad=1
		fi
		if [ "$(cat "$SYSCTL_DIR/$name")" != "$def" ]; then
			echo "$name: after writing $v reads $(cat "$SYSCTL_DIR/$name"), expected $def"
			bad=1
		fi
	done
	write_sysctl "$name" "$def"
	return $bad
}

# An ioctl the module does not know must fail with ENOTTY; TCGETS too (so
# isatty() is false), and both from a read-only and a read-write open.
check_enotty() {
	python3 - "$DEV" <<-'EOF'
	import errno, fcntl, os, sys
	bad = 0
	for mode in (os.O_RDONLY, os.O_RDWR):
	    fd = os.open(sys.argv[1], mode)
	    for cmd in (0xEEEE, 0x5401, 0xC0104B01):
	        try:
	            fcntl.ioctl(fd, cmd, bytes(16))
	            print("ioctl %#x: succeeded" % cmd)
	            bad = 1
	        except OSError as e:
	            if e.errno != errno.ENOTTY:
	                print("ioctl %#x: %s, expected ENOTTY" % (cmd, os.strerror(e.errno)))
	                bad = 1
	    if os.isatty(fd):
	        print("isatty() is true")
	        bad = 1
	    os.close(fd)
	sys.exit(bad)
	EOF
}

check_dev() {
	local st

	[ -c "$DEV" ] || { echo "$DEV is not a character device"; ls -l "$DEV"; return 1; }
	st=$(stat -c %a "$DEV")
	[ "$st" = 666 ] || { echo "$DEV mode $st, expected 666"; return 1; }
	[ -e /sys/class/misc/kmtls ] || { echo "/sys/class/misc/kmtls missing"; return 1; }
}

check_open() {
	exec 3<> "$DEV" || return 1
	exec 3>&-
	# A user other than root may open it too (mode 0666).
	if command -v setpriv > /dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			sh -c "exec 3<> $DEV" || { echo "open as nobody failed"; return 1; }
	fi
}

# While /dev/kmtls is open the module must stay.
check_busy() {
	local rc=0

	exec 3<> "$DEV" || return 1
	if rmmod kmtls 2>/dev/null; then
		echo "rmmod succeeded with $DEV open"
		rc=1
	fi
	exec 3>&-
	loaded || { echo "module gone"; return 1; }
	return $rc
}

# A new namespace has its own stat file and sysctls, starting from the
# defaults whatever the parent holds, and writes do not cross.
check_netns_stat() {
	unshare -n bash -c "$(declare -f check_stat); STAT=$STAT COUNTERS='$COUNTERS'; check_stat"
}

check_netns_sysctls() {
	local bad=0 child

	write_sysctl handshake_timeout_ms 20000 || { echo "cannot set handshake_timeout_ms"; return 1; }
	child=$(unshare -n bash -c "
		$(declare -f check_defaults write_sysctl)
		SYSCTL_DIR=$SYSCTL_DIR; SYSCTLS='$SYSCTLS'
		check_defaults || exit 1
		write_sysctl handshake_timeout_ms 3000 || { echo 'child: write failed'; exit 1; }
		write_sysctl max_pending 7 || { echo 'child: write failed'; exit 1; }
		echo \$(cat $SYSCTL_DIR/handshake_timeout_ms) \$(cat $SYSCTL_DIR/max_pending)
		exec 3<> $DEV || exit 1
	" 2>&1) || { echo "$child"; bad=1; }
	[ "$bad" = 0 ] && [ "$child" != "3000 7" ] && { echo "child reads '$child', expected '3000 7'"; bad=1; }
	[ "$(cat $SYSCTL_DIR/handshake_timeout_ms)" = 20000 ] ||
		{ echo "parent handshake_timeout_ms changed to $(cat $SYSCTL_DIR/handshake_timeout_ms)"; bad=1; }
	[ "$(cat $SYSCTL_DIR/max_pending)" = 128 ] ||
		{ echo "parent max_pending changed to $(cat $SYSCTL_DIR/max_pending)"; bad=1; }
	write_sysctl handshake_timeout_ms 10000
	return $bad
}

check_gone() {
	local p bad=0

	for p in /sys/module/kmtls "$DEV" /sys/class/misc/kmtls "$STAT" "$SYSCTL_DIR"; do
		[ -e "$p" ] && { echo "$p still exists"; bad=1; }
	done
	grep -qw kmtls /proc/modules && { echo "kmtls still in /proc/modules"; bad=1; }
	return $bad
}

# One load/unload round with the module in use in between: the device opened
# from two namespaces, the counters read, a namespace created and destroyed.
cycle() {
	load || { echo "round $1: insmod failed"; return 1; }
	exec 3<> "$DEV" || { echo "round $1: open failed"; return 1; }
	check_stat > /dev/null || { echo "round $1: bad $STAT"; return 1; }
	unshare -n bash -c "cat $STAT > /dev/null && cat $SYSCTL_DIR/max_pending > /dev/null && exec 4<> $DEV" ||
		{ echo "round $1: netns check failed"; return 1; }
	exec 3>&-
	unload || { echo "round $1: rmmod failed"; return 1; }
	check_gone > /dev/null || { echo "round $1: leftovers after rmmod"; check_gone; return 1; }
}

check_loop() {
	local i

	for i in $(seq 1 $LOOPS); do
		cycle "$i" || return 1
	done
}

# Live net_namespace objects, if that cache is not merged into another one.
# SLUB counts the free objects of per-cpu slabs as in use: shrink first.
netns_objects() {
	echo 1 > /sys/kernel/slab/net_namespace/shrink 2>/dev/null
	awk '$1 == "net_namespace" { print $2 }' /proc/slabinfo 2>/dev/null
}

# Namespaces die asynchronously (cleanup_net); wait until the count is back
# near what it was. Every round of the loop took a namespace reference through
# /dev/kmtls, so a leak leaves at least LOOPS namespaces behind; a couple may
# still be on their way out.
check_netns_freed() {
	local base=$1 now i

	for i in $(seq 1 50); do
		now=$(netns_objects)
		[ -n "$now" ] && [ "$now" -le $((base + 2)) ] && return 0
		sleep 0.2
	done
	echo "net_namespace objects: $base before, $now after"
	return 1
}

check_dmesg() {
	local new old

	new=$(dmesg | sed -n "/$MARK/,\$p" | grep -E "$BAD_DMESG")
	# Before the mark: only trouble that names kmtls (its first insmod).
	old=$(dmesg | sed -n "/$MARK/q;p" | grep -E "$BAD_DMESG" | grep -i kmtls)
	[ -z "$new$old" ] && return 0
	printf '%s\n' "$new" "$old" | grep -v '^$' | head -n 20
	return 1
}

check_kmemleak() {
	echo scan > /sys/kernel/debug/kmemleak || return 1
	if grep -q . /sys/kernel/debug/kmemleak; then
		head -n 40 /sys/kernel/debug/kmemleak
		return 1
	fi
}

# ---- tests -----------------------------------------------------------------

ktap_plan "$NTESTS"

if [ "$(id -u)" != 0 ]; then
	for i in $(seq 1 $NTESTS); do
		skip "test_$i" "needs root (run in the guest: tools/vm/kmtls-vm)"
	done
	exit 0
fi

MARK="kmtls-selftest-load_unload-$$-$(date +%s)"
echo "$MARK" > /dev/kmsg 2>/dev/null || true
WAS_LOADED=0
loaded && WAS_LOADED=1
echo "# kernel $(uname -r), module $KO, loaded at start: $WAS_LOADED"

if loaded; then
	ok module_loaded
else
	result module_loaded load
fi
if ! loaded; then
	echo "Bail out! kmtls is not loaded"
	exit 1
fi

result dev_node check_dev
result dev_open check_open
if command -v python3 > /dev/null; then
	result dev_unknown_ioctl_enotty check_enotty
else
	skip dev_unknown_ioctl_enotty "python3 not found"
fi
result stat_counters_zero check_stat
result sysctl_defaults check_defaults
while read -r name def min max; do
	result "sysctl_range_$name" check_range "$name" "$def" "$min" "$max"
done <<< "$SYSCTLS"

netns_base=$(netns_objects)
result netns_own_stat check_netns_stat
result netns_own_sysctls check_netns_sysctls
result rmmod_busy_while_open check_busy
result rmmod unload
result gone_after_rmmod check_gone
result load_unload_loop_$LOOPS check_loop
if [ -n "$netns_base" ]; then
	result netns_freed check_netns_freed "$netns_base"
else
	skip netns_freed "no net_namespace cache in /proc/slabinfo (merged)"
fi
result dmesg_clean check_dmesg
if [ -w /sys/kernel/debug/kmemleak ]; then
	result kmemleak_clean check_kmemleak
else
	skip kmemleak_clean "kernel without CONFIG_DEBUG_KMEMLEAK"
fi

# Leave the module as found.
if [ "$WAS_LOADED" = 1 ]; then
	result reload load
else
	skip reload "module was not loaded at start"
fi

[ "$testno" = "$NTESTS" ] || echo "# ran $testno tests, planned $NTESTS"
echo "# $failures failed"
[ "$failures" = 0 ]
