#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtls-bench against servers that misbehave (Python stand-ins: one that
# hangs every 20th connection, one that never answers, one without session
# tickets, one that drops every 10th connection) and against its own
# limits: it must count what did not finish, tell the client's own errors
# from the server's, not spin on a dead port, refuse bad options and a
# descriptor limit too small, and exit non-zero, saying why, when the
# numbers do not mean what they claim (exit 3; 1 when nothing completed).
# kmtlsd's part is selftests/kmtlsd/bench_test.sh. Prints KTAP.
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

NTESTS=14
started=$SECONDS
DIAG=
declare -A SRV=()

# The stand-in servers: TLS 1.3 with client certificates, one thread each
# connection; each binds port 0 and writes its port to a ready file.
write_server() {
	cat > "$TMP/srv.py" <<'EOF'
import os, socket, ssl, sys, threading

pki, mode, ready = sys.argv[1:4]
kind, _, arg = mode.partition(":")
every = int(arg or 0)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1024)
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(ready + ".tmp", ready)
if kind == "silent":            # TCP completes in the kernel; nothing more
    threading.Event().wait()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(pki + "/server.pem", pki + "/server.key")
ctx.load_verify_locations(pki + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
if kind == "noticket":
    ctx.num_tickets = 0
held = []
n = 0

def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        while True:
            d = s.recv(65536)
            if not d:
                break
            s.sendall(d)
        s.unwrap()
    except (OSError, ValueError):
        pass
    c.close()

while True:
    c, _ = ls.accept()
    n += 1
    if kind == "hang" and n % every == 0:
        held.append(c)          # accepted, never answered
    elif kind == "drop" and n % every == 0:
        c.close()               # closed before the TLS handshake
    else:
        threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
}

# start_server MODE: the stand-in in MODE; its port in SRV[MODE].
start_server() {
	local ready=$TMP/srv.${1/:/-}.port
	"$PY" "$TMP/srv.py" "$PKI" "$1" "$ready" > /dev/null 2> "$ready.err" &
	PIDS+=($!)
	if ! wait_until "$START_TIMEOUT" test -s "$ready"; then
		say "the $1 server did not start:"
		say_file "$ready.err"
		return 1
	fi
	SRV[$1]=$(cat "$ready")
}

# fdhog LIMIT FREE CMD...: CMD with RLIMIT_NOFILE at LIMIT (soft and hard)
# and all descriptors but FREE already taken (inherited, /dev/null).
write_fdhog() {
	cat > "$TMP/fdhog.py" <<'EOF'
import os, resource, sys
limit, free = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
fds = []
while True:
    try:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        break
for fd in fds[:free]:
    os.close(fd)
for fd in fds[free:]:
    os.set_inheritable(fd, True)
os.execv(sys.argv[3], sys.argv[3:])
EOF
}

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-bench-valid.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$BENCH" || bail "$MISSING missing (make userspace)"
	need_tools timeout openssl "$PY" || bail "$MISSING not installed"
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
	write_server
	write_fdhog
	for m in echo hang:20 silent noticket drop:10; do
		start_server "$m" || bail "the $m stand-in server did not start: $(cat "$DIAG")"
	done
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

# bench NAME SERVER ARGS...: a --json run against stand-in SERVER.
bench() {
	local name=$1 srv=$2
	shift 2
	run "$name" "$BENCH" --json --connect "127.0.0.1:${SRV[$srv]}" "${KEYS[@]}" "$@"
}

# rc_is NAME WANT: the exit status was WANT; else say so with stderr.
rc_is() {
	[ "$RC" -eq "$2" ] && return 0
	say "exit status $RC, expected $2"
	say_file "$TMP/$1.err"
	return 1
}

