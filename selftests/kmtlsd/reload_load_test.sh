#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Reload under load: two kmtls-bench runs, full and resumed handshakes, for
# about ten seconds against kmtlsd (two workers, a CRL, shared ticket keys)
# while the test sends SIGHUP every half second and rotates the ticket keys
# once (a new key first, the old one kept). No handshake may fail, on
# either side; every SIGHUP must have been applied ("reloaded" in the log,
# no reload error); resumption must keep working across the reloads and
# the rotation. Prints KTAP and exits non-zero when a case fails.
#
# Only 127.0.0.1 is used; every process and file made here goes at the end.
#
#   KMTLS_OUT  build output with bin/kmtlsd, bin/kmtls-bench and
#              selftests/progs/test_backend (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

PKI=$PKI_SRC
DURATION=10
RELOADS=20		# one every 0.5 s
ROTATE_AT=10		# the ticket-key rotation goes with this SIGHUP
START_TIMEOUT=30
WAIT_POLL=0.05

NTESTS=4

DIAG=
K_PID=
K_LOG=
S_PORT=

reloads() { grep -c 'reloaded certificates' "$K_LOG" 2>/dev/null; }
reloads_at_least() { [ "$(reloads)" -ge "$1" ]; }

# A key file of @2 random keys, or @2 keys with the first new and the rest
# from the old file (the rotation operators do).
new_keys() { head -c 80 /dev/urandom > "$1.tmp" && chmod 600 "$1.tmp" && mv "$1.tmp" "$1"; }
rotate_keys() {
	{ head -c 80 /dev/urandom; head -c 80 "$1"; } > "$1.tmp" && chmod 600 "$1.tmp" &&
		mv "$1.tmp" "$1"
}

launch_kmtlsd() {
	K_PORT=$(free_port)
	S_PORT=$(free_port)
	"$KMTLSD" --foreground --workers 2 --log-level info \
		--listen "127.0.0.1:$K_PORT" --backend "127.0.0.1:$B_PORT" \
		--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" \
		--crl "$PKI/crl.pem" --ticket-keys "$TMP/ticket.keys" \
		--status-listen "127.0.0.1:$S_PORT" > /dev/null 2> "$K_LOG" &
}

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-reload-test.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$KMTLSD" "$BENCH" "$BACKEND" || bail "$MISSING missing (make userspace)"
	[ -s "$PKI/client.pem" ] && [ -s "$PKI/crl.pem" ] || bail "no test PKI at $PKI (selftests/lib/mkpki.sh)"
	[ -x "$PY" ] || bail "$PY not installed"
	new_keys "$TMP/ticket.keys" || bail "cannot write ticket keys"
	start_backend echo backend || bail "test_backend did not start"
	K_LOG=$TMP/kmtlsd.log
	start_daemon "kmtlsd did not start:" kmtlsd_up "$K_LOG" launch_kmtlsd ||
		bail "kmtlsd did not start"
	K_PID=$D_PID
}

# bench NAME MODE: in the background, JSON to $TMP/NAME.json; pid in $!.
bench() {
	timeout -k 5 60 "$BENCH" --json --connect "127.0.0.1:$K_PORT" --mode "$2" \
		--cert "$PKI/client.pem" --key "$PKI/client.key" --ca "$PKI/ca.pem" \
		--concurrency 4 --duration "$DURATION" --warmup 0.5 \
		> "$TMP/$1.json" 2> "$TMP/$1.err" &
}

# The load, the reloads and the rotation; ends when both runs have.
run_load() {
	local full resumed i
	bench full full
	full=$!
	bench resumed resumed
	resumed=$!
	PIDS+=("$full" "$resumed")
	sleep 0.5	# past the warmup: reload while handshakes are counted
	for ((i = 1; i <= RELOADS; i++)); do
		[ "$i" -eq "$ROTATE_AT" ] && rotate_keys "$TMP/ticket.keys"
		kill -HUP "$K_PID"
		# One at a time: two pending SIGHUPs would be one signal.
		wait_until 3 reloads_at_least "$i" || break
		sleep 0.45
	done
	SENT=$((i > RELOADS ? RELOADS : i))
	wait "$full"
	FULL_RC=$?
	wait "$resumed"
	RESUMED_RC=$?
}

