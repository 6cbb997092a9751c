#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsd against the TLS clients people really point at it: curl, openssl
# s_client and gnutls-cli as Debian ships them (OpenSSL 3.0, GnuTLS 3.7).
# The C selftests drive kmtlsd with our own wolfSSL client, which shares
# kmtlsd's TLS library and so its blind spots; these peers do not. Prints
# KTAP and exits non-zero when a case fails.
#
# Every case starts its own backend and its own kmtlsd (wolfSSL caches the
# intermediates a client presented, so an earlier good client could make a
# later bad one pass), and every process and file it makes goes at the end.
# Only 127.0.0.1 is used, on ports the kernel picked as free.
#
# Inside a guest with kTLS (tools/vm/kmtls-vm: /proc/net/tls_stat exists),
# the curl case must also have gone through kernel TLS.
#
#   KMTLS_OUT  build output with bin/kmtlsd and selftests/progs/test_backend
#              (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki;
#              a private one is made when it is missing or incomplete)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

TLS_STAT=/proc/net/tls_stat

# Generous: the same script runs in an emulated guest many times slower.
CLIENT_TIMEOUT=30
START_TIMEOUT=30
LOG_TIMEOUT=20

NTESTS=17
started=$SECONDS

PKI=
DIAG=
CASE_END=stop_all

# stop_backend: SIGTERM makes test_backend write its totals line last.
stop_backend() {
	stop_pid "$B_PID"
	tail -n 1 "$B_REPORT" 2>/dev/null
}

# backend_conns REPORT: "bytes sha256" of each finished connection.
backend_conns() {
	"$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "conn" in o:
        print(o["bytes_received"], o["sha256_received"], o["end"])
' "$1" 2>/dev/null
}

backend_has_conn() { grep -q '"conn":' "$B_REPORT" 2>/dev/null; }

http_up() { grep -q 'Serving HTTP' "$H_OUT" 2>/dev/null; }

# start_http NAME DIR: python's http.server over DIR. Sets H_PORT and H_LOG
# (its request log).
start_http() {
	local name=$1 dir=$2
	H_OUT=$TMP/$name.http.out
	H_LOG=$TMP/$name.http.log
	start_daemon "http.server did not start:" http_up "$H_LOG" launch_http "$dir"
}

launch_http() {
	H_PORT=$(free_port)
	# -u: the "Serving HTTP" line is the readiness signal, unbuffered.
	(cd "$1" && exec "$PY" -u -m http.server --bind 127.0.0.1 "$H_PORT") \
		> "$H_OUT" 2> "$H_LOG" &
}

# start_kmtlsd NAME BACKEND_PORT [FLAGS...]: one worker, the test PKI, the
# CRL always on. Sets K_PORT, K_PID, K_LOG.
start_kmtlsd() {
	local name=$1
	shift
	K_LOG=$TMP/$name.kmtlsd.log
	start_daemon "kmtlsd did not start:" kmtlsd_up "$K_LOG" launch_kmtlsd "$@" || return 1
	K_PID=$D_PID
}

launch_kmtlsd() {
	local bport=$1
	shift
	K_PORT=$(free_port)
	"$KMTLSD" --foreground --log-level debug --workers 1 \
		--listen "127.0.0.1:$K_PORT" --backend "127.0.0.1:$bport" \
		--cert "$PKI/server.pem" --key "$PKI/server.key" \
		--ca "$PKI/ca.pem" --crl "$PKI/crl.pem" "$@" \
		> /dev/null 2> "$K_LOG" &
}

# The log grows while cases run; a mark lets a check read only the lines a
# given client caused.
log_mark() { wc -l < "$K_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$K_LOG"; }
# grep reads to the end: with -q its early exit could SIGPIPE tail, and
# pipefail would turn a match into a failure.
log_has() { log_since "$1" | grep -i -- "$2" > /dev/null; }

# wait_log MARK PHRASE: kmtlsd sends its alert before it logs the reason, so
# a client can be gone before the line is written.
wait_log() { wait_until "$LOG_TIMEOUT" log_has "$1" "$2"; }

# ---- checks shared by the cases ----------------------------------------------

random_file() { head -c "$2" /dev/urandom > "$1"; }

# sink_got FILE: the one connection at the sink carried FILE exactly.
sink_got() {
	local want_len want_sha got n
	want_len=$(stat -c %s "$1")
	want_sha=$(sha256sum < "$1" | cut -d' ' -f1)
	if ! wait_until "$LOG_TIMEOUT" backend_has_conn; then
		say "the backend never saw the connection finish"
		return 1
	fi
	got=$(backend_conns "$B_REPORT")
	n=$(printf '%s\n' "$got" | grep -c .)
	if [ "$n" -ne 1 ] || [ "$got" != "$want_len $want_sha eof" ]; then
		say "backend got (bytes sha256 end): ${got:-nothing}"
		say "expected: $want_len $want_sha eof"
		return 1
	fi
	say "backend got $want_len bytes, sha256 ${want_sha:0:16}..., clean EOF"
}

