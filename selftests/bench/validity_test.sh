#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtls-bench's options: a port outside 1-65535, a rate out of bounds, a
# count whose k/m suffix overflows, an empty --sni are usage errors (exit
# 2), never a run; a name that does not resolve is the resolver's error
# (exit 1). Prints KTAP.
#
# Only 127.0.0.1 is used; every process and file made here goes at the end.
#
#   KMTLS_OUT  build output with bin/kmtls-bench (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

START_TIMEOUT=30
BENCH_TIMEOUT=60	# a run ends by itself after warmup + duration + 2 s

NTESTS=2
started=$SECONDS
DIAG=

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-bench-valid.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$BENCH" || bail "$MISSING missing (make userspace)"
	need_tools timeout openssl "$PY" || bail "$MISSING not installed"
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
	KEYS=(--cert "$PKI/client.pem" --key "$PKI/client.key" --ca "$PKI/ca.pem")
}

# ---- running and checking --------------------------------------------------

# run NAME ARGS...: kmtls-bench ARGS, stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err; RC its exit status.
run() {
	local name=$1
	shift
	timeout -k 5 "$BENCH_TIMEOUT" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
	RC=$?
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		say "kmtls-bench did not end by itself within $BENCH_TIMEOUT s"
	fi
}

# rc_is NAME WANT: the exit status was WANT; else say so with stderr.
rc_is() {
	[ "$RC" -eq "$2" ] && return 0
	say "exit status $RC, expected $2"
	say_file "$TMP/$1.err"
	return 1
}

# err_has NAME TEXT: stderr of run NAME has TEXT.
err_has() {
	grep -qF -- "$2" "$TMP/$1.err" && return 0
	say "stderr lacks \"$2\":"
	say_file "$TMP/$1.err"
	return 1
}

# ---- cases -----------------------------------------------------------------

# Bad values are usage errors (2) naming the option, never a run.
case_usage() {
	local bad=0 i args
	local -a cases=(
		"--connect 127.0.0.1:99003|a port from 1 to 65535"
		"--connect 127.0.0.1:0|a port from 1 to 65535"
		"--connect localhost:65536|a port from 1 to 65535"
		"--connect localhost:https|a port from 1 to 65535"
		"--rate 100000000|--rate 100000000: handshakes per second from 0.001 to 10000000"
		"--rate 0|handshakes per second from 0.001"
		"--concurrency 18014398509481985k|a whole number from 1 to 1000000"
		"--payload 17592186044417m|a whole number from 0"
		"--sni |--sni \"\": a server name"
	)
	for i in "${cases[@]}"; do
		read -ra args <<< "${i%%|*}"
		[ "${i%%|*}" = "--sni " ] && args=(--sni "")
		[[ ${args[0]} == --connect ]] || args=(--connect 127.0.0.1:9 "${args[@]}")
		run usage "$BENCH" "${KEYS[@]}" --mode full --duration 0.1 "${args[@]}"
		if [ "$RC" -ne 2 ] || ! grep -qF -- "${i#*|}" "$TMP/usage.err"; then
			say "${args[*]}: exit $RC, expected 2 and \"${i#*|}\"; got:"
			say "  $(grep -m1 -v '^usage:' "$TMP/usage.err")"
			bad=1
		fi
	done
	# A rate is not a duration: 100000/s is within bounds.
	run rate "$BENCH" "${KEYS[@]}" --mode full --connect 127.0.0.1:9 --rate 100000 \
		--duration 0.1 --warmup 0 --json
	grep -q '"target_rate_per_s":100000' "$TMP/rate.out" ||
		{ say "--rate 100000 not taken: $(head -n1 "$TMP/rate.err")"; bad=1; }
	return "$bad"
}

# A name that does not resolve: the resolver's own error, exit 1, no usage.
case_resolver() {
	run resolve "$BENCH" "${KEYS[@]}" --mode full --connect nosuchhost.invalid:443 --duration 0.1
	rc_is resolve 1 || return 1
	err_has resolve "--connect nosuchhost.invalid:443: nosuchhost.invalid: " || return 1
	! grep -q usage: "$TMP/resolve.err" || { say "a usage message for a resolver error"; return 1; }
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup

	run_case usage_errors case_usage
	run_case unresolvable_name case_resolver

	echo "# $failures of $NTESTS failed, $((SECONDS - started)) s"
	[ "$failures" -eq 0 ]
}

main "$@"
