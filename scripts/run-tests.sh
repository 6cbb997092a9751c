#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run selftests and keep their KTAP output: run-tests.sh OUTDIR TEST...
# Used on the host and inside the guest alike. For each TEST it writes
# OUTDIR/<name>.tap (all output) and OUTDIR/<name>.rc (exit status) and prints
# the result lines as they come.
set -uo pipefail

OUTDIR=$1
shift
mkdir -p "$OUTDIR"
: "${KMTLS_OUT:?KMTLS_OUT (the build output directory) must be set}"
TOP=$(cd "$(dirname "$0")/.." && pwd)

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
	timeout -k 10 "${KMTLS_TEST_TIMEOUT:-1200}" "${cmd[@]}" > "$OUTDIR/$name.tap" 2>&1 &
	pid=$!
	wait "$pid"
	echo $? > "$OUTDIR/$name.rc"
	# timeout leads a process group of its own. What the test started is
	# still in it when a failed ASSERT skipped the harness's teardown:
	# say so, and end it before the next test binds the same resources.
	left=$(pgrep -g "$pid" | wc -l)
	if [ "$left" -gt 0 ]; then
		echo "# $t left $left process(es) running: $(pgrep -g "$pid" -l | tr '\n' ' ')(killed)" \
			>> "$OUTDIR/$name.tap"
		kill -KILL -- "-$pid" 2>/dev/null
	fi
	grep -E '^(not )?ok [0-9]+ ' "$OUTDIR/$name.tap" | sed 's/^/#   /'
done
exit 0