# handshake_line MARK: kmtlsd's success line for the client since MARK.
handshake_line() { log_since "$1" | grep -m1 ': client .*: TLSv'; }

# backend_untouched: stop the backend and require its totals to be zero.
backend_untouched() {
	local totals
	totals=$(stop_backend)
	if [ "$totals" != '{"total_bytes":0,"conns":0}' ]; then
		say "backend was reached: ${totals:-no totals line}"
		return 1
	fi
	say "backend: $totals"
}

# ---- cases -----------------------------------------------------------------

tls_stat() { awk -v k="$1" '$1 == k { print $2 }' "$TLS_STAT" 2>/dev/null; }

# For the diagnostics only: which record layer carried a data case.
ktls_counts() { echo "$(tls_stat TlsTxSw) $(tls_stat TlsRxSw)"; }

KTLS_TX_BEFORE=
KTLS_TX_AFTER=

curl_tls() {
	curl -q --silent --show-error --noproxy '*' --max-time 60 \
		--cacert "$PKI/ca.pem" "$@"
}

# 1: a 4 MiB download, so many records in the server->client direction.
# curl sends all of client.pem, leaf and intermediate, as its chain.
case_curl_get() {
	local www=$TMP/www got=$TMP/curl.got mark rc
	mkdir -p "$www"
	random_file "$www/blob" $((4 << 20))
	start_http curl "$www" || return 1
	start_kmtlsd curl "$H_PORT" || return 1
	mark=$(log_mark)
	KTLS_TX_BEFORE=$(tls_stat TlsTxSw)
	curl_tls --fail --cert "$PKI/client.pem" --key "$PKI/client.key" \
		-o "$got" "https://127.0.0.1:$K_PORT/blob" 2> "$TMP/curl.err"
	rc=$?
	KTLS_TX_AFTER=$(tls_stat TlsTxSw)
	handshake_line "$mark" | sed 's/^/kmtlsd: /' >> "$DIAG"
	if [ "$rc" -ne 0 ]; then
		say "curl failed with $rc:"
		say_file "$TMP/curl.err"
		say_file "$K_LOG" 5
		return 1
	fi
	if ! cmp -s "$www/blob" "$got"; then
		say "downloaded file differs: $(stat -c %s "$got") bytes, $(cmp "$www/blob" "$got" 2>&1)"
		return 1
	fi
	say "4 MiB identical"
}

# 1b: with kTLS in the kernel, the download must have been encrypted there.
case_curl_ktls() {
	if [ ! -r "$TLS_STAT" ]; then
		SKIP="no $TLS_STAT (no kTLS in this kernel)"
		return 0
	fi
	if [ -z "$KTLS_TX_BEFORE" ] || [ -z "$KTLS_TX_AFTER" ]; then
		say "no TlsTxSw reading around the curl download"
		return 1
	fi
	say "TlsTxSw $KTLS_TX_BEFORE -> $KTLS_TX_AFTER"
	[ "$KTLS_TX_AFTER" -gt "$KTLS_TX_BEFORE" ]
}

# 2: no client certificate: refused in the handshake, so http.server never
# receives the GET that curl sends right after its (TLS 1.3) handshake.
case_curl_no_cert() {
	local www=$TMP/www2 got=$TMP/curl2.got mark rc
	mkdir -p "$www"
	echo secret > "$www/blob"
	start_http nocert "$www" || return 1
	start_kmtlsd nocert "$H_PORT" || return 1
	mark=$(log_mark)
	curl_tls -o "$got" "https://127.0.0.1:$K_PORT/blob" 2> "$TMP/curl2.err"
	rc=$?
	say "curl exit $rc: $(head -n 1 "$TMP/curl2.err")"
	if [ "$rc" -eq 0 ]; then
		say "curl succeeded without a client certificate"
		return 1
	fi
	if [ -s "$got" ]; then
		say "curl received $(stat -c %s "$got") bytes"
		return 1
	fi
	if ! wait_log "$mark" "client sent no certificate"; then
		say "kmtlsd did not log 'client sent no certificate':"
		say_file "$K_LOG" 5
		return 1
	fi
	log_since "$mark" | grep -m1 -i 'no certificate' | sed 's/^/kmtlsd: /' >> "$DIAG"
	if grep -q '"GET ' "$H_LOG"; then
		say "http.server served a request:"
		say_file "$H_LOG" 3
		return 1
	fi
}

