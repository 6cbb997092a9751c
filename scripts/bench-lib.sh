#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared by bench.sh (host) and bench-vm.sh (guest): the three TLS
# terminators (kmtlsd, nginx stream, stunnel4) behind one start/stop
# interface, the echo backend, the client, and the server-CPU meter.
# Sourced, not run. The caller sets TOP and calls bench_lib_init first.
#
# Every process started here is recorded in BENCH_PIDS and stopped by the
# EXIT trap, so an interrupted bench leaves nothing listening behind.
#
# Results come back in globals (BACKEND_PORT, SERVER_PID, SERVER_PORT, CPU_S,
# WALL_S, BENCH_OUT, ...), which shellcheck cannot see being used.
# shellcheck disable=SC2034

BENCH_PIDS=()
PY=/usr/bin/python3
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
TICK=$(getconf CLK_TCK)

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# bench_lib_init: paths, a private temp dir, and the trap that cleans up.
bench_lib_init() {
	BUILD=${BUILD:-$TOP/build}
	OUT=${KMTLS_OUT:-$BUILD/out}
	KMTLSD=$OUT/bin/kmtlsd
	# KMTLS_BENCH points at another load generator build (or a stand-in).
	CLIENT=${KMTLS_BENCH:-$OUT/bin/kmtls-bench}
	BACKEND_BIN=$OUT/selftests/progs/test_backend
	BENCH_OUT=$BUILD/bench
	BENCH_TMP=$(mktemp -d /tmp/kmtls-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_cleanup() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do
		kill_tree "$pid"
	done
	[ -n "${POLICY_RC:-}" ] && rm -f "$POLICY_RC"
	rm -rf "$BENCH_TMP"
}

# ---- processes ------------------------------------------------------------

# descendants PID: PID and every process below it, one per line. nginx's
# worker is the master's child; stunnel's threads are all in one process.
descendants() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
	{
		pid = $1
		sub(/^.*\) /, "")	# comm may hold spaces and parentheses
		parent[pid] = $2
	}
	END {
		if (!(root in parent))
			exit
		inside[root] = 1
		do {
			grew = 0
			for (p in parent)
				if (!(p in inside) && (parent[p] in inside)) {
					inside[p] = 1
					grew = 1
				}
		} while (grew)
		for (p in inside)
			print p
	}'
}

# tree_ticks PID: utime + stime, in clock ticks, of PID and its descendants.
# /proc/PID/stat of a process counts all its threads.
tree_ticks() {
	local pids
	pids=$(descendants "$1" | tr '\n' ' ')
	[ -n "$pids" ] || bench_die "process $1 is gone"
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pids="$pids" '
	BEGIN { n = split(pids, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1 }
	($1 in want) { sub(/^.*\) /, ""); sum += $12 + $13 }
	END { printf "%d\n", sum }'
}

