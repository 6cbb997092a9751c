#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsd under valgrind memcheck: the handshake and relay suites (refused
# clients in reject_test, 64 MiB each way per cipher in relay_test) with
# KMTLS_WRAP putting valgrind in front of every kmtlsd they start (see
# selftests/lib/kmtlsd.c). A suite fails when one of its cases fails or on
# any memcheck report: an invalid access, a use of uninitialised memory, a
# definite or indirect leak at exit, an instruction valgrind cannot run
# (wolfSSL's AES-NI/AVX2 assembly is among what it must get through). No
# suppressions: add one only for a documented third-party false positive,
# in selftests/kmtlsd/valgrind.supp (used when present), saying why.
#
# Under valgrind kmtlsd runs without Landlock and seccomp (valgrind knows
# neither system call, so kmtlsd warns and goes on), and about 20 times
# slower: the two suites take a minute or two.
#
#   KMTLS_OUT   build output with bin/kmtlsd and selftests/ (default: <repo>/build/out)
#   KMTLS_PKI   test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki)
#   KMTLS_VALGRIND_SUITES  what to run (default: kmtlsd/reject_test kmtlsd/relay_test)
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
export KMTLS_OUT=$OUT
export KMTLS_PKI=${KMTLS_PKI:-$TOP/build/pki}
read -r -a SUITES <<< "${KMTLS_VALGRIND_SUITES:-kmtlsd/reject_test kmtlsd/relay_test}"
SUPP=$TOP/selftests/kmtlsd/valgrind.supp
SUITE_TIMEOUT=900

# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

ktap_plan "${#SUITES[@]}"
skip_all() {
	local s
	for s in "${SUITES[@]}"; do
		skip "$s under valgrind" "$1"
	done
	exit 0
}
command -v valgrind > /dev/null || skip_all "valgrind is not installed (make deps installs it)"
# Not a missing feature of the machine: an ASan build cannot run under valgrind.
grep -q __asan_init "$OUT/bin/kmtlsd" 2> /dev/null &&
	skip_all "kmtlsd in $OUT is built with ASan; valgrind runs the plain build (make check-valgrind)"
[ -x "$OUT/bin/kmtlsd" ] || { echo "Bail out! $OUT/bin/kmtlsd missing (make userspace)"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-valgrind.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
trap 'rm -rf "$TMP"' EXIT
echo "# $(valgrind --version), kernel $(uname -r)"

# shellcheck disable=SC2054 # commas inside valgrind's own option values
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --num-callers=30)
[ -f "$SUPP" ] && VG+=(--suppressions="$SUPP")

# What is wrong in one valgrind log, or nothing.
log_problems() {
	local log=$1
	grep -q 'ERROR SUMMARY: 0 errors' "$log" || grep -m1 'ERROR SUMMARY' "$log"
	grep -E 'unhandled instruction|Unrecognised instruction|valgrind: the .* impossible happened' "$log" | head -n 3
	grep -q 'HEAP SUMMARY' "$log" || echo "no HEAP SUMMARY: kmtlsd did not exit by itself"
}

for suite in "${SUITES[@]}"; do
	name=${suite//\//.}
	dir=$TMP/$name
	mkdir -p "$dir"
	bin=$OUT/selftests/$suite
	start=$SECONDS
	KMTLS_WRAP="${VG[*]} --log-file=$dir/vg.%p.log" \
		timeout -k 10 "$SUITE_TIMEOUT" "$bin" > "$dir/out.tap" 2>&1
	rc=$?
	logs=("$dir"/vg.*.log)
	problems=
	[ -e "${logs[0]}" ] || problems="no valgrind log: kmtlsd never ran under valgrind"
	for log in "${logs[@]}"; do
		[ -e "$log" ] || continue
		p=$(log_problems "$log")
		[ -n "$p" ] && problems+="$log: $p"$'\n'"$(grep -E '^==[0-9]+== ' "$log" | tail -n +7 | head -n 60)"$'\n'
	done
	cases=$(grep -cE '^ok [0-9]+ ' "$dir/out.tap")
	if [ "$rc" -eq 0 ] && [ -z "$problems" ]; then
		ok "$suite under valgrind"
		echo "# $suite: $cases cases, ${#logs[@]} kmtlsd runs, no memcheck report, $((SECONDS - start)) s"
	else
		not_ok "$suite under valgrind" "$(
			[ "$rc" -ne 0 ] && echo "$suite exited $rc:" && grep -E '^not ok|Expected|# .*FAIL' "$dir/out.tap" | head -n 20
			printf '%s' "$problems")"
	fi
done
ktap_exit