# expect NAME EXPR...: Python expressions over the JSON in $TMP/NAME.out
# (d: the object, why: its invalid_reasons joined), all must hold.
expect() {
	local name=$1
	shift
	"$PY" "$(dirname "$0")/../lib/bench_expect.py" "$TMP/$name.out" "$@" >> "$DIAG" 2>&1
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
		"--timeout 0|--timeout 0: a number of seconds"
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
		--duration 0.1 --warmup 0 --json --allow-failures --allow-shortfall
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

# More connections than descriptors and the hard limit is in the way:
# refused at the start, not EMFILE counted as the server's failures.
case_nofile_refused() {
	run nofile bash -c 'ulimit -n 64 && exec "$@"' - "$BENCH" --json \
		--connect "127.0.0.1:${SRV[echo]}" "${KEYS[@]}" --mode full --concurrency 100 \
		--duration 0.5 --warmup 0
	rc_is nofile 1 || return 1
	err_has nofile "--concurrency 100 needs" || return 1
	[ ! -s "$TMP/nofile.out" ] || { say "a run happened"; say_file "$TMP/nofile.out"; return 1; }
}

# Out of descriptors anyway (all but a few taken before it started): the
# client's errors, counted apart, and the run is not valid.
case_local_errors() {
	run local "$PY" "$TMP/fdhog.py" 128 6 "$BENCH" --json \
		--connect "127.0.0.1:${SRV[echo]}" "${KEYS[@]}" --mode full --concurrency 8 \
		--duration 1 --warmup 0.3
	rc_is local 3 || return 1
	expect local 'd["ok"] > 0' 'd["failed"] == 0' 'd["failures"] == {}' \
		'd["local_errors"] > 0' \
		'list(d["local_error_reasons"]) == ["socket: Too many open files"]' \
		'not d["valid"]' '"the client" in why'
}

# A dead port: every slot rests 10 ms after a refusal, no busy loop.
case_refused_backoff() {
	run refused "$BENCH" --json --connect "127.0.0.1:$(free_port)" "${KEYS[@]}" \
		--mode full --concurrency 2 --duration 1 --warmup 0
	rc_is refused 1 || return 1
	# 2 slots, 1 s, one try per 10 ms at most (was: tens of thousands)
	expect refused 'd["ok"] == 0' '0 < d["failed"] <= 2 * 100 * 1.2' \
		'list(d["failures"]) == ["connect: Connection refused"]' 'd["local_errors"] == 0'
}

# Every 20th connection hangs and the timeout is longer than the run: the
# slots end up stuck, and that shows, in JSON and in text.
case_stuck_counted() {
	bench stuck hang:20 --mode full --concurrency 4 --duration 2 --warmup 0 --timeout 10
	rc_is stuck 3 || return 1
	expect stuck 'd["ok"] > 0' 'd["unfinished"] == 4' 'd["unfinished_in"] == {"handshake": 4}' \
		'd["unfinished_oldest_s"] > 1' 'not d["valid"]' '"unfinished" in why' || return 1
	run stuck_text "$BENCH" --connect "127.0.0.1:${SRV[hang:20]}" "${KEYS[@]}" --mode full \
		--concurrency 4 --duration 1 --warmup 0 --timeout 10
	if ! grep -q '^  unfinished   4 still under way at the end (handshake 4)' \
		"$TMP/stuck_text.out" || ! grep -q '^  NOT VALID' "$TMP/stuck_text.out"; then
		say "text report:"
		say_file "$TMP/stuck_text.out"
		return 1
	fi
}

# A server that accepts nothing: timeouts within the run, all slots
# unfinished at the end, exit 1 with the reasons.
case_silent() {
	# one timeout each slot, at 0.6 s; the second would be after the end
	bench silent silent --mode full --concurrency 4 --duration 1 --warmup 0 --timeout 0.6
	rc_is silent 1 || return 1
	expect silent 'd["ok"] == 0' 'd["failed"] >= 4' \
		'list(d["failures"]) == ["timeout: handshake"]' \
		'd["unfinished"] == 4' 'd["unfinished_in"] == {"handshake": 4}' \
		'"no handshake completed" in why' || return 1
	err_has silent "the run is not valid: no handshake completed"
}

# --timeout gives stuck slots back; failures over 1% make the run invalid
# unless --allow-failures.
case_timeout_recycles() {
	bench recycle hang:20 --mode full --concurrency 4 --duration 1.5 --warmup 0 --timeout 0.2
	rc_is recycle 3 || return 1
	expect recycle 'd["ok"] > 0' 'd["failed"] >= 4' \
		'list(d["failures"]) == ["timeout: handshake"]' '"failed" in why' || return 1
	bench recycle_ok hang:20 --mode full --concurrency 4 --duration 1.5 --warmup 0 \
		--timeout 0.2 --allow-failures
	rc_is recycle_ok 0 || return 1
	expect recycle_ok 'd["valid"]' 'd["failed"] >= 4' 'd["invalid_reasons"] == []'
}

# Every 10th connection dropped before TLS: 10% failed, not valid.
case_failures() {
	bench drop drop:10 --mode full --concurrency 4 --duration 1 --warmup 0.3
	rc_is drop 3 || return 1
	expect drop 'd["ok"] > 0' 'd["failed"] > 0.05 * (d["ok"] + d["failed"])' \
		'not d["valid"]' '"failed" in why'
}

# --mode resumed against a server without tickets resumes nothing.
case_no_resumption() {
	bench noticket noticket --mode resumed --concurrency 4 --duration 1 --warmup 0.3
	rc_is noticket 3 || return 1
	expect noticket 'd["ok"] > 0' 'd["resumed"] == 0' 'd["resumable"] > 0' \
		'not d["valid"]' '"could resume" in why'
}

# And against one with tickets, from the first connection on: each slot's
# first handshake is not one that could resume.
case_resumption_valid() {
	bench resumed echo --mode resumed --concurrency 4 --duration 1 --warmup 0
	rc_is resumed 0 || return 1
	expect resumed 'd["valid"]' 'd["resumable"] == d["ok"] - 4' \
		'd["resumed"] >= 0.9 * d["resumable"]'
}

# An open loop far above what the server does falls short of --rate: not
# valid, unless the overload is deliberate (--allow-shortfall).
case_shortfall() {
	bench short echo --mode full --concurrency 4 --duration 1 --warmup 0.3 --rate 20000
	rc_is short 3 || return 1
	expect short 'd["ok"] > 0' 'd["achieved_rate_per_s"] < 0.95 * 20000' 'd["backlog"] > 0' \
		'not d["valid"]' '"--rate" in why' || return 1
	bench short_ok echo --mode full --concurrency 4 --duration 1 --warmup 0.3 --rate 20000 \
		--allow-shortfall
	rc_is short_ok 0 || return 1
	expect short_ok 'd["valid"]'
}

# An open loop the server keeps up with is valid.
case_open_loop_valid() {
	bench open echo --mode full --concurrency 8 --duration 1.5 --warmup 0.5 --rate 40
	rc_is open 0 || return 1
	expect open 'd["valid"]' 'd["achieved_rate_per_s"] >= 0.95 * 40' 'd["failed"] == 0'
}

# The soft limit below what --concurrency needs, the hard one above: raised.
case_nofile_raised() {
	local hard
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] || [ "$hard" -ge 300 ] ||
		{ SKIP="hard descriptor limit $hard: cannot raise to 300"; return 0; }
	run raised bash -c 'ulimit -Sn 64 && exec "$@"' - "$BENCH" --json \
		--connect "127.0.0.1:${SRV[silent]}" "${KEYS[@]}" --mode full --concurrency 200 \
		--duration 0.3 --warmup 0 --timeout 10
	rc_is raised 1 || return 1
	expect raised 'd["local_errors"] == 0' 'd["unfinished"] == 200'
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup
	echo "# stand-in servers on 127.0.0.1: $(for m in "${!SRV[@]}"; do printf '%s %s, ' "$m" "${SRV[$m]}"; done)"

	run_case usage_errors case_usage
	run_case unresolvable_name case_resolver
	run_case descriptor_limit_refused case_nofile_refused
	run_case descriptor_limit_raised case_nofile_raised
	run_case local_errors_apart case_local_errors
	run_case refused_port_no_busy_loop case_refused_backoff
	run_case stuck_connections_counted case_stuck_counted
	run_case silent_server case_silent
	run_case timeout_recycles_slots case_timeout_recycles
	run_case failures_make_run_invalid case_failures
	run_case resumed_without_tickets_invalid case_no_resumption
	run_case resumed_with_tickets_valid case_resumption_valid
	run_case open_loop_shortfall_invalid case_shortfall
	run_case open_loop_valid case_open_loop_valid

	echo "# $failures of $NTESTS failed, $((SECONDS - started)) s"
	[ "$failures" -eq 0 ]
}

main "$@"