# The openssl client for the data cases. -nocommands: random data would
# otherwise be taken for s_client's command letters (Q quits, R renegotiates)
# at the start of a read. No -quiet, which implies -ign_eof: s_client must
# send close_notify and leave at the end of its input.
s_client_send() {
	local port=$1
	shift
	timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$port" \
		-CAfile "$PKI/ca.pem" -verify_return_error -nocommands -no_ign_eof "$@"
}

# send_through NAME SIZE CLIENT... -- KMTLSD_FLAGS...: SIZE random bytes on
# the client's stdin must reach a sink backend intact. CLIENT gets the port
# as its first argument. Leaves HS_LINE, kmtlsd's line for that client.
send_through() {
	local name=$1 size=$2 client=() mark rc ktls_before
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		client+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	HS_LINE=
	random_file "$TMP/$name.in" "$size"
	start_backend sink "$name" || return 1
	start_kmtlsd "$name" "$B_PORT" "$@" || return 1
	mark=$(log_mark)
	ktls_before=$(ktls_counts)
	"${client[@]}" "$K_PORT" < "$TMP/$name.in" > "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
	HS_LINE=$(handshake_line "$mark")
	[ -n "$HS_LINE" ] && say "kmtlsd: $HS_LINE"
	if [ "$rc" -ne 0 ]; then
		say "${client[0]} exited with $rc:"
		say_file "$TMP/$name.err" 8
		say_file "$K_LOG" 5
		return 1
	fi
	sink_got "$TMP/$name.in" || { say_file "$K_LOG" 5; return 1; }
	# Read after the sink's EOF, not the client's exit: a small input fits
	# in the socket buffers before kmtlsd has even installed kTLS.
	[ -r "$TLS_STAT" ] && say "kTLS TxSw RxSw: $ktls_before -> $(ktls_counts)"
	# A client that has sent everything and half-closed before kmtlsd
	# switches to kTLS leaves a socket the kernel will not give the tls ULP
	# (not ESTABLISHED): kmtlsd then relays through wolfSSL, which is allowed.
	log_since "$mark" | grep -m1 'kTLS not used' | sed 's/^/kmtlsd: /' >> "$DIAG"
	return 0
}

good_s_client() {
	s_client_send "$1" -cert "$PKI/client.pem" -key "$PKI/client.key" \
		-cert_chain "$PKI/intermediate.pem" "${@:2}"
}

s_client_tls13() { good_s_client "$1" -tls1_3; }

# 3: s_client sends only the leaf from -cert; -cert_chain adds the
# intermediate kmtlsd needs to reach the root.
case_openssl_tls13() {
	send_through ossl13 $((1 << 20)) s_client_tls13 -- || return 1
	case $HS_LINE in
	*TLSv1.3*) ;;
	*) say "kmtlsd did not log a TLS 1.3 handshake"; return 1 ;;
	esac
}

TLS12_CIPHER=ECDHE-ECDSA-AES128-GCM-SHA256

s_client_tls12() { good_s_client "$1" -tls1_2 -cipher "$TLS12_CIPHER"; }

# 4a: a TLS 1.2 client with a fixed suite, allowed by --tls-min 1.2.
case_openssl_tls12() {
	send_through ossl12 $((256 << 10)) s_client_tls12 -- --tls-min 1.2 || return 1
	case $HS_LINE in
	*TLSv1.2*AES128-GCM*) ;;
	*) say "kmtlsd did not log TLS 1.2 with AES128-GCM"; return 1 ;;
	esac
}

# refuse NAME PHRASE CLIENT... -- KMTLSD_FLAGS...: the client is refused,
# kmtlsd's log gives PHRASE for it, and the sink backend never saw a
# connection. The client gets a few bytes to send, so that a TLS 1.3 client,
# whose handshake ends before kmtlsd's verdict, does try to pass data.
refuse() {
	local name=$1 phrase=$2 client=() mark rc bad=0
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		client+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	start_backend sink "$name" || return 1
	start_kmtlsd "$name" "$B_PORT" "$@" || return 1
	# From a file, not a pipe: a writer's SIGPIPE must not pass for the
	# client's failure under pipefail.
	printf 'must not reach the backend\n' > "$TMP/$name.in"
	mark=$(log_mark)
	"${client[@]}" "$K_PORT" < "$TMP/$name.in" > "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
	say "client exit $rc: $(grep -m1 -iE 'alert|error' "$TMP/$name.err")"
	# 124: the client waited for the whole timeout, so nothing refused it.
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		say "the client was not refused"
		bad=1
	fi
	if wait_log "$mark" "$phrase"; then
		log_since "$mark" | grep -m1 -i -- "$phrase" | sed 's/^/kmtlsd: /' >> "$DIAG"
	else
		say "kmtlsd did not log '$phrase':"
		say_file "$K_LOG" 5
		bad=1
	fi
	# kmtlsd first, so any relay it had started has ended by the count.
	stop_pid "$K_PID"
	backend_untouched || bad=1
	return "$bad"
}

