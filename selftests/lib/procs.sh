# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The processes a shell selftest starts, sourced after env.sh and ktap.sh:
# each goes in PIDS and is stopped at exit with the test's directory TMP
# (cleanup_on_exit); daemons take ports picked free and are waited for
# until they are up, or dead. start_daemon and start_backend read
# START_TIMEOUT (seconds) and put their diagnostics in $DIAG (ktap.sh).

PIDS=()
TMP=
WAIT_POLL=0.1		# seconds between two tries of wait_until

# A zombie still answers kill -0; only a running process counts as alive.
alive() {
	local state
	state=$(sed -n 's/^.*) \(.\) .*$/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# forget PID: no longer ours to stop.
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM lets kmtlsd and the backend finish their logs and
# reports; SIGKILL after 10 s so a wedged process cannot hang the test.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	forget "$pid"
}

# stop_all: every process in PIDS, the last started first.
stop_all() {
	while [ ${#PIDS[@]} -gt 0 ]; do
		stop_pid "${PIDS[-1]}"
	done
}

# tmp_cleanup: $TMP, and the bpffs a case mounted on $TMP/bpffs.
tmp_cleanup() {
	[ -n "$TMP" ] || return 0
	mountpoint -q "$TMP/bpffs" 2>/dev/null && umount "$TMP/bpffs"
	rm -rf "$TMP"
}

cleanup() {
	stop_all
	tmp_cleanup
}

# cleanup_on_exit: cleanup (the test's own, when it defines one) at exit,
# and an interrupt is an exit.
cleanup_on_exit() {
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# wait_until SECONDS CMD...: poll CMD every $WAIT_POLL s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep "$WAIT_POLL"
	done
}

# until_up_or_dead CHECK PID: done when CHECK holds or PID has exited, so a
# daemon that failed to bind is noticed at once, not after the timeout.
until_up_or_dead() { "$1" || ! alive "$2"; }

# A port that was free a moment ago. A daemon that takes its port on the
# command line can lose a race for it with another process: start_daemon
# retries with a new port.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_daemon FAILMSG UP LOG CMD...: CMD starts a daemon in the background
# on ports it has just picked free; wait until UP holds, or the daemon died
# (someone took a port meanwhile) and CMD tries again, three times in all.
# Sets D_PID. On failure, FAILMSG and the tail of LOG are the diagnostics.
start_daemon() {
	local msg=$1 up=$2 log=$3 i
	shift 3
	for ((i = 0; i < 3; i++)); do
		"$@"
		D_PID=$!
		PIDS+=("$D_PID")
		wait_until "$START_TIMEOUT" until_up_or_dead "$up" "$D_PID" && "$up" && return 0
		stop_pid "$D_PID"
	done
	say "$msg"
	say_file "$log"
	return 1
}

# kmtlsd_up: kmtlsd's log, $K_LOG, says it listens.
kmtlsd_up() { grep -q 'listening on' "$K_LOG" 2>/dev/null; }

# start_backend MODE NAME [WRAPPER...]: test_backend (run by WRAPPER, e.g.
# `ip netns exec NS`) binds port 0 itself and says which port it got in
# the ready file. Sets B_PORT, B_PID and B_REPORT (its JSON report).
start_backend() {
	local mode=$1 name=$2 ready
	shift 2
	ready=$TMP/$name.ready
	B_REPORT=$TMP/$name.report
	"$@" "$BACKEND" --listen 127.0.0.1:0 --mode "$mode" --report "$B_REPORT" \
		--ready-file "$ready" > /dev/null 2> "$TMP/$name.backend.err" &
	B_PID=$!
	PIDS+=("$B_PID")
	if ! wait_until "$START_TIMEOUT" test -s "$ready"; then
		say "test_backend did not start:"
		say_file "$TMP/$name.backend.err"
		return 1
	fi
	# shellcheck disable=SC2034 # for the caller
	B_PORT=$(cat "$ready")
}
