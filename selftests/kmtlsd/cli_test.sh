#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsd's [kmtlsd] flags (--workers, --log-level, --status-listen) are
# checked like the config file's keys of the same names: a bad value is
# refused with the flag and what it expects (nothing runs), a good one
# passes --check-config, whatever its case where the file's does too.
# Listener flags without --listen are an error that says so (no file is
# read then), and so is a listener flag given twice, unless its values
# append (--allow-uri, --crl ...). A status endpoint beyond loopback is
# served with a warning.
# Prints KTAP.
#
#   KMTLS_OUT  build output with bin/kmtlsd (default: <repo>/build/out)
#   KMTLS_PKI  test PKI (default: <repo>/build/pki)
set -uo pipefail

export LC_ALL=C
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
PKI=$(realpath -m "${KMTLS_PKI:-$TOP/build/pki}")
KMTLSD=$OUT/bin/kmtlsd

# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

TMP=$(mktemp -d /tmp/kmtls-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# shellcheck disable=SC2034  # ktap.sh writes the diagnostics there
DIAG=$TMP/diag

ktap_plan 5

# check FLAGS...: kmtlsd --check-config with FLAGS and a listener given by
# flags; its status in $rc, its stderr in $TMP/err.
check() {
	"$KMTLSD" --check-config "$@" --listen 127.0.0.1:1 --backend 127.0.0.1:2 \
		--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" \
		> /dev/null 2> "$TMP/err"
	rc=$?
}

bad_values_refused() {
	local ok=0 flag value want
	while IFS='|' read -r flag value want; do
		check "$flag" "$value"
		if [ "$rc" -eq 0 ] || ! grep -qF -- "$want" "$TMP/err"; then
			say "$flag $value: status $rc, wanted \"$want\":"
			say_file "$TMP/err"
			ok=1
		fi
	done <<'CASES'
--workers|8x|kmtlsd: --workers: workers = "8x": expected a whole number from 0 (one per CPU) to 4096
--workers|-1|--workers: workers = "-1": expected
--workers|4097|--workers: workers = "4097": expected
--log-level|loud|kmtlsd: --log-level: log-level = "loud": expected error, warning, info or debug
--status-listen|garbage|kmtlsd: --status-listen: status-listen = "garbage": expected a local address
--status-listen|127.0.0.1:99999|--status-listen: status-listen = "127.0.0.1:99999"
CASES
	return $ok
}

good_values_pass() {
	local ok=0 flag value
	while IFS='|' read -r flag value; do
		check "$flag" "$value"
		if [ "$rc" -ne 0 ]; then
			say "$flag $value: status $rc:"
			say_file "$TMP/err"
			ok=1
		fi
	done <<'CASES'
--workers|0
--workers|4096
--log-level|DEBUG
--log-level|warning
--status-listen|127.0.0.1:9999
--status-listen|unix:/tmp/kmtls-cli-status.sock
CASES
	return $ok
}

listener_flags_without_listen() {
	"$KMTLSD" --check-config --ktls off > /dev/null 2> "$TMP/err"
	rc=$?
	if [ "$rc" -eq 0 ] || ! grep -qF "listener flags without --listen" "$TMP/err"; then
		say "status $rc:"
		say_file "$TMP/err"
		return 1
	fi
}

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# kmtlsd serving for a moment with --status-listen $1; its log in $TMP/log.
serve_briefly() {
	timeout 3 "$KMTLSD" --foreground --status-listen "$1" --listen "127.0.0.1:$(free_port)" \
		--backend 127.0.0.1:2 --cert "$PKI/server.pem" --key "$PKI/server.key" \
		--ca "$PKI/ca.pem" > /dev/null 2> "$TMP/log"
}

status_beyond_loopback_warned() {
	serve_briefly "0.0.0.0:$(free_port)"
	if ! grep -q "status on 0.0.0.0" "$TMP/log" ||
	   ! grep -q "is not a loopback address: anyone who reaches it reads the metrics" "$TMP/log"; then
		say "0.0.0.0:"
		say_file "$TMP/log"
		return 1
	fi
	serve_briefly "127.0.0.1:$(free_port)"
	if ! grep -q "status on 127.0.0.1" "$TMP/log" || grep -q "not a loopback address" "$TMP/log"; then
		say "127.0.0.1:"
		say_file "$TMP/log"
		return 1
	fi
}

flag_twice() {
	check --cert "$PKI/client.pem"
	if [ "$rc" -eq 0 ] || ! grep -qF "kmtlsd: --cert is given twice: keep one" "$TMP/err"; then
		say "--cert twice: status $rc:"
		say_file "$TMP/err"
		return 1
	fi
	check --allow-uri 'spiffe://a/*' --allow-uri 'spiffe://b/*'
	if [ "$rc" -ne 0 ]; then
		say "--allow-uri twice: status $rc:"
		say_file "$TMP/err"
		return 1
	fi
}

run_case bad_values_refused bad_values_refused
run_case good_values_pass good_values_pass
run_case listener_flags_without_listen listener_flags_without_listen
run_case status_beyond_loopback_warned status_beyond_loopback_warned
run_case flag_twice flag_twice
ktap_exit