# 4b: kmtlsd defaults to TLS 1.3 only.
case_openssl_tls12_refused() {
	refuse tls13only "no shared protocol version" s_client_tls12 --
}

gnutls_send() {
	timeout "$CLIENT_TIMEOUT" gnutls-cli --x509cafile "$PKI/ca.pem" \
		--x509certfile "$PKI/client.pem" --x509keyfile "$PKI/client.key" \
		--sni-hostname localhost --verify-hostname localhost \
		-p "$1" "${@:2}" 127.0.0.1
}

gnutls_chacha() {
	gnutls_send "$1" --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305'
}

# 5a: GnuTLS sends the whole chain from its certificate file.
case_gnutls() {
	send_through gnutls $((1 << 20)) gnutls_send --
}

# 5b: ChaCha20-Poly1305, the other cipher kTLS does in the kernel.
case_gnutls_chacha() {
	send_through chacha $((1 << 20)) gnutls_chacha -- || return 1
	case $HS_LINE in
	*[Cc][Hh][Aa][Cc][Hh][Aa]20*) ;;
	*) say "kmtlsd's line for the client does not name ChaCha20"; return 1 ;;
	esac
}

# 6 control: the same allow-list lets the good client through, so the
# policy refusal below is about the certificate and not the flag.
case_policy_good() {
	send_through policy_good $((64 << 10)) s_client_tls13 -- \
		--allow-uri 'spiffe://example.org/*'
}

# s_client for a bad certificate: -ign_eof keeps it reading after its input
# ends, so it leaves on kmtlsd's alert (exit 1) and only an accepted
# connection would run into the timeout.
bad_s_client() {
	local port=$1 which=$2
	shift 2
	timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$port" \
		-CAfile "$PKI/ca.pem" -nocommands -ign_eof \
		-cert "$PKI/bad/$which.pem" -key "$PKI/bad/$which.key" "$@"
}

# The leaves mkpki.sh chains to the intermediate get it sent along, so each
# is refused for its own flaw and not for a chain kmtlsd cannot build.
bad_chained() { bad_s_client "$1" "$BAD" -cert_chain "$PKI/intermediate.pem"; }
bad_alone() { bad_s_client "$1" "$BAD"; }

# 6: case_bad WHICH SENDER PHRASE [KMTLSD_FLAGS...]
case_bad() {
	BAD=$1
	local sender=$2 phrase=$3
	shift 3
	refuse "bad_$BAD" "$phrase" "$sender" -- "$@"
}

# ---- setup -----------------------------------------------------------------

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-peers.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	need_files -x "$KMTLSD" "$BACKEND" || bail "$MISSING missing (make userspace)"
	need_tools openssl curl gnutls-cli timeout cmp sha256sum "$PY" || bail "$MISSING not installed"
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup
	echo "# $(openssl version | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2), $(gnutls-cli --version | head -n1), kernel $(uname -r)"

	run_case curl_get_4MiB case_curl_get
	run_case curl_get_ktls_tx case_curl_ktls
	run_case curl_no_client_cert_refused case_curl_no_cert
	run_case openssl_tls13_1MiB case_openssl_tls13
	run_case openssl_tls12_ecdhe_ecdsa_aes128gcm case_openssl_tls12
	run_case openssl_tls12_refused_by_tls13_only case_openssl_tls12_refused
	run_case gnutls_1MiB case_gnutls
	run_case gnutls_chacha20_1MiB case_gnutls_chacha
	run_case bad_expired case_bad expired bad_chained "certificate expired"
	run_case bad_notyet case_bad notyet bad_chained "certificate not yet valid"
	run_case bad_revoked case_bad revoked bad_chained "revoked: serial"
	run_case bad_serveronly case_bad serveronly bad_chained "wrong key usage"
	run_case bad_selfsigned case_bad selfsigned bad_alone "self-signed and not in the CA bundle"
	run_case bad_otherca case_bad otherca bad_alone "unknown CA: issuer .*kmtls unknown root"
	run_case bad_nointer case_bad nointer bad_alone "unknown CA: issuer .*intermediate"
	run_case bad_policy case_bad policy bad_chained "not allowed by policy" \
		--allow-uri 'spiffe://example.org/*'
	run_case good_client_passes_policy case_policy_good

	echo "# $failures of $NTESTS failed, $((SECONDS - started)) s"
	[ "$failures" -eq 0 ]
}

main "$@"
