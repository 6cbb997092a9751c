#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check: check.sh all|host|vm [FILTER]
# Runs the tests listed in selftests/TESTS (host ones natively, vm ones in one
# guest boot per kernel), then prints every failure and one summary line
# "N passed, N failed, N skipped"; exits non-zero on any failure.
#
# A test fails with a "not ok", with fewer or more results than its plan
# (1..N) announced, or with a non-zero exit; exit 4 (kselftest's skip) with
# every result skipped is no failure. A line of selftests/TESTS that cannot
# run (unknown where, a repeated line) is a failure too.
#
#   KMTLS_TEST_TIMEOUT     seconds a host test may run (run-tests.sh; 1200)
#   KMTLS_VM_TEST_TIMEOUT  seconds a test may run in a guest (600)
#   KMTLS_VM_TIMEOUT       seconds a guest may run its whole group (1800):
#                          vm:6.12 takes ~460 s under TCG, a hung test 600 more
set -uo pipefail

MODE=${1:-all}
FILTER=${2:-}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
export KMTLS_OUT=${KMTLS_OUT:-$BUILD/out}
export KMTLS_BIN=$KMTLS_OUT/bin
export KMTLS_PKI=$BUILD/pki
export KMTLS_BUILD=$BUILD
RESULTS=$BUILD/check
VM_TEST_TIMEOUT=${KMTLS_VM_TEST_TIMEOUT:-600}
VM_TIMEOUT=${KMTLS_VM_TIMEOUT:-1800}
cd "$TOP" || exit 1

# The run-tests.sh or kmtls-vm running now. They run in the background, so
# that a signal reaches this script while it waits: Ctrl-C or SIGTERM stops
# them with SIGTERM (run-tests.sh then stops its test, whose process group
# the terminal's Ctrl-C does not reach; kmtls-vm its guest), then ends here.
child=
on_signal() {
	trap - INT TERM HUP
	echo "check: interrupted; stopping the tests that run" >&2
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child"
	fi
	exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# run CMD...: CMD in the background, waited for; its exit status.
run() {
	local rc
	"$@" &
	child=$!
	wait "$child"
	rc=$?
	child=
	return "$rc"
}

"$TOP/selftests/lib/mkpki.sh" "$KMTLS_PKI" || { echo "check: could not create the test PKI"; exit 1; }
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# result DIR NAME TEXT: a failure check.sh reports itself, for something that
# did not run: its "not ok" line says why; status 0, as no test exited.
result() {
	mkdir -p "$1"
	printf '1..1\nnot ok 1 %s\n' "$3" > "$1/$2.tap"
	echo 0 > "$1/$2.rc"
}

# bad_line N WHY: line N of selftests/TESTS cannot run; a failure, whatever
# the mode and filter, so that a typo does not drop a test unseen.
bad_line() { result "$RESULTS/TESTS" "line-$1" "selftests/TESTS line $1: $2"; }

declare -A vm_tests=() seen=() test_of=()
host_tests=()
n=0
while read -r where test rest; do
	n=$((n + 1))
	case "$where" in ''|'#'*) continue ;; esac
	if [ -z "$test" ] || [ -n "$rest" ]; then
		bad_line "$n" "want 'WHERE TEST', got '$where $test $rest'"
		continue
	fi
	if [ "$where" != host ] && ! [[ $where =~ ^vm:[^+]+(\+debug|\+asan)?$ ]]; then
		bad_line "$n" "unknown where '$where' (host, vm:SERIES, vm:SERIES+debug or vm:SERIES+asan)"
		continue
	fi
	# Both would write the same results, and one failure could hide.
	if [ -n "${seen[$where $test]:-}" ]; then
		bad_line "$n" "'$where $test' repeats line ${seen[$where $test]}"
		continue
	fi
	seen[$where $test]=$n
	test_of[${test//\//.}]=$test
	[ -n "$FILTER" ] && [[ "$test" != *$FILTER* ]] && continue
	case "$where" in
	host) [ "$MODE" != vm ] && host_tests+=("$test") ;;
	vm:*) [ "$MODE" != host ] && vm_tests[${where#vm:}]+="$test " ;;
	esac
done < selftests/TESTS

# guest_ended K RC TEST...: the guest of group K ended before its
# run-tests.sh did (timeout, panic, QEMU failure). The test it was running
# and those it never started are failures that say so.
guest_ended() {
	local k=$1 rc=$2 dir=$RESULTS/vm-$1 why t name
	shift 2
	case $rc in
	124) why="the guest timed out after $VM_TIMEOUT s" ;;
	125) why="the guest failed (kmtls-vm said why above)" ;;
	*) why="the guest ended with status $rc" ;;
	esac
	result "$dir" guest "guest $k: $why"
	for t in "$@"; do
		name=${t//\//.}
		[ -e "$dir/$name.rc" ] && continue
		if [ -e "$dir/$name.tap" ]; then
			echo "$why while it ran" > "$dir/$name.why"
			echo "$rc" > "$dir/$name.rc"
		else
			result "$dir" "$name" "$t: never ran: $why before it"
		fi
	done
}

