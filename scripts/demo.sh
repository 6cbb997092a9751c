#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make demo [VM=1]: kmtlsd terminating mutual TLS in front of a small HTTP
# backend; curl and openssl s_client as clients with the test PKI; a
# printout of what was negotiated and which record layer carried the bytes.
# On this host the kernel has no kTLS, so the records go through wolfSSL;
# with VM=1 the same demo runs in the guest kernel, where kTLS carries them.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
# In the guest only KMTLS_* variables arrive: KMTLS_BUILD carries BUILD
# there, and tells kmtls-vm which build directory to share.
BUILD=${BUILD:-${KMTLS_BUILD:-$TOP/build}}
OUT=${KMTLS_OUT:-$BUILD/out}
export KMTLS_BUILD=$BUILD

if [ "${1:-host}" = vm ]; then
	exec "$TOP/tools/vm/kmtls-vm" run --kernel 6.12 -- "$0" guest
fi

PKI=$BUILD/pki
"$TOP/selftests/lib/mkpki.sh" "$PKI"
DIR=$(mktemp -d /tmp/kmtls-demo.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BPORT=$(port)
TPORT=$(port)

# wait_up WHAT PID LOG CMD...: until CMD succeeds (30 s: python starts
# slowly in a TCG guest); the demo ends, with LOG, when PID exits first or
# the time is up.
wait_up() {
	local what=$1 pid=$2 log=$3 i
	shift 3
	for ((i = 0; i < 600; i++)); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "demo: $what not up after 30 s; its log:" >&2
	else
		echo "demo: $what exited; its log:" >&2
	fi
	sed 's/^/   /' "$log" >&2
	exit 1
}
accepts() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mkdir -p "$DIR/www"
head -c $((8 << 20)) /dev/urandom > "$DIR/www/blob"
(cd "$DIR/www" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$BPORT" > "$DIR/backend.log" 2>&1) &
# kmtlsd does not connect to the backend before a client comes: without
# this wait curl can come first and get "Empty reply from server".
wait_up "the python backend on 127.0.0.1:$BPORT" $! "$DIR/backend.log" accepts "$BPORT"

tls_stat() { awk -v k="$1" '$1 == k {print $2}' /proc/net/tls_stat 2>/dev/null || true; }
tx0=$(tls_stat TlsTxSw)

"$OUT/bin/kmtlsd" --foreground --log-level debug --workers 1 --listen "127.0.0.1:$TPORT" --backend "127.0.0.1:$BPORT" \
	--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" --crl "$PKI/crl.pem" \
	--allow-uri 'spiffe://example.org/*' > "$DIR/kmtlsd.log" 2>&1 &
wait_up kmtlsd $! "$DIR/kmtlsd.log" grep -q "listening on" "$DIR/kmtlsd.log"

echo "== kmtlsd $(uname -r): 127.0.0.1:$TPORT -> http://127.0.0.1:$BPORT"
"$OUT/bin/kmtlsd" --version | sed 's/^/   /'
echo
echo "== curl with a client certificate: GET /blob (8 MiB)"
curl -sS --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key" \
	-o "$DIR/got" -w '   HTTP %{http_code}, %{size_download} bytes, %{speed_download} B/s\n' \
	"https://localhost:$TPORT/blob"
if cmp -s "$DIR/got" "$DIR/www/blob"; then echo "   content identical (cmp)"; else echo "   CONTENT DIFFERS"; exit 1; fi
echo
echo "== openssl s_client without a client certificate (must be refused)"
if printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$TPORT" \
	-CAfile "$PKI/ca.pem" 2>/dev/null | grep HTTP > /dev/null; then
	echo "   SERVED WITHOUT A CERTIFICATE"; exit 1
fi
echo "   refused"
echo "== openssl s_client with a revoked certificate (must be refused)"
if printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$TPORT" \
	-CAfile "$PKI/ca.pem" -cert "$PKI/bad/revoked.pem" -key "$PKI/bad/revoked.key" \
	-cert_chain "$PKI/intermediate.pem" 2>/dev/null | grep HTTP > /dev/null; then
	echo "   SERVED A REVOKED CERTIFICATE"; exit 1
fi
echo "   refused"
sleep 0.2
echo
echo "== what kmtlsd logged"
sed 's/^/   /' "$DIR/kmtlsd.log"
echo
tx1=$(tls_stat TlsTxSw)
if [ -n "$tx1" ] && [ "$tx1" -gt "${tx0:-0}" ]; then
	echo "== record layer: kTLS (in-kernel TLS, /proc/net/tls_stat TlsTxSw $tx0 -> $tx1), relayed with splice(2)"
else
	echo "== record layer: wolfSSL in userspace (this kernel has no kTLS; run 'make demo VM=1' for kTLS)"
fi
