#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Conditions are eval'd strings, single-quoted on purpose:
# shellcheck disable=SC2016
#
# tools/vm/kmtls-vm: boot, plumbing and module loading. Prints KTAP and exits
# non-zero when a case fails. Runs on the host (it starts the guests).
#
# One guest on 6.12 answers most cases at once: its command prints key=value
# facts on stdout, one marker line on stderr, logs a kernel error message to
# prove that kernel output stays out of both, and exits 3. A guest on 6.1
# checks boot and release, and a third one the timeout.
#
# kmtls.ko is asserted loaded when build/kmod/<release>/kmtls.ko exists;
# otherwise the guests boot with --no-kmod and that case is skipped.
#
#   KMTLS_BUILD  build directory (default: <repo>/build)
set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD=$(realpath -m "${KMTLS_BUILD:-$TOP/build}")
VM=$TOP/tools/vm/kmtls-vm
NTESTS=13

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

# check NAME CONDITION-CMD... : ok when the command succeeds.
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name" "${DIAG:-}"; fi
	DIAG=
}

# ---- helpers ---------------------------------------------------------------

release_of() { cat "$BUILD/kernel-$1" 2>/dev/null; }

# --no-kmod unless the module for that release has been built.
kmod_built() { [ -f "$BUILD/kmod/$1/kmtls.ko" ]; }

# fact NAME: the value the 6.12 guest printed as NAME=value.
fact() { sed -n "s/^$1=//p" "$TMP/a.out" | head -n1; }

# The script the main 6.12 guest runs. KMTLS_VM_TEST_* comes through the
# environment pass-through; the guest may not load dummy before the test.
guest_facts_script() {
	cat <<-'EOF'
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
	echo "uname=$(uname -r)"
	echo "pwd=$(pwd -P)"
	echo "var=$KMTLS_VM_TEST_VAR"
	echo "<3>kmtls vm_runner: kernel message that must stay on the console" > /dev/kmsg
	echo "stderr-marker" >&2
	if echo written > "$KMTLS_VM_TEST_FILE"; then echo "build_rw=yes"; else echo "build_rw=no"; fi
	if touch /kmtls-vm-ro-probe 2>/dev/null; then echo "root_ro=no"; else echo "root_ro=yes"; fi
	if grep -q '^dummy ' /proc/modules; then
		echo "dummy=preloaded"
	elif ip link add kmtlsvm0 type dummy 2>/dev/null && grep -q '^dummy ' /proc/modules; then
		echo "dummy=autoloaded"
	else
		echo "dummy=failed"
	fi
	if [ -e /proc/net/tls_stat ]; then echo "tls=yes"; else echo "tls=no"; fi
	if [ -d /sys/module/kmtls ]; then echo "kmtls=yes"; else echo "kmtls=no"; fi
	if [ -d /sys/fs/bpf ] && grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then echo "bpffs=yes"; else echo "bpffs=no"; fi
	# Fresh: a writable tmpfs that does not show the host's /tmp (a repo
	# under /tmp is overlaid read-only by the runner, so not "empty").
	if [ -w /tmp ] && [ "$(stat -f -c %T /tmp)" = tmpfs ] && [ ! -e "$KMTLS_VM_TEST_HOSTTMP" ]; then
		echo "tmp=fresh"
	else
		echo "tmp=other"
	fi
	exit 3
	EOF
}

# ---- cases -----------------------------------------------------------------