if [ ${#host_tests[@]} -gt 0 ]; then
	echo "# host ($(uname -r))"
	run scripts/run-tests.sh "$RESULTS/host" "${host_tests[@]}"
fi
# vm:SERIES+debug: a guest of its own, booted with kmtls-vm --debug.
# vm:SERIES+asan: the ASan + UBSan build ($BUILD/asan, make SANITIZE=1).
# A test in a guest times out before the guest does, so that a hung one
# leaves the rest of its group time to run.
for k in "${!vm_tests[@]}"; do
	echo "# guest kernel $k"
	vm_opts=()
	out=$KMTLS_OUT
	[ "${k%+debug}" != "$k" ] && vm_opts=(--debug)
	[ "${k%+asan}" != "$k" ] && out=$BUILD/asan
	read -ra group <<< "${vm_tests[$k]}"
	KMTLS_OUT=$out KMTLS_BIN=$out/bin KMTLS_TEST_TIMEOUT=$VM_TEST_TIMEOUT \
		run tools/vm/kmtls-vm run --kernel "${k%+*}" --timeout "$VM_TIMEOUT" "${vm_opts[@]}" -- \
		scripts/run-tests.sh "$RESULTS/vm-$k" "${group[@]}"
	rc=$?
	[ $rc -eq 0 ] || guest_ended "$k" "$rc" "${group[@]}"
done

# exit_text RC: what a non-zero exit status says.
exit_text() {
	if [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
		echo "killed by SIG$(kill -l "$(($1 - 128))")"
	elif [ "$1" = 124 ]; then
		echo "timed out"
	else
		echo "exited with status $1"
	fi
}

pass=0 fail=0 skip=0
failed=()
for tap in "$RESULTS"/*/*.tap; do
	[ -e "$tap" ] || continue
	where=$(basename "$(dirname "$tap")")
	name=$(basename "$tap" .tap)
	p=$(grep -cE '^ok [0-9]+ ' "$tap")
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$tap")
	f=$(grep -cE '^not ok [0-9]+ ' "$tap")
	planned=$(sed -n '/^1\.\.[0-9]/{s/^1\.\.\([0-9]*\).*/\1/p;q}' "$tap")
	rc=$(cat "${tap%.tap}.rc" 2>/dev/null || echo 1)
	# Why it ended, when run-tests.sh (a timeout) or guest_ended knows.
	why=$(cat "${tap%.tap}.why" 2>/dev/null)
	said=()
	# A test that stops early (a crash, an exit, two lines run together)
	# loses results: each one its plan announced and it did not report is
	# a failure.
	if [ -z "$planned" ]; then
		said+=("no TAP plan (1..N)")
		f=$((f + 1))
	elif [ $((p + f)) -ne "$planned" ]; then
		said+=("planned $planned, reported $((p + f))")
		f=$((f + (planned > p + f ? planned - p - f : 1)))
	fi
	# kselftest's exit 4: the test skipped, which its results must say.
	if [ "$rc" = 4 ] && [ "$f" = 0 ] && [ "$s" -gt 0 ]; then
		rc=0
	fi
	# A crash or a non-zero exit without a "not ok" line is still a failure.
	if [ "$rc" != 0 ]; then
		said+=("${why:-$(exit_text "$rc")}")
		[ "$f" -gt 0 ] || f=1
	elif [ -n "$why" ]; then
		said+=("$why")
	fi
	if [ ${#said[@]} -gt 0 ]; then
		msg=$(printf '; %s' "${said[@]}")
		echo "not ok 0 ${test_of[$name]:-$name}: ${msg#; }" >> "$tap"
	fi
	pass=$((pass + p - s))
	skip=$((skip + s))
	fail=$((fail + f))
	[ "$f" -gt 0 ] && failed+=("$where/$name")
	grep -E '^ok [0-9]+ .*# SKIP' "$tap" | sed "s|^|# skipped ($where): |"
done

for t in "${failed[@]}"; do
	echo "# ---- failed: $t (full output: $RESULTS/$t.tap)"
	grep -E '^not ok|^# .*(Expected|FAIL|error|Error)' "$RESULTS/$t.tap" | head -n 40
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
