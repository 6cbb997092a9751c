#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make fuzz [FUZZ_TIME=60] [FUZZ_TARGETS="config identity"]:
# run.sh [SECONDS] [TARGET...] fuzzes every target (or those named) for
# SECONDS (60) each, one after the other, from a copy of its committed seeds
# in $BUILD/fuzz/<target>/corpus, so the committed corpus never changes.
# Prints executions, coverage (libFuzzer's cov: edges, ft: features) and
# corpus growth per target; crash inputs stay in $BUILD/fuzz/<target>/ next
# to fuzz.log. Exits non-zero if any target crashed, leaked or hung.
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
WORK=$(realpath -m "${BUILD:-$TOP/build}")/fuzz
SECS=${1:-${FUZZ_TIME:-60}}
shift $(($# > 0 ? 1 : 0))
. "$TOP/selftests/fuzz/lib.sh"

case $SECS in
''|*[!0-9]*|0) echo "fuzz: FUZZ_TIME must be a whole number of seconds, not '$SECS'" >&2; exit 2 ;;
esac
if [ $# -gt 0 ]; then
	targets=("$@")
else
	read -r -a targets <<< "${FUZZ_TARGETS:-$(fuzz_targets | tr '\n' ' ')}"
fi

failed=()
printf '%-10s %10s %8s %6s %7s %14s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
	bin=$(fuzz_bin "$t")
	if [ ! -x "$bin" ]; then
		printf '%-10s %s\n' "$t" "not built: $bin"
		failed+=("$t")
		continue
	fi
	if fuzz_one "$t" "$SECS" "$WORK/$t"; then
		result=ok
	else
		result="FAILED: $FUZZ_CRASHES"
		failed+=("$t")
	fi
	printf '%-10s %10s %8s %6s %7s %14s  %s\n' "$t" "${FUZZ_EXECS:-?}" \
		"${FUZZ_RATE:-?}" "${FUZZ_COV:-?}" "${FUZZ_FT:-?}" \
		"$FUZZ_SEEDS -> $FUZZ_CORPUS" "$result"
	[ "$result" = ok ] || printf '%s\n' "$FUZZ_SUMMARY" | sed 's/^/    /'
done
echo "# ${SECS}s per target; logs, corpora and crash inputs in $WORK/<target>/"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]} (reproduce: <binary> <crash file>)"
	exit 1
fi