# kill_tree PID: TERM the process and its descendants, KILL what is left
# after 5 s. Collected first: once the parent dies its children move away.
kill_tree() {
	local pids p i
	pids=$(descendants "$1")
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for i in $(seq 50); do
		for p in $pids; do
			kill -0 "$p" 2>/dev/null && break
			p=
		done
		[ -z "$p" ] && break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

forget_pid() {
	local keep=() p
	for p in "${BENCH_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_listen PORT PID LOG: until 127.0.0.1:PORT is in LISTEN state. Read
# from /proc/net/tcp rather than probed with a connect, which every server
# would count and log as a failed handshake.
wait_listen() {
	local hex i
	hex=$(printf '0100007F:%04X' "$1")
	for i in $(seq 200); do
		awk -v a="$hex" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp && return 0
		kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; bench_die "server exited before listening"; }
		sleep 0.05
	done
	tail -n 20 "$3" >&2
	bench_die "nothing listens on 127.0.0.1:$1 after 10 s"
}

# ---- backend --------------------------------------------------------------

# start_backend: the echo backend every server relays to, on the client CPU.
# Sets BACKEND_PORT.
start_backend() {
	local ready=$BENCH_TMP/backend.port
	taskset -c "$CLIENT_CPU" "$BACKEND_BIN" --listen 127.0.0.1:0 --mode echo \
		--ready-file "$ready" > "$BENCH_TMP/backend.log" 2>&1 &
	BENCH_PIDS+=($!)
	for _ in $(seq 200); do
		[ -s "$ready" ] && break
		sleep 0.05
	done
	[ -s "$ready" ] || bench_die "test_backend did not start: $(cat "$BENCH_TMP/backend.log")"
	BACKEND_PORT=$(head -n1 "$ready")
}

# ---- servers --------------------------------------------------------------
# start_server NAME PKI: NAME is kmtlsd, nginx or stunnel; PKI a directory
# from mkpki.sh. Starts it on the server CPU in its own directory, waits
# until it listens, sets SERVER_PID and SERVER_PORT. Every server logs
# warnings only, so no one pays for a line per connection.

start_server() {
	local name=$1 pki=$2
	SERVER_DIR=$BENCH_TMP/$name
	rm -rf "$SERVER_DIR"
	mkdir -p "$SERVER_DIR"
	SERVER_PORT=$(free_port)
	"server_cmd_$name" "$pki" > "$SERVER_DIR/cmd"
	# shellcheck disable=SC2046
	taskset -c "$SERVER_CPU" $(cat "$SERVER_DIR/cmd") > "$SERVER_DIR/log" 2>&1 &
	SERVER_PID=$!
	BENCH_PIDS+=("$SERVER_PID")
	wait_listen "$SERVER_PORT" "$SERVER_PID" "$SERVER_DIR/log"
}

stop_server() {
	kill_tree "$SERVER_PID"
	forget_pid "$SERVER_PID"
}

# Each server_cmd_NAME writes its config (if any) and prints its command
# line; paths come from mktemp and the build tree, so word splitting is safe.
server_cmd_kmtlsd() {
	echo "$KMTLSD --foreground --workers 1 --log-level warning" \
		"--listen 127.0.0.1:$SERVER_PORT --backend 127.0.0.1:$BACKEND_PORT" \
		"--cert $1/server.pem --key $1/server.key --ca $1/ca.pem ${KMTLSD_ARGS:-}"
}

server_cmd_nginx() {
	local conf=$SERVER_DIR/nginx.conf
	cat > "$conf" <<EOF
# Debian's nginx as a TCP TLS terminator, one worker like kmtlsd --workers 1.
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
worker_processes 1;
user root;
pid $SERVER_DIR/nginx.pid;
error_log $SERVER_DIR/error.log warn;
events { worker_connections 4096; }
stream {
	server {
		listen 127.0.0.1:$SERVER_PORT ssl;
		ssl_certificate $1/server.pem;
		ssl_certificate_key $1/server.key;
		ssl_client_certificate $1/ca.pem;
		ssl_verify_client on;
		ssl_verify_depth 3;
		ssl_protocols TLSv1.3;
		ssl_session_tickets on;
		proxy_pass 127.0.0.1:$BACKEND_PORT;
	}
}
EOF
	echo "nginx -p $SERVER_DIR -e $SERVER_DIR/error.log -c $conf"
}

server_cmd_stunnel() {
	local conf=$SERVER_DIR/stunnel.conf
	cat > "$conf" <<EOF
; Debian's stunnel4 as a TLS terminator requiring a verified client chain.
foreground = yes
pid =
debug = warning
output = $SERVER_DIR/stunnel.log
[bench]
accept = 127.0.0.1:$SERVER_PORT
connect = 127.0.0.1:$BACKEND_PORT
cert = $1/server.pem
key = $1/server.key
CAfile = $1/ca.pem
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
EOF
	echo "stunnel4 $conf"
}

# ---- client ---------------------------------------------------------------

# run_client OUTFILE ARGS...: kmtls-bench on the client CPU (or RUN_CPU),
# JSON to OUTFILE.
# In the background so a signal reaches the trap at once, and under a
# timeout so a hung client cannot hang the bench.
run_client() {
	local out=$1 pid rc=0
	shift
	timeout -k 5 "${CLIENT_TIMEOUT:-120}" taskset -c "${RUN_CPU:-$CLIENT_CPU}" "$CLIENT" "$@" \
		> "$out" 2> "$out.err" &
	pid=$!
	BENCH_PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget_pid "$pid"
	# It exits 1 with a full report when no handshake completed, 3 when the
	# run is not valid (too many failures, an open loop short of its --rate;
	# the reasons are on stderr and in the JSON's invalid_reasons): on a
	# stalled machine that is a data point (a round with zero), not a reason
	# to throw away the runs before it. No report at all is.
	if ! "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; then
		cat "$out.err" >&2
		bench_die "kmtls-bench $* exited $rc without a JSON result"
	fi
	[ "$rc" = 0 ] || bench_log "bench: kmtls-bench exited $rc (1: no handshake completed, 3: not a valid run): $(head -c 300 "$out.err")"
}

# core_ticks CPU: ticks that CPU was busy (not idle, not iowait) since boot.
core_ticks() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# measure_client OUTFILE ARGS...: run_client while metering the server over
# exactly the client's lifetime. Sets CPU_S (server CPU seconds), WALL_S,
# and CORE_S: how long the server's CPU was busy with anything, so the
# difference shows what other load on a shared machine took from it.
measure_client() {
	local t0 t1 c0 c1 k0 k1
	c0=$(tree_ticks "$SERVER_PID")
	k0=$(core_ticks "$SERVER_CPU")
	t0=$(date +%s.%N)
	run_client "$@"
	t1=$(date +%s.%N)
	k1=$(core_ticks "$SERVER_CPU")
	c1=$(tree_ticks "$SERVER_PID")
	CPU_S=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" 'BEGIN { printf "%.3f", (b - a) / t }')
	CORE_S=$(awk -v a="$k0" -v b="$k1" -v t="$TICK" 'BEGIN { printf "%.3f", (b - a) / t }')
	WALL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# record FILE KEY=VALUE... : append one JSON line {KEY: VALUE, ..., "bench": <client JSON>}
# VALUEs that parse as JSON numbers stay numbers.
record() {
	local file=$1 bench=$2
	shift 2
	"$PY" - "$bench" "$@" >> "$file" <<'EOF'
import json, sys
rec = {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        rec[k] = json.loads(v)
    except ValueError:
        rec[k] = v
rec["bench"] = json.load(open(sys.argv[1]))
print(json.dumps(rec, sort_keys=True))
EOF
}

# ---- setup ----------------------------------------------------------------

# install_anchors: nginx with the stream module and stunnel4 from Debian, if
# missing. Their packages would start system services (nginx on port 80):
# a temporary policy-rc.d forbids that, and whatever started anyway is
# stopped and disabled, with or without systemd.
install_anchors() {
	local need=() p policy=/usr/sbin/policy-rc.d
	for p in nginx libnginx-mod-stream stunnel4; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || need+=("$p")
	done
	[ ${#need[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || bench_die "need root to install ${need[*]}"
	bench_log "bench: installing ${need[*]}"
	if [ ! -e "$policy" ]; then
		POLICY_RC=$policy	# bench_cleanup removes it should we die here
		printf '#!/bin/sh\nexit 101\n' > "$policy"
		chmod 755 "$policy"
	fi
	apt-get update -qq || true
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
		> "$BENCH_TMP/apt.log" 2>&1; then
		cat "$BENCH_TMP/apt.log" >&2
		bench_die "apt-get install ${need[*]} failed"
	fi
	[ -n "${POLICY_RC:-}" ] && rm -f "$POLICY_RC"
	POLICY_RC=
	for p in nginx stunnel4; do
		quiesce_service "$p"
	done
}

quiesce_service() {
	if [ -d /run/systemd/system ]; then
		systemctl stop "$1" >/dev/null 2>&1 || true
		systemctl disable "$1" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$1" ]; then
		"/etc/init.d/$1" stop >/dev/null 2>&1 || true
		update-rc.d "$1" disable >/dev/null 2>&1 || true
	fi
}

# cpu_share CPU: the percentage of CPU a busy loop pinned there gets over
# half a second. Below 100 other load shares the core: context for a
# noisy machine's absolute numbers.
cpu_share() {
	taskset -c "$1" "$PY" -c '
import time
w, c = time.monotonic(), time.process_time()
while time.monotonic() - w < 0.5:
    pass
print(round(100 * (time.process_time() - c) / (time.monotonic() - w)))'
}

# pin_self: the harness and everything it starts run on the client CPU
# unless told otherwise, so only the server runs on the server CPU.
pin_self() {
	[ "$(nproc)" -ge 2 ] || bench_die "needs 2 CPUs (server on one, client on the other)"
	taskset -pc "$CLIENT_CPU" $$ > /dev/null
}
