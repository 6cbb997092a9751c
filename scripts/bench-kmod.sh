#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Handshake latency through the kernel service (/dev/kmtls) against the same
# kmtlsd in terminate mode. Not part of `make check` or `make bench`; run it
# where kmtls.ko and kTLS are (the guest):
#
#   tools/vm/kmtls-vm run -- scripts/bench-kmod.sh
#   tools/vm/kmtls-vm run --kernel 6.1 -- scripts/bench-kmod.sh --duration 5 --rounds 3
#
# Options (defaults): --duration S (10) per run, --rounds N (3), --workers N
# (2) of kmtlsd, --payload N (32) bytes echoed after each handshake.
#
# One kmtlsd serves both paths: a [listener term] in front of an echo backend
# (test_backend), and a [kernel default] profile with the same certificates,
# used by tools/examples/kmtls-echo-server. The client is kmtls-bench doing N
# sequential full mTLS handshakes (--concurrency 1, closed loop), each
# followed by PAYLOAD bytes echoed back:
#
#   terminate   client -> kmtlsd (handshake, kTLS, backend connect, splice
#               relay) -> echo backend
#   kernel      client -> kmtls-echo-server (accept, KMTLS_IOC_SUBMIT) ->
#               kmtls.ko (READY) -> kmtlsd (ACCEPT, handshake, kTLS, DONE) ->
#               kmtls-echo-server (completion, echo over kTLS)
#
# Two latencies per connection, from connect(): "handshake" ends when the
# client's handshake completes (in TLS 1.3 before the server has even read
# the client's Finished, so it hides the kernel path's tail), "echo" when
# the payload came back, which needs the server side finished: that one is
# the comparison. Rounds alternate the two paths, the median of the rounds'
# p50s is reported, and the ratio kernel / terminate; the target is at most
# 1.10. Exit status 0 unless something failed to run (the ratio is printed,
# not enforced: an emulated guest is noisy).
set -euo pipefail

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
TOP=$(cd "$(dirname "$0")/.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
PKI=$(realpath -m "${KMTLS_PKI:-$TOP/build/pki}")
DURATION=10
ROUNDS=3
WORKERS=2
PAYLOAD=32
TARGET=1.10

die() { echo "bench-kmod: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--workers) WORKERS=${2:?}; shift 2 ;;
	--payload) PAYLOAD=${2:?}; shift 2 ;;
	*) die "usage: $0 [--duration S] [--rounds N] [--workers N] [--payload N]" ;;
	esac
done

for f in "$OUT/bin/kmtlsd" "$OUT/bin/kmtls-bench" "$OUT/bin/kmtls-echo-server" \
	 "$OUT/selftests/progs/test_backend" "$PKI/client.pem"; do
	[ -e "$f" ] || die "$f missing (make userspace; selftests/lib/mkpki.sh build/pki)"
done
[ -e /dev/kmtls ] || die "no /dev/kmtls: run in the guest (tools/vm/kmtls-vm run -- $0)"
[ -e /proc/net/tls_stat ] || die "no kTLS in this kernel (modprobe tls)"

TMP=$(mktemp -d /tmp/kmtls-bench-kmod.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_file FILE PATTERN: until FILE has PATTERN (20 s).
wait_file() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-kmod: waiting for \"$2\" in $1:" >&2
	cat "$1" >&2 2>/dev/null || true
	return 1
}

# The echo backend of the terminating listener.
"$OUT/selftests/progs/test_backend" --listen 127.0.0.1:0 --mode echo \
	--ready-file "$TMP/backend.ready" > /dev/null 2> "$TMP/backend.err" &
PIDS+=($!)
wait_file "$TMP/backend.ready" . || die "test_backend did not start"
BACKEND_PORT=$(cat "$TMP/backend.ready")

TERM_PORT=$(free_port)
KERN_PORT=$(free_port)
cat > "$TMP/kmtlsd.conf" <<EOF
[kmtlsd]
workers = $WORKERS
log-level = warning

