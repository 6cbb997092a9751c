#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A short libFuzzer run of the ClientHello recognizer (bpf/hello_parse.h,
# target selftests/bpf/fuzz/hello_fuzz.c): first the committed seeds once,
# then KMTLS_FUZZ_SECONDS (20) of fuzzing from them into a scratch corpus,
# so the committed corpus is never modified. A crash leaves its input in
# the scratch directory, which is then kept and named. Prints KTAP.
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
FUZZ=$OUT/selftests/bpf/fuzz/hello_fuzz
SEEDS=$TOP/selftests/bpf/fuzz/corpus
SECONDS_TO_RUN=${KMTLS_FUZZ_SECONDS:-20}

echo "TAP version 13"
echo "1..2"
if [ ! -x "$FUZZ" ]; then
	echo "ok 1 hello_fuzz.seeds # SKIP $FUZZ not built (make userspace)"
	echo "ok 2 hello_fuzz.run # SKIP $FUZZ not built"
	exit 0
fi
TMP=$(mktemp -d /tmp/kmtls-hello-fuzz.XXXXXX)
keep=
cleanup() { [ -z "$keep" ] && rm -rf "$TMP"; }
trap cleanup EXIT

if "$FUZZ" -runs=0 "$SEEDS" > "$TMP/seeds.log" 2>&1; then
	echo "ok 1 hello_fuzz.seeds # $(ls "$SEEDS" | wc -l) seeds"
else
	echo "not ok 1 hello_fuzz.seeds"
	tail -n 30 "$TMP/seeds.log" | sed 's/^/# /'
fi

mkdir -p "$TMP/corpus" "$TMP/crash"
if (cd "$TMP/crash" && "$FUZZ" -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 "$TMP/corpus" "$SEEDS") \
	> "$TMP/run.log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/run.log")
	echo "ok 2 hello_fuzz.run # ${runs:-?} inputs in ${SECONDS_TO_RUN}s, corpus $(ls "$TMP/corpus" | wc -l)"
else
	keep=1
	echo "not ok 2 hello_fuzz.run"
	echo "# crashing input and log kept in $TMP/crash, $TMP/run.log"
	grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$TMP/run.log" | head -n 20 | sed 's/^/# /'
	exit 1
fi
