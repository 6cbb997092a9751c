# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# KTAP output for shell selftests, sourced: `. "$(dirname "$0")/../lib/ktap.sh"`.
# ktap_plan N first; then ok / not_ok / skip per case; ktap_exit last.

testno=0
failures=0
ktap_planned=0

ktap_plan() {
	ktap_planned=$1
	echo "TAP version 13"
	echo "1..$1"
}

# Diagnostics: every line prefixed with "# ".
diag() { sed 's/^/# /'; }

ok() {
	testno=$((testno + 1))
	echo "ok $testno $1"
}

# not_ok NAME [DIAGNOSTIC]: the diagnostic may span lines.
not_ok() {
	testno=$((testno + 1))
	failures=$((failures + 1))
	echo "not ok $testno $1"
	[ $# -gt 1 ] && [ -n "$2" ] && printf '%s\n' "$2" | diag
	return 0
}

skip() {
	testno=$((testno + 1))
	echo "ok $testno $1 # SKIP $2"
}

# ktap_skip_rest NAME REASON: every case of the plan not reported yet, skipped.
ktap_skip_rest() {
	while [ "$testno" -lt "$ktap_planned" ]; do
		skip "$1" "$2"
	done
}

# Exit status for the whole script: non-zero when any case failed, or when
# the cases reported are not those ktap_plan announced (a case skipped by
# mistake must not pass unseen).
ktap_exit() {
	if [ "$testno" -ne "$ktap_planned" ]; then
		echo "# planned $ktap_planned, reported $testno"
		exit 1
	fi
	[ "$failures" -eq 0 ]
	exit
}

# bail REASON: the test cannot go on; the diagnostics gathered so far in
# $DIAG (when there is one) follow.
bail() {
	echo "Bail out! $*"
	[ -n "${DIAG:-}" ] && [ -s "$DIAG" ] && diag < "$DIAG"
	exit 1
}

# ---- cases with their diagnostics in the file $DIAG -------------------------
# The test makes $DIAG. A case that sets SKIP to a reason is a skip.

# say TEXT...: one diagnostic line for the case now running.
say() { printf '%s\n' "$*" >> "$DIAG"; }

# say_file FILE [N]: the last N (15) lines of FILE as diagnostics.
say_file() {
	[ -s "$1" ] || return 0
	tail -n "${2:-15}" "$1" | sed 's/^/  /' >> "$DIAG"
}

# ktap_result NAME RC: the case's line, a skip when SKIP is set, with the
# diagnostics gathered for it; then SKIP and $DIAG start afresh.
ktap_result() {
	if [ -n "${SKIP:-}" ]; then
		skip "$1" "$SKIP"
	elif [ "$2" -eq 0 ]; then
		ok "$1"
	else
		not_ok "$1"
	fi
	diag < "$DIAG"
	: > "$DIAG"
	SKIP=
}

# run_case NAME FUNC [ARGS...]: FUNC returns 0 for ok. $CASE_END, when the
# test sets it, runs after every case (peers.sh stops what the case left
# running, so an early return cannot leak a daemon into the next case).
run_case() {
	local name=$1 rc
	shift
	: > "$DIAG"
	SKIP=
	"$@"
	rc=$?
	[ -n "${CASE_END:-}" ] && "$CASE_END"
	ktap_result "$name" "$rc"
	return 0
}

# ---- cases whose output is their diagnostics --------------------------------

# case_ NAME CMD...: CMD's output (stdout and stderr) is the diagnostics; 0
# is ok. CMD runs in this shell, not a subshell, so a case can keep state (a
# pid, a link id) for later ones; its output goes through $TMP/case.out.
case_() {
	local name=$1 out rc
	shift
	"$@" > "$TMP/case.out" 2>&1
	rc=$?
	out=$(cat "$TMP/case.out")
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name"
	fi
	[ -n "$out" ] && printf '%s\n' "$out" | diag
	return 0
}