[listener term]
listen = 127.0.0.1:$TERM_PORT
backend = 127.0.0.1:$BACKEND_PORT
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
ktls = require

[kernel default]
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
EOF
"$OUT/bin/kmtlsd" -c "$TMP/kmtlsd.conf" --foreground --log-level info > "$TMP/kmtlsd.log" 2>&1 &
PIDS+=($!)
wait_file "$TMP/kmtlsd.log" "kernel service: serving" || die "kmtlsd did not start"
wait_file "$TMP/kmtlsd.log" "listening on" || die "kmtlsd did not start"

"$OUT/bin/kmtls-echo-server" --listen "127.0.0.1:$KERN_PORT" --quiet > "$TMP/echo.log" 2>&1 &
PIDS+=($!)
wait_file "$TMP/echo.log" "listening on" || die "kmtls-echo-server did not start"

# run PORT NAME ROUND: one kmtls-bench run; its JSON in $TMP/NAME.ROUND.json.
run() {
	"$OUT/bin/kmtls-bench" --connect "127.0.0.1:$1" --mode full --concurrency 1 \
		--duration "$DURATION" --warmup 1 --payload "$PAYLOAD" \
		--cert "$PKI/client.pem" --key "$PKI/client.key" --ca "$PKI/ca.pem" \
		--json > "$TMP/$2.$3.json" 2> "$TMP/$2.$3.err" ||
		{ cat "$TMP/$2.$3.err" >&2; die "kmtls-bench against $2 failed"; }
	[ "$(jq '.failed' "$TMP/$2.$3.json")" = 0 ] ||
		echo "bench-kmod: $2 round $3: $(jq -c '.failures' "$TMP/$2.$3.json")" >&2
}

ktls_before=$(awk '/TlsRxSw/ { print $2 }' /proc/net/tls_stat)
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then
		run "$TERM_PORT" terminate "$r"
		run "$KERN_PORT" kernel "$r"
	else
		run "$KERN_PORT" kernel "$r"
		run "$TERM_PORT" terminate "$r"
	fi
done
ktls_after=$(awk '/TlsRxSw/ { print $2 }' /proc/net/tls_stat)

# median NAME KEY: the median over the rounds of .KEY.p50 (microseconds).
median() {
	local name=$1 key=$2
	jq -s "[.[].$key.p50] | sort | .[length / 2 | floor]" "$TMP/$name".*.json
}
count() {
	jq -s "[.[].ok] | add" "$TMP/$1".*.json
}

printf 'kmtls kernel service vs terminate mode: %s round(s) of %s s, 1 connection at a time, %s-byte echo, %s worker(s), kernel %s\n' \
	"$ROUNDS" "$DURATION" "$PAYLOAD" "$WORKERS" "$(uname -r)"
printf '%-12s %10s %14s %14s\n' path handshakes "handshake p50" "+ echo p50"
for name in terminate kernel; do
	printf '%-12s %10s %11s us %11s us\n' "$name" "$(count "$name")" \
		"$(median "$name" latency_us)" "$(median "$name" echo_latency_us)"
done
hs_ratio=$(jq -n "$(median kernel latency_us) / $(median terminate latency_us)")
echo_ratio=$(jq -n "$(median kernel echo_latency_us) / $(median terminate echo_latency_us)")
printf 'kernel / terminate at p50: handshake %.3f, handshake + echo %.3f (target <= %s): %s\n' \
	"$hs_ratio" "$echo_ratio" "$TARGET" \
	"$(jq -n "if $echo_ratio <= $TARGET then \"met\" else \"missed\" end" | tr -d '"')"
echo "kTLS RX installs during the run: $((ktls_after - ktls_before)) (both paths use kTLS)"
grep -E "\[(warning|error)\]" "$TMP/kmtlsd.log" | head -5 >&2 || true
