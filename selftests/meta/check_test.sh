#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The cases run through run_case; the stubs' and fake tests' $ are theirs:
# shellcheck disable=SC2317,SC2016
#
# scripts/check.sh and scripts/run-tests.sh (what `make check` runs) against
# fake tests, in a copy of both scripts under a temporary directory: a bad
# selftests/TESTS line, a test that reports fewer results than it planned,
# one that skips everything with exit 4, Ctrl-C and SIGTERM while a test
# hangs, a guest that dies in the middle of its group. The guest is a stub
# kmtls-vm that runs the command on the host in a session of its own and
# kills that session when its --timeout is up, as QEMU's end would. Also
# ktap.sh's ktap_exit against its plan. Prints KTAP.
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-check-test.XXXXXX") || exit 1
TREE=$TMP/tree
export CHECK_TEST_MARK=$TMP/mark
HANG_PID=

# end_hang: a hanging test that check.sh failed to stop must not outlive
# its case.
end_hang() {
	[ -n "$HANG_PID" ] && kill -KILL "$HANG_PID" 2>/dev/null
	HANG_PID=
}

cleanup_check_test() {
	end_hang
	rm -rf "$TMP"
}
trap cleanup_check_test EXIT

# fake NAME BODY: selftests/t/NAME, a /bin/sh script.
fake() {
	printf '#!/bin/sh\n%s\n' "$2" > "$TREE/selftests/t/$1"
	chmod +x "$TREE/selftests/t/$1"
}

make_tree() {
	mkdir -p "$TREE/scripts" "$TREE/selftests/lib" "$TREE/selftests/t" "$TREE/tools/vm"
	cp "$TOP/scripts/check.sh" "$TOP/scripts/run-tests.sh" "$TREE/scripts/"
	cp "$TOP/selftests/lib/ktap.sh" "$TREE/selftests/lib/"
	printf '#!/bin/sh\nmkdir -p "$1"\n' > "$TREE/selftests/lib/mkpki.sh"
	chmod +x "$TREE/selftests/lib/mkpki.sh"

	# kmtls-vm run [--kernel K] [--debug] [--timeout S] -- CMD...
	cat > "$TREE/tools/vm/kmtls-vm" <<-'EOF'
	#!/bin/bash
	t=900
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--kernel) shift 2 ;;
		--timeout) t=$2; shift 2 ;;
		--) shift; break ;;
		-*) shift ;;
		*) break ;;
		esac
	done
	echo "guest=$t test=${KMTLS_TEST_TIMEOUT:-unset}" >> "$CHECK_TEST_MARK/vm-args"
	setsid "$@" < /dev/null &
	guest=$!
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$guest" 2>/dev/null || { wait "$guest"; exit; }
		sleep 0.1
	done
	pkill -KILL -s "$guest"
	echo "kmtls-vm: guest timed out after $t s" >&2
	exit 124
	EOF
	chmod +x "$TREE/tools/vm/kmtls-vm"

	fake ok.sh 'echo 1..1; echo "ok 1 fine"'
	fake ok2.sh 'echo 1..1; echo "ok 1 fine too"'
	fake after.sh 'echo 1..1; echo "ok 1 after"'
	fake short.sh 'echo 1..3; echo "ok 1 a"; exit 0'
	fake skip4.sh 'echo 1..2; echo "ok 1 a # SKIP no such thing"; echo "ok 2 b # SKIP no such thing"; exit 4'
	fake hang.sh 'echo 1..1; echo $$ > "$CHECK_TEST_MARK/hang.pid"; exec sleep 1000'
	fake ktap_short.sh '. "$(dirname "$0")/../lib/ktap.sh"; ktap_plan 3; ok a; ktap_exit'
}

# run_check TESTS-LINES... : check.sh all with that selftests/TESTS, in the
# background when BG is set (its pid in CHECK_PID, a process group of its own).
run_check() {
	printf '%s\n' "$@" > "$TREE/selftests/TESTS"
	end_hang
	rm -rf "$CHECK_TEST_MARK"
	mkdir -p "$CHECK_TEST_MARK"
	local -a cmd=(env -u KMTLS_TEST_TIMEOUT -u KMTLS_VM_TIMEOUT -u KMTLS_VM_TEST_TIMEOUT
		BUILD="$TREE/build" KMTLS_OUT="$TREE/build/out" "${CHECK_ENV[@]}"
		timeout 60 "$TREE/scripts/check.sh" all)
	if [ -n "${BG:-}" ]; then
		set -m
		"${cmd[@]}" > "$TMP/out" 2>&1 &
		CHECK_PID=$!
		set +m
		return 0
	fi
	"${cmd[@]}" > "$TMP/out" 2>&1
	CHECK_RC=$?
}
CHECK_ENV=()

said() {
	echo "check.sh said (exit status ${CHECK_RC:-?}):"
	sed 's/^/  /' "$TMP/out"
}

# expect_summary LINE: check.sh's last line.
expect_summary() {
	expect_eq "summary" "$(tail -n1 "$TMP/out")" "$1" || { said; return 1; }
}

# expect_said PATTERN: check.sh's output has a line matching PATTERN (grep -E).
expect_said() {
	grep -qE -- "$1" "$TMP/out" || { echo "no line matches: $1"; said; return 1; }
}

case_unknown_where() {
	run_check "host t/ok.sh" "Host t/ok2.sh" "vm-6.12 t/after.sh"
	expect_summary "1 passed, 2 failed, 0 skipped" &&
		expect_said "selftests/TESTS line 2: unknown where 'Host'" &&
		expect_said "selftests/TESTS line 3: unknown where 'vm-6.12'"
}