main_612() {
	local rel rc=0 want_var probe
	local -a kmod=()
	rel=$(release_of 6.12)
	kmod_built "$rel" || kmod=(--no-kmod)
	want_var="a b 'c' \$d \"e\""
	probe=$BUILD/vm/selftest-probe-$$
	mkdir -p "$BUILD/vm"
	rm -f "$probe"

	KMTLS_VM_TEST_VAR=$want_var KMTLS_VM_TEST_FILE=$probe KMTLS_VM_TEST_HOSTTMP=$TMP \
		"$VM" run --kernel 6.12 "${kmod[@]}" -- bash -c "$(guest_facts_script)" \
		> "$TMP/a.out" 2> "$TMP/a.err" || rc=$?

	DIAG="release $(fact uname), want $rel"
	check "6.12: uname -r in the guest is $rel" [ "$(fact uname)" = "$rel" ]

	DIAG="exit status $rc, want 3; stderr: $(tail -n 5 "$TMP/a.err")"
	check "6.12: exit status propagated" [ "$rc" = 3 ]

	DIAG=$(printf 'stdout:\n%s\nstderr:\n%s' "$(cat "$TMP/a.out")" "$(cat "$TMP/a.err")")
	check "6.12: stdout and stderr separate, no kernel messages" \
		eval '! grep -qv "^[a-z_]*=" "$TMP/a.out" && [ "$(cat "$TMP/a.err")" = stderr-marker ]'

	DIAG="pwd '$(fact pwd)' want '$(pwd -P)'; var '$(fact var)' want '$want_var'"
	check "6.12: cwd and KMTLS_ variables passed through" \
		eval '[ "$(fact pwd)" = "$(pwd -P)" ] && [ "$(fact var)" = "$want_var" ]'

	DIAG="build_rw=$(fact build_rw) root_ro=$(fact root_ro) host sees '$(cat "$probe" 2>/dev/null)'"
	check "6.12: build dir read-write, host root read-only" \
		eval '[ "$(fact build_rw)" = yes ] && [ "$(fact root_ro)" = yes ] && [ "$(cat "$probe" 2>/dev/null)" = written ]'
	rm -f "$probe"

	DIAG="dummy=$(fact dummy)"
	check "6.12: request_module forwarded (dummy link auto-loads)" [ "$(fact dummy)" = autoloaded ]

	DIAG="tls=$(fact tls)"
	check "6.12: tls module loaded (/proc/net/tls_stat)" [ "$(fact tls)" = yes ]

	DIAG="bpffs=$(fact bpffs) tmp=$(fact tmp)"
	check "6.12: bpffs mounted, /tmp fresh" \
		eval '[ "$(fact bpffs)" = yes ] && [ "$(fact tmp)" = fresh ]'

	if [ ${#kmod[@]} -gt 0 ]; then
		skip "6.12: kmtls.ko loaded" "build/kmod/$rel/kmtls.ko not built"
	else
		DIAG="kmtls=$(fact kmtls)"
		check "6.12: kmtls.ko loaded (/sys/module/kmtls)" [ "$(fact kmtls)" = yes ]
	fi
}

main_61() {
	local rel rc=0 script
	local -a kmod=()
	rel=$(release_of 6.1)
	if [ -z "$rel" ]; then
		skip "6.1: boots, uname -r, tls loaded" "build/kernel-6.1 missing (make deps)"
		skip "6.1: kmtls.ko loaded" "build/kernel-6.1 missing (make deps)"
		skip "6.1: --debug, --append" "build/kernel-6.1 missing (make deps)"
		return
	fi
	kmod_built "$rel" || kmod=(--no-kmod)
	script='echo "$(uname -r)"; [ -e /proc/net/tls_stat ] && echo tls; [ -d /sys/module/kmtls ] && echo kmtls
		grep -qw kmtls_vm_probe=1 /proc/cmdline && echo appended
		[ "$(cat /sys/kernel/slab/kmalloc-64/sanity_checks)" = 1 ] && echo slub_debug; exit 0'
	"$VM" run --kernel 6.1 "${kmod[@]}" --debug --append kmtls_vm_probe=1 -- sh -c "$script" \
		> "$TMP/b.out" 2> "$TMP/b.err" || rc=$?

	DIAG=$(printf 'exit %s, stdout:\n%s\nstderr:\n%s' "$rc" "$(cat "$TMP/b.out")" "$(tail -n 20 "$TMP/b.err")")
	check "6.1: boots, uname -r is $rel, tls loaded" \
		eval '[ "$rc" = 0 ] && [ "$(head -n1 "$TMP/b.out")" = "$rel" ] && grep -qx tls "$TMP/b.out"'

	if [ ${#kmod[@]} -gt 0 ]; then
		skip "6.1: kmtls.ko loaded" "build/kmod/$rel/kmtls.ko not built"
	else
		check "6.1: kmtls.ko loaded (/sys/module/kmtls)" grep -qx kmtls "$TMP/b.out"
	fi

	check "6.1: --debug turns SLUB debugging on, --append reaches the kernel" \
		eval 'grep -qx slub_debug "$TMP/b.out" && grep -qx appended "$TMP/b.out"'
}

timeout_case() {
	local rc=0
	"$VM" run --no-kmod --timeout 2 -- sleep 600 > "$TMP/c.out" 2> "$TMP/c.err" || rc=$?
	DIAG=$(printf 'exit %s, stderr:\n%s' "$rc" "$(tail -n 5 "$TMP/c.err")")
	check "--timeout kills the guest: exit 124 and a message" \
		eval '[ "$rc" = 124 ] && grep -q "guest timed out after 2 s" "$TMP/c.err"'
}

main() {
	ktap_plan "$NTESTS"
	if ! command -v qemu-system-x86_64 >/dev/null || [ -z "$(release_of 6.12)" ]; then
		local n why="qemu-system-x86_64 or build/kernel-6.12 missing (make deps)"
		for n in $(seq "$NTESTS"); do skip "vm runner case $n" "$why"; done
		exit 4        # kselftest: skipped
	fi
	main_612
	main_61
	timeout_case
	echo "# $((testno - failures)) passed, $failures failed"
	[ "$failures" = 0 ]
}

main "$@"
