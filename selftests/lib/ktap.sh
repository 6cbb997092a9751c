# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# KTAP output for shell selftests, sourced: `. "$(dirname "$0")/../lib/ktap.sh"`.
# ktap_plan N first; then ok / not_ok / skip per case; ktap_exit last.

testno=0
failures=0

ktap_plan() {
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

# Exit status for the whole script: non-zero when any case failed.
ktap_exit() {
	[ "$failures" -eq 0 ]
	exit
}
