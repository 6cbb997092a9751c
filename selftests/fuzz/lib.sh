# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# shellcheck disable=SC2034  # FUZZ_* are set for the caller
#
# Shared by run.sh (make fuzz) and fuzz_smoke.sh (make check), sourced with
# TOP and OUT (the build output directory) set.
#
#   fuzz_targets            names of the targets that exist in this tree
#   fuzz_bin NAME           the libFuzzer binary of NAME
#   fuzz_seeds NAME         its committed seed corpus
#   fuzz_one NAME SECS DIR  fuzz NAME for SECS seconds in DIR (created):
#                           DIR/corpus starts as a copy of the seeds, crash
#                           inputs land in DIR, libFuzzer's output in
#                           DIR/fuzz.log. Returns libFuzzer's status and sets
#                           FUZZ_EXECS FUZZ_COV FUZZ_FT FUZZ_SEEDS FUZZ_CORPUS
#                           FUZZ_RATE FUZZ_CRASHES (paths) FUZZ_SUMMARY.

# Targets under selftests/fuzz/targets/, plus the ClientHello recognizer's.
fuzz_targets() {
	local f

	for f in "$TOP"/selftests/fuzz/targets/*_fuzz.c; do
		[ -e "$f" ] || continue
		f=${f##*/}
		echo "${f%_fuzz.c}"
	done
	echo hello
}

fuzz_bin() {
	case $1 in
	hello) echo "$OUT/selftests/bpf/fuzz/hello_fuzz" ;;
	*) echo "$OUT/selftests/fuzz/$1_fuzz" ;;
	esac
}

fuzz_seeds() {
	case $1 in
	hello) echo "$TOP/selftests/bpf/fuzz/corpus" ;;
	*) echo "$TOP/selftests/fuzz/corpus/$1" ;;
	esac
}

fuzz_one() {
	local name=$1 secs=$2 dir=$3 bin seeds dict=() rc last

	bin=$(fuzz_bin "$name")
	seeds=$(fuzz_seeds "$name")
	[ -f "$TOP/selftests/fuzz/dict/$name.dict" ] &&
		dict=("-dict=$TOP/selftests/fuzz/dict/$name.dict")
	rm -rf "$dir/corpus" "$dir/tmp" "$dir"/crash-* "$dir"/leak-* \
		"$dir"/timeout-* "$dir"/oom-* "$dir/fuzz.log"
	mkdir -p "$dir/corpus" "$dir/tmp"
	cp -- "$seeds"/* "$dir/corpus/" 2>/dev/null
	FUZZ_SEEDS=$(find "$dir/corpus" -type f | wc -l)
	# TMPDIR: scratch files of a target (config_fuzz) stay in $dir.
	(cd "$dir" && TMPDIR=$dir/tmp "$bin" "${dict[@]}" \
		-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus") \
		> "$dir/fuzz.log" 2>&1
	rc=$?
	rm -rf "$dir/tmp"
	FUZZ_EXECS=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log")
	FUZZ_RATE=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log")
	last=$(grep -E '^#[0-9]+.* cov: ' "$dir/fuzz.log" | tail -n 1)
	FUZZ_COV=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
	FUZZ_FT=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
	FUZZ_CORPUS=$(find "$dir/corpus" -type f | wc -l)
	FUZZ_CRASHES=$(find "$dir" -maxdepth 1 -type f \
		\( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
		sort | tr '\n' ' ')
	FUZZ_SUMMARY=$(grep -E '_fuzz: |SUMMARY|runtime error|ERROR: libFuzzer' "$dir/fuzz.log" |
		grep -v 'Running 1 inputs' | head -n 4)
	return $rc
}
