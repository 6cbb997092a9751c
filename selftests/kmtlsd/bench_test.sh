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

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
PY=/usr/bin/python3

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
PKI_SRC=$(realpath -m "${KMTLS_PKI:-$TOP/build/pki}")
KMTLSD=$OUT/bin/kmtlsd
BENCH=$OUT/bin/kmtls-bench
BACKEND=$OUT/selftests/progs/test_backend

START_TIMEOUT=30
# kmtls-bench ends by itself after warmup + duration + at most 2 s of grace;
# this only catches a hang.
BENCH_TIMEOUT=60

NTESTS=7
# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"
started=$SECONDS

TMP=
PKI=
DIAG=
PIDS=()
B_PORT=
K_PORT=
K_LOG=

# ---- KTAP ------------------------------------------------------------------

say() { printf '%s\n' "$*" >> "$DIAG"; }

say_file() {
	[ -s "$1" ] || return 0
	tail -n "${2:-15}" "$1" | sed 's/^/  /' >> "$DIAG"
}

# run_case NAME FUNC [ARGS...]: FUNC returns 0 for ok.
run_case() {
	local name=$1 rc
	shift
	: > "$DIAG"
	"$@"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		not_ok "$name"
	fi
	diag < "$DIAG"
	return 0
}

# ---- processes -------------------------------------------------------------

alive() {
	local state
	state=$(sed -n 's/^.*) \(.\) .*$/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}

wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- setup -----------------------------------------------------------------

pki_complete() {
	[ -s "$1/.complete" ] && [ -s "$1/ca.pem" ] && [ -s "$1/client.pem" ] &&
		[ -s "$1/client.key" ] && [ -s "$1/server.key" ] && [ -s "$1/bad/otherca.pem" ]
}

# A private copy: another test run may rebuild the shared PKI meanwhile.
setup_pki() {
	local i
	PKI=$TMP/pki
	for ((i = 0; i < 5; i++)); do
		if pki_complete "$PKI_SRC"; then
			rm -rf "$PKI"
			cp -a "$PKI_SRC/." "$PKI" 2>/dev/null && pki_complete "$PKI" &&
				openssl verify -CAfile "$PKI/ca.pem" -untrusted "$PKI/intermediate.pem" \
					"$PKI/server.pem" "$PKI/client.pem" > /dev/null 2>&1 && return 0
		fi
		sleep 1
	done
	rm -rf "$PKI"
	"$TOP/selftests/lib/mkpki.sh" "$PKI" > "$TMP/mkpki.log" 2>&1
}

start_backend() {
	local ready=$TMP/backend.ready
	"$BACKEND" --listen 127.0.0.1:0 --mode echo --ready-file "$ready" \
		> /dev/null 2> "$TMP/backend.err" &
	PIDS+=($!)
	if ! wait_until "$START_TIMEOUT" test -s "$ready"; then
		say "test_backend did not start:"
		say_file "$TMP/backend.err"
		return 1
	fi
	B_PORT=$(cat "$ready")
}

kmtlsd_up() { grep -q 'listening on' "$K_LOG" 2>/dev/null; }
up_or_dead() { kmtlsd_up || ! alive "$1"; }

# kmtlsd takes its port on the command line: retry when another process
# took the free port first.
start_kmtlsd() {
	local i pid
	K_LOG=$TMP/kmtlsd.log
	for ((i = 0; i < 3; i++)); do
		K_PORT=$(free_port)
		"$KMTLSD" --foreground --workers 1 \
			--listen "127.0.0.1:$K_PORT" --backend "127.0.0.1:$B_PORT" \
			--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" \
			> /dev/null 2> "$K_LOG" &
		pid=$!
		PIDS+=("$pid")
		wait_until "$START_TIMEOUT" up_or_dead "$pid" && kmtlsd_up && return 0
		stop_pid "$pid"
	done
	say "kmtlsd did not start:"
	say_file "$K_LOG"
	return 1
}

bail() {
	echo "Bail out! $*"
	[ -s "$DIAG" ] && diag < "$DIAG"
	exit 1
}

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-bench-test.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	for f in "$KMTLSD" "$BENCH" "$BACKEND"; do
		[ -x "$f" ] || bail "$f missing (make userspace)"
	done
	for t in openssl timeout "$PY"; do
		command -v "$t" > /dev/null || bail "$t not installed"
	done
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
	start_backend || bail "echo backend did not start"
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
	"$PY" - "$TMP/$name.json" "$@" >> "$DIAG" 2>&1 <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    print("no JSON object from kmtls-bench: %s" % e)
    sys.exit(1)
env = {"d": d, "lat": d.get("latency_us") or {}}
bad = []
for e in sys.argv[2:]:
    try:
        if not eval(e, {}, env):
            bad.append(e)
    except Exception as x:
        bad.append("%s (%s: %s)" % (e, type(x).__name__, x))
for e in bad:
    print("expected: " + e)
if bad:
    print("got: " + json.dumps(d, sort_keys=True))
    sys.exit(1)
# The numbers, for whoever reads the log (never checked against a speed).
keys = ("ok", "failed", "rate_per_s", "resumed", "resumed_psk_dhe_ke",
        "bytes_sent", "bytes_received", "client_cpu_pct",
        "ecdsa_p256_sign_per_s", "ecdsa_p256_verify_per_s", "x25519_per_s",
        "ceiling_hs_per_s")
print(", ".join("%s %s" % (k, d[k]) for k in keys if k in d) +
      ("; latency_us p50 %s p99 %s max %s" % (env["lat"]["p50"], env["lat"]["p99"],
                                               env["lat"]["max"]) if env["lat"] else ""))
EOF
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
	trap cleanup EXIT
	trap 'exit 130' INT TERM
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