case_duplicate() {
	run_check "host t/ok.sh" "vm:fake t/ok.sh" "host t/ok.sh"
	expect_summary "2 passed, 1 failed, 0 skipped" &&
		expect_said "selftests/TESTS line 3: 'host t/ok.sh' repeats line 1"
}

case_plan() {
	run_check "host t/short.sh"
	expect_summary "1 passed, 2 failed, 0 skipped" &&
		expect_said "^not ok .*t/short.sh: planned 3, reported 1"
}

case_skip4() {
	run_check "host t/skip4.sh"
	expect_summary "0 passed, 0 failed, 2 skipped" &&
		expect_eq "check.sh exit status" "$CHECK_RC" 0
}

case_ktap_exit() {
	local rc=0
	"$TREE/selftests/t/ktap_short.sh" > "$TMP/ktap.out" 2>&1 || rc=$?
	if [ "$rc" = 0 ] || ! grep -q "^# planned 3, reported 1" "$TMP/ktap.out"; then
		echo "exit status $rc, want non-zero and '# planned 3, reported 1'; said:"
		cat "$TMP/ktap.out"
		return 1
	fi
}

# wait_hang: until the hanging test has started; its pid in HANG_PID.
wait_hang() {
	local i
	for ((i = 0; i < 100; i++)); do
		HANG_PID=$(cat "$CHECK_TEST_MARK/hang.pid" 2>/dev/null)
		[ -n "$HANG_PID" ] && return 0
		sleep 0.05
	done
	echo "the hanging test did not start"
	said
	return 1
}

# interrupt SIGNAL [group]: check.sh stopped (its process group with group)
# while t/hang.sh runs must stop it, not run t/ok.sh, and exit non-zero
# within 5 s.
interrupt() {
	local i
	BG=1 run_check "host t/hang.sh" "host t/ok.sh"
	wait_hang || return 1
	set -- "-$1" "${2:+-}$CHECK_PID"
	kill "$1" -- "$2"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$CHECK_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$CHECK_PID" 2>/dev/null; then
		echo "check.sh still running 5 s after kill $*"
		kill -KILL -- "-$CHECK_PID" 2>/dev/null
	fi
	wait "$CHECK_PID"
	CHECK_RC=$?
	for ((i = 0; i < 40; i++)); do
		alive "$HANG_PID" || break
		sleep 0.05
	done
	if alive "$HANG_PID"; then
		echo "the hanging test (pid $HANG_PID) is still running after kill $*"
		said
		return 1
	fi
	[ "$CHECK_RC" != 0 ] || { echo "check.sh exited 0"; said; return 1; }
	[ ! -e "$TREE/build/check/host/t.ok.sh.rc" ] || { echo "t/ok.sh ran after the interrupt"; said; return 1; }
}

case_sigterm() { interrupt TERM; }

# Ctrl-C: SIGINT to the whole foreground process group.
case_ctrl_c() { interrupt INT group; }

case_guest_dies() {
	CHECK_ENV=(KMTLS_VM_TIMEOUT=2 KMTLS_VM_TEST_TIMEOUT=30)
	run_check "vm:fake t/ok.sh" "vm:fake t/hang.sh" "vm:fake t/after.sh"
	CHECK_ENV=()
	HANG_PID=$(cat "$CHECK_TEST_MARK/hang.pid" 2>/dev/null)
	if [ -n "$HANG_PID" ] && alive "$HANG_PID"; then
		echo "t/hang.sh (pid $HANG_PID) outlived its guest"
		return 1
	fi
	expect_summary "1 passed, 3 failed, 0 skipped" &&
		expect_said "^not ok .*t/hang.sh: planned 1, reported 0; the guest timed out after 2 s while it ran" &&
		expect_said "^not ok .*t/after.sh: never ran: the guest timed out after 2 s before it"
}

# A hung test in a guest ends at its own timeout, and the rest of the group
# still has time to run.
case_guest_timeouts() {
	local guest test
	run_check "vm:fake t/ok.sh"
	guest=$(sed -n 's/^guest=\([0-9]*\) .*/\1/p' "$CHECK_TEST_MARK/vm-args" 2>/dev/null)
	test=$(sed -n 's/.* test=\([0-9]*\)$/\1/p' "$CHECK_TEST_MARK/vm-args" 2>/dev/null)
	if [ -z "$guest" ] || [ -z "$test" ] || [ "$test" -ge "$guest" ]; then
		echo "kmtls-vm got: $(cat "$CHECK_TEST_MARK/vm-args" 2>/dev/null); want a test timeout below the guest's"
		return 1
	fi
	echo "guest timeout $guest s, per test $test s"
}

# in_diag FUNC: FUNC's output is the case's diagnostics.
in_diag() { "$@" >> "$DIAG" 2>&1; }

DIAG=$TMP/diag
make_tree
ktap_plan 9
run_case "TESTS: an unknown where is a failure that names the line" in_diag case_unknown_where
run_case "TESTS: a repeated line is a failure that names both" in_diag case_duplicate
run_case "plan: results missing from a test's plan are failures" in_diag case_plan
run_case "exit 4 (skip) with only skipped results is no failure" in_diag case_skip4
run_case "ktap_exit: fewer results than planned is a failure" in_diag case_ktap_exit
run_case "SIGTERM to check.sh stops the running test" in_diag case_sigterm
run_case "Ctrl-C stops the running test" in_diag case_ctrl_c
run_case "a guest that dies: the running test and those after it are failures with the reason" in_diag case_guest_dies
run_case "guest: a test times out before the guest does" in_diag case_guest_timeouts
ktap_exit
