#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtls-bench against kmtlsd (one worker) in front of an echo test_backend:
# full, resumed and bulk runs of about two seconds each, a payload echo, the
# crypto floor, and two runs that must count failures instead of successes
# (a client certificate kmtlsd refuses, a port nobody listens on). Checks
# that the counts are sane, never how fast anything is: speed belongs to
# `make bench`. Prints KTAP and exits non-zero when a case fails.
#
# Only 127.0.0.1 is used; every process and file made here goes at the end.
#
#   KMTLS_OUT  build output with bin/kmtlsd, bin/kmtls-bench and
#              selftests/progs/test_backend (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki;
#              a private one is made when it is missing or incomplete)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

START_TIMEOUT=30
# kmtls-bench ends by itself after warmup + duration + at most 2 s of grace;
# this only catches a hang.
BENCH_TIMEOUT=60

NTESTS=7
started=$SECONDS

PKI=
DIAG=
K_PORT=
K_LOG=

# kmtlsd takes its port on the command line: start_daemon retries when
# another process took the free port first.
launch_kmtlsd() {
	K_PORT=$(free_port)
	"$KMTLSD" --foreground --workers 1 \
		--listen "127.0.0.1:$K_PORT" --backend "127.0.0.1:$B_PORT" \
		--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" \
		> /dev/null 2> "$K_LOG" &
}

start_kmtlsd() {
	K_LOG=$TMP/kmtlsd.log
	start_daemon "kmtlsd did not start:" kmtlsd_up "$K_LOG" launch_kmtlsd
}

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-bench-test.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$KMTLSD" "$BENCH" "$BACKEND" || bail "$MISSING missing (make userspace)"
	need_tools openssl timeout "$PY" || bail "$MISSING not installed"
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
	start_backend echo backend || bail "echo backend did not start"
	start_kmtlsd || bail "kmtlsd did not start"
	CLIENT=(--connect "127.0.0.1:$K_PORT" --cert "$PKI/client.pem"
		--key "$PKI/client.key" --ca "$PKI/ca.pem")
}

# ---- running and checking --------------------------------------------------

# bench NAME ARGS...: kmtls-bench --json, output in $TMP/NAME.json. Returns
# its exit status; a hang is a failure of its own.
bench() {
	local name=$1 rc
	shift
	timeout -k 5 "$BENCH_TIMEOUT" "$BENCH" --json "$@" \
		> "$TMP/$name.json" 2> "$TMP/$name.err"
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		say "kmtls-bench did not end by itself within $BENCH_TIMEOUT s"
	fi
	[ "$rc" -ne 0 ] && say_file "$TMP/$name.err"
	return "$rc"
}

# The good client, once kmtlsd's port is known.
CLIENT=()

# expect NAME EXPR...: every Python expression must hold for the JSON in
# $TMP/NAME.json (d: the object, lat: d["latency_us"]). Those that do not
# are named in the diagnostics, followed by the JSON.
expect() {
	local name=$1
	shift
	"$PY" "$(dirname "$0")/../lib/bench_expect.py" "$TMP/$name.json" "$@" >> "$DIAG" 2>&1
}

# Every run that should succeed: something done, nothing failed, sane order.
SANE=(
	'd["ok"] > 0' 'd["failed"] == 0' 'd["failures"] == {}' 'd["rate_per_s"] > 0'
	'0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]'
	'd["version"] == "TLSv1.3"' 'd["cipher"] and d["group"]'
	'd["client_cpu_s"] > 0'
)

case_full() {
	bench full "${CLIENT[@]}" --mode full --duration 2 --warmup 0.5 || return 1
	expect full "${SANE[@]}" 'd["mode"] == "full"' 'd["resumed"] == 0'
}

# Every connection after a slot's first must resume, with (EC)DHE.
case_resumed() {
	bench resumed "${CLIENT[@]}" --mode resumed --duration 2 --warmup 0.5 || return 1
	expect resumed "${SANE[@]}" 'd["resumed"] >= 0.9 * d["ok"]' \
		'd["resumed_psk_dhe_ke"] == d["resumed"]' 'd["resumed_psk_ke"] == 0'
}

# What went out came back, give or take one window per connection.
case_bulk() {
	bench bulk "${CLIENT[@]}" --mode bulk --concurrency 8 --bytes 64k \
		--duration 2 --warmup 0.5 || return 1
	expect bulk "${SANE[@]}" 'd["bytes_received"] > 0' 'd["recv_Bps"] > 0' \
		'abs(d["bytes_sent"] - d["bytes_received"]) <= d["bytes_per_conn"] * d["concurrency"]'
}

case_payload() {
	bench payload "${CLIENT[@]}" --mode full --payload 40000 --concurrency 4 \
		--threads 2 --duration 1 --warmup 0.5 || return 1
	expect payload "${SANE[@]}" 'd["threads"] == 2' \
		'0 < d["echo_latency_us"]["p50"] <= d["echo_latency_us"]["max"]' \
		'd["echo_latency_us"]["samples"] == d["ok"]'
}

case_floor() {
	bench floor --crypto-floor --duration 0.5 || return 1
	expect floor 'd["ecdsa_p256_sign_per_s"] > 0' 'd["ecdsa_p256_verify_per_s"] > 0' \
		'd["x25519_per_s"] > 0' 'd["ceiling_hs_per_s"] > 0' \
		'd["ceiling_hs_per_s"] < d["ecdsa_p256_sign_per_s"]'
}

# kmtlsd refuses a client from another CA after the client's Finished: the
# bench must see the alert and count a failure, not a handshake.
case_rejected() {
	bench rejected --connect "127.0.0.1:$K_PORT" --cert "$PKI/bad/otherca.pem" \
		--key "$PKI/bad/otherca.key" --ca "$PKI/ca.pem" --mode full \
		--concurrency 1 --duration 0.5 --warmup 0
	[ $? -eq 1 ] || { say "exit status should be 1: nothing succeeded"; return 1; }
	expect rejected 'd["ok"] == 0' 'd["failed"] > 0' \
		'd["failures"] and all("alert 48 (unknown_ca)" in k for k in d["failures"])'
}

case_refused() {
	local port
	port=$(free_port)
	bench refused --connect "127.0.0.1:$port" --cert "$PKI/client.pem" \
		--key "$PKI/client.key" --ca "$PKI/ca.pem" --mode full \
		--concurrency 2 --duration 0.3 --warmup 0
	[ $? -eq 1 ] || { say "exit status should be 1: nothing succeeded"; return 1; }
	expect refused 'd["ok"] == 0' 'd["failed"] > 0' \
		'list(d["failures"]) == ["connect: Connection refused"]'
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup
	echo "# kmtlsd on 127.0.0.1:$K_PORT (1 worker), echo backend on 127.0.0.1:$B_PORT, kernel $(uname -r)"

	run_case full_handshakes case_full
	run_case resumed_handshakes_psk_dhe_ke case_resumed
	run_case bulk_echo_both_ways case_bulk
	run_case payload_echo_two_threads case_payload
	run_case crypto_floor case_floor
	run_case rejected_client_counted_as_failure case_rejected
	run_case refused_port_counted_as_failure case_refused

	echo "# $failures of $NTESTS failed, $((SECONDS - started)) s"
	[ "$failures" -eq 0 ]
}

main "$@"
