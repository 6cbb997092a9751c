#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check: check.sh all|host|vm [FILTER]
# Runs the tests listed in selftests/TESTS (host ones natively, vm ones in one
# guest boot per kernel), then prints every failure and one summary line
# "N passed, N failed, N skipped"; exits non-zero on any failure.
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
cd "$TOP"

"$TOP/selftests/lib/mkpki.sh" "$KMTLS_PKI" || { echo "check: could not create the test PKI"; exit 1; }
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

declare -A vm_tests=()
host_tests=()
while read -r where test; do
	case "$where" in ''|'#'*) continue ;; esac
	[ -n "$FILTER" ] && [[ "$test" != *$FILTER* ]] && continue
	case "$where" in
	host) [ "$MODE" != vm ] && host_tests+=("$test") ;;
	vm:*) [ "$MODE" != host ] && vm_tests[${where#vm:}]+="$test " ;;
	esac
done < selftests/TESTS

if [ ${#host_tests[@]} -gt 0 ]; then
	echo "# host ($(uname -r))"
	scripts/run-tests.sh "$RESULTS/host" "${host_tests[@]}"
fi
# vm:SERIES+debug: a guest of its own, booted with kmtls-vm --debug.
# vm:SERIES+asan: the ASan + UBSan build ($BUILD/asan, make SANITIZE=1).
for k in "${!vm_tests[@]}"; do
	echo "# guest kernel $k"
	vm_opts=()
	out=$KMTLS_OUT
	[ "${k%+debug}" != "$k" ] && vm_opts=(--debug)
	[ "${k%+asan}" != "$k" ] && out=$BUILD/asan
	# shellcheck disable=SC2086
	KMTLS_OUT=$out KMTLS_BIN=$out/bin \
		tools/vm/kmtls-vm run --kernel "${k%+*}" "${vm_opts[@]}" -- \
		scripts/run-tests.sh "$RESULTS/vm-$k" ${vm_tests[$k]}
	rc=$?
	if [ $rc -ne 0 ]; then
		mkdir -p "$RESULTS/vm-$k"
		echo "not ok 1 guest $k exited $rc" > "$RESULTS/vm-$k/guest.tap"
		echo 1 > "$RESULTS/vm-$k/guest.rc"
	fi
done

pass=0 fail=0 skip=0
failed=()
for tap in "$RESULTS"/*/*.tap; do
	[ -e "$tap" ] || continue
	where=$(basename "$(dirname "$tap")")
	name=$(basename "$tap" .tap)
	p=$(grep -cE '^ok [0-9]+ ' "$tap" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$tap" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+ ' "$tap" | tr -d ' ')
	rc=$(cat "${tap%.tap}.rc" 2>/dev/null || echo 1)
	# A crash or a non-zero exit without a "not ok" line is still a failure.
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
		echo "not ok 0 $name exited with status $rc" >> "$tap"
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