# expect NAME EXPR...: Python expressions over the bench JSON (d).
expect() {
	local name=$1
	shift
	"$PY" - "$TMP/$name.json" "$@" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    print("no JSON from kmtls-bench: %s" % e)
    sys.exit(1)
bad = [e for e in sys.argv[2:] if not eval(e, {}, {"d": d})]
for e in bad:
    print("expected: " + e)
print("%s: ok %s, failed %s, resumed %s, failures %s" % (
    sys.argv[1].rsplit("/", 1)[-1], d.get("ok"), d.get("failed"), d.get("resumed"),
    d.get("failures")))
sys.exit(1 if bad else 0)
EOF
}

status_failed() {
	"$PY" - "$S_PORT" <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5))
hs = d["handshakes"]
print("kmtlsd: ok %d, failed %d, resumed %d" % (hs["ok"], hs["failed"], hs["resumed"]))
sys.exit(0 if hs["failed"] == 0 and hs["ok"] > 0 and hs["resumed"] > 0 else 1)
EOF
}

case_no_failures() {
	local msg
	msg=$({ expect full 'd["ok"] > 0' 'd["failed"] == 0' 'd["failures"] == {}'
		expect resumed 'd["ok"] > 0' 'd["failed"] == 0' 'd["failures"] == {}'; } 2>&1)
	if [ "$FULL_RC" -eq 0 ] && [ "$RESUMED_RC" -eq 0 ] &&
	   ! grep -q 'not ok\|expected:' <<< "$msg" && ! grep -q 'no JSON' <<< "$msg"; then
		ok "no_failed_handshakes_on_the_clients"
		diag <<< "$msg"
	else
		not_ok "no_failed_handshakes_on_the_clients" "bench exit $FULL_RC/$RESUMED_RC
$msg
$(tail -n 5 "$TMP/full.err" "$TMP/resumed.err" 2>/dev/null)"
	fi
}

case_resumption() {
	local msg
	if msg=$(expect resumed 'd["resumed"] >= 0.5 * d["ok"]' 2>&1); then
		ok "resumption_survives_reloads_and_rotation"
	else
		not_ok "resumption_survives_reloads_and_rotation" "$msg"
	fi
}

case_reloads() {
	local n errs
	n=$(reloads)
	errs=$(grep -c 'reload:' "$K_LOG")
	if [ "$SENT" -eq "$RELOADS" ] && [ "$n" -eq "$RELOADS" ] && [ "$errs" -eq 0 ]; then
		ok "every_reload_applied"
		echo "$n SIGHUPs, $n reloads" | diag
	else
		not_ok "every_reload_applied" "sent $SENT of $RELOADS SIGHUPs, $n reloaded, $errs reload errors
$(grep 'reload' "$K_LOG" | tail -n 5)"
	fi
}

case_server_side() {
	local msg
	if msg=$(status_failed 2>&1) && alive "$K_PID"; then
		ok "no_failed_handshakes_in_kmtlsd"
		diag <<< "$msg"
	else
		not_ok "no_failed_handshakes_in_kmtlsd" "$msg
$(grep -v 'sandbox' "$K_LOG" | grep 'warning\|error' | tail -n 5)"
	fi
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup
	echo "# kmtlsd on 127.0.0.1:$K_PORT (2 workers), $RELOADS SIGHUPs 0.5 s apart during ${DURATION} s of full and resumed handshakes"
	run_load
	case_no_failures
	case_resumption
	case_reloads
	case_server_side
	ktap_exit
}

main "$@"
