#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run selftests and keep their KTAP output: run-tests.sh OUTDIR TEST...
# Used on the host and inside the guest alike. For each TEST it writes
# OUTDIR/<name>.tap (all output) and OUTDIR/<name>.rc (exit status), with
# OUTDIR/<name>.why when it timed out or was stopped, and prints the result
# lines as they come.
#
#   KMTLS_TEST_TIMEOUT  seconds each test may run (1200)
set -uo pipefail

OUTDIR=$1
shift
mkdir -p "$OUTDIR"
: "${KMTLS_OUT:?KMTLS_OUT (the build output directory) must be set}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT=${KMTLS_TEST_TIMEOUT:-1200}

# The test running now: timeout(1)'s pid, which leads the test's process
# group, and the test's name.
pid=
name=

# stop_test WHY: the test running now and all in its process group, which
# neither the terminal's Ctrl-C nor a signal to us reaches: SIGTERM, SIGKILL
# after 2 s.
# shellcheck disable=SC2317 # called from traps
stop_test() {
	local i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null
	for ((i = 0; i < 20; i++)); do
		pgrep -g "$pid" > /dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [ ! -e "$OUTDIR/$name.rc" ]; then
		echo "stopped: $1" > "$OUTDIR/$name.why"
		echo 1 > "$OUTDIR/$name.rc"
	fi
	pid=
}

# shellcheck disable=SC2317 # called from traps
on_signal() {
	trap - INT TERM HUP EXIT
	stop_test "run-tests.sh got SIG$1 while it ran"
	exit $((128 + $(kill -l "$1")))
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
trap 'stop_test "run-tests.sh ended while it ran"' EXIT

for t in "$@"; do
	name=${t//\//.}
	if [ -f "$TOP/selftests/$t" ]; then
		cmd=("$TOP/selftests/$t")
	else
		cmd=("$KMTLS_OUT/selftests/$t")
	fi
	echo "# == $t ($(uname -r))"
	# A hung test must not hang the suite; the harness has its own per-test
	# timeouts, this one catches the rest.
	started=$SECONDS
	timeout -k 10 "$TIMEOUT" "${cmd[@]}" > "$OUTDIR/$name.tap" 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	echo "$rc" > "$OUTDIR/$name.rc"
	# 124, or 137 when SIGTERM was not enough.
	if { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && [ $((SECONDS - started)) -ge "$TIMEOUT" ]; then
		echo "timed out after $TIMEOUT s (KMTLS_TEST_TIMEOUT)" > "$OUTDIR/$name.why"
	fi
	# timeout leads a process group of its own. What the test started is
	# still in it when a failed ASSERT skipped the harness's teardown:
	# say so, and end it before the next test binds the same resources.
	left=$(pgrep -g "$pid" | wc -l)
	if [ "$left" -gt 0 ]; then
		echo "# $t left $left process(es) running: $(pgrep -g "$pid" -l | tr '\n' ' ')(killed)" \
			>> "$OUTDIR/$name.tap"
		kill -KILL -- "-$pid" 2>/dev/null
	fi
	pid=
	grep -E '^(not )?ok [0-9]+ ' "$OUTDIR/$name.tap" | sed 's/^/#   /'
	echo "# -- $t: exit status $rc, $((SECONDS - started)) s"
done
exit 0
