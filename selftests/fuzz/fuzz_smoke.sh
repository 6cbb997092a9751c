#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check: a short libFuzzer run of each target under selftests/fuzz/
# (KMTLS_FUZZ_SECONDS, default 10, each), one KTAP case per target. Every
# run starts with the committed seeds, so a seed that crashes fails too.
# Runs happen in a scratch directory that is removed when all pass and
# kept, with the crashing inputs and logs, when one fails. The ClientHello
# recognizer has its own case (bpf/hello_fuzz.sh); `make fuzz` runs them
# all for longer.
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
SECS=${KMTLS_FUZZ_SECONDS:-10}
. "$TOP/selftests/lib/ktap.sh"
. "$TOP/selftests/fuzz/lib.sh"

mapfile -t targets < <(fuzz_targets | grep -vx hello)
ktap_plan "${#targets[@]}"
TMP=$(mktemp -d /tmp/kmtls-fuzz-smoke.XXXXXX)

for t in "${targets[@]}"; do
	bin=$(fuzz_bin "$t")
	if [ ! -x "$bin" ]; then
		skip "fuzz.$t" "$bin not built (make userspace)"
		continue
	fi
	if fuzz_one "$t" "$SECS" "$TMP/$t"; then
		ok "fuzz.$t # ${FUZZ_EXECS:-?} inputs in ${SECS}s, cov ${FUZZ_COV:-?} ft ${FUZZ_FT:-?}, corpus $FUZZ_SEEDS -> $FUZZ_CORPUS"
	else
		not_ok "fuzz.$t" "$(printf '%s\ninput: %s\nlog: %s\nreproduce: %s <input>' \
			"$FUZZ_SUMMARY" "${FUZZ_CRASHES:-none written}" "$TMP/$t/fuzz.log" "$bin")"
	fi
done

if [ "$failures" -eq 0 ]; then
	rm -rf "$TMP"
else
	echo "# kept $TMP"
fi
ktap_exit
