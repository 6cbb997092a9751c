#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl status and stats against status endpoints that answer wrongly
# or not at all: a Python server plays kmtlsd's endpoint on one unix socket
# per way of answering. Checked:
#   - a document of another shape (a field of the wrong type, a negative
#     count, a missing field, a list that is an object) is exit status 1
#     with the field named, never an abort, in text and --json;
#   - HTTP that is not what kmtlsd sends (trailing bytes, a Content-Length
#     the body does not match, chunked, LF line ends, not HTTP, 404) is
#     exit status 1 and says what came back;
#   - each failure says what it is: only "nothing listens" says "not
#     running" and how to turn the endpoint on; no permission, no answer in
#     time and a wrong answer each say their own thing;
#   - a unix endpoint with a full accept queue is waited for, not an error;
#   - text output shows control bytes from kmtlsd as \xNN;
#   - --json status and stats hold the fields kmtlsctl knows, no others.
# Real kmtlsd documents are kmtlsctl_ops_test.sh's. Prints KTAP.
#
#   KMTLS_OUT  build output with bin/kmtlsctl (default: <repo>/build/out)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

NTESTS=11
DIAG=
SRV_PID=

cleanup() {
	[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
	tmp_cleanup
}

# The endpoint: DIR/MODE.sock for each MODE; DIR/ready when all listen.
write_server() {
	cat > "$TMP/fake.py" <<'EOF'
import copy, json, os, socket, sys, threading, time

BASE = {
    "version": "0.1.0", "started": 1700000000, "uptime_s": 3725, "workers": 2,
    "accepted": 12, "active": 1,
    "handshakes": {"ok": 10, "failed": 1, "resumed": 4, "sum_us": 12345},
    "ktls": 0, "fallback": 10, "ktls_refused": 0, "backend_failed": 0, "key_updates": 0,
    "capped": 0, "closes_unacked": 0, "bytes_client_to_backend": 500,
    "bytes_backend_to_client": 600,
    "listeners": [{"name": "web", "listen": "127.0.0.1:8443", "backend": "127.0.0.1:8080",
                   "active": 1, "max_connections": 10000, "mode": "terminate",
                   "accepted": 12, "handshakes": {"ok": 10, "failed": 1, "resumed": 4},
                   "ktls": 0, "fallback": 10, "ktls_refused": 0, "backend_failed": 0,
                   "capped": 0, "closes_unacked": 0}],
    "kernel_service": None,
}

def doc(change=None):
    d = copy.deepcopy(BASE)
    if change:
        change(d)
    return json.dumps(d).encode()

def http(body, cl=True, head="HTTP/1.0 200 OK", extra=b""):
    h = head + "\r\nContent-Type: application/json\r\n"
    if cl is True:
        h += "Content-Length: %d\r\n" % len(body)
    elif cl is not False:
        h += "Content-Length: %d\r\n" % cl
    return h.encode() + b"\r\n" + body + extra

def setk(path, v):
    def f(d):
        o = d
        for k in path[:-1]:
            o = o[k]
        o[path[-1]] = v
    return f

def esc(d):
    d["version"] = "1.0\x1b[31mRED\n"
    d["listeners"][0]["name"] = "we\x07b"
    d["kernel_service"] = {"profiles": ["p\x1b"], "handshakes": {"ok": 1, "failed": 0},
                           "attached": True, "state": "serving"}

def extra(d):
    d["future"] = 1
    d["listeners"][0]["future"] = 2
    d["handshakes"]["future"] = 3

MODES = {
    "ok": http(doc()),
    "ok_to_eof": http(doc(), cl=False),
    "esc": http(doc(esc)),
    "extra": http(doc(extra)),
    "listeners_obj": http(doc(setk(["listeners"], {"x": 1}))),
    "listener_int": http(doc(setk(["listeners"], [1]))),
    "count_str": http(doc(setk(["handshakes", "ok"], "7"))),
    "count_float": http(doc(setk(["accepted"], 1.5))),
    "uptime_neg": http(doc(setk(["uptime_s"], -100))),
    "accepted_neg": http(doc(setk(["accepted"], -3))),
    "count_huge": http(doc().replace(b'"ktls": 0', b'"ktls": 18446744073709551615', 1)),
    "missing": http(doc(lambda d: d.pop("workers"))),
    "profiles_bad": http(doc(setk(["kernel_service"], {"profiles": [1], "handshakes": {
        "ok": 0, "failed": 0}, "attached": False, "state": "starting"}))),
    "ks_str": http(doc(setk(["kernel_service"], "str"))),
    "array": http(b"[1, 2]"),
    "trailing": http(doc(), cl=False, extra=b' {"x": 1}'),
    "cl_short": http(doc(), cl=5),
    "cl_long": http(doc(), cl=len(doc()) + 100),
    "partial": http(doc()[:40], cl=False),
    "not_http": b"\x00\x01garbage",
    "lf": http(doc(), cl=False).replace(b"\r\n", b"\n"),
    "http404": b"HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
}

def serve(c, mode):
    try:
        c.settimeout(2)
        c.recv(4096)
        if mode == "silent":
            time.sleep(30)
        else:
            c.sendall(MODES["ok" if mode == "backlog" else mode])
    except OSError:
        pass
    finally:
        c.close()

def listen(path, mode):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    if mode == "refused":          # bound, never listening: ECONNREFUSED
        return s
    s.listen(1 if mode == "backlog" else 16)
    if mode == "backlog":
        # Fill the accept queue with connections of our own: a connect now
        # gets EAGAIN. Accept (and so make room) only after a while.
        fill = []
        while True:
            f = socket.socket(socket.AF_UNIX)
            f.setblocking(False)
            try:
                f.connect(path)
            except BlockingIOError:
                f.close()
                break
            fill.append(f)
        with open(path + ".full", "w") as o:
            o.write("%d\n" % len(fill))
        def later():
            while not os.path.exists(path + ".go"):
                time.sleep(0.05)
            time.sleep(1.5)
            accept(s, mode)
        threading.Thread(target=later, daemon=True).start()
        return (s, fill)
    threading.Thread(target=accept, args=(s, mode), daemon=True).start()
    return s

def accept(s, mode):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()

d = sys.argv[1]
keep = [listen(os.path.join(d, m + ".sock"), m)
        for m in list(MODES) + ["silent", "backlog", "refused"]]
open(os.path.join(d, "ready"), "w").close()
while True:
    time.sleep(60)
EOF
}

# ctl NAME ARGS...: kmtlsctl ARGS; $TMP/NAME.out, $TMP/NAME.err, $rc.
ctl() {
	local name=$1
	shift
	timeout -k 5 30 "$KMTLSCTL" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
}

# expect FILE EXPR...: each Python expression holds for the JSON in FILE (d;
# SAYS and PROBLEM from the environment).
expect() {
	local file=$1
	shift
	"$PY" - "$file" "$@" >> "$DIAG" 2>&1 <<'EOF'
import json, os, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    sys.exit("no JSON object in %s: %s" % (sys.argv[1], e))
env = {"d": d, "SAYS": os.environ.get("SAYS"), "PROBLEM": os.environ.get("PROBLEM")}
bad = [e for e in sys.argv[2:] if not eval(e, {}, env)]
for e in bad:
    print("expected: " + e)
if bad:
    print("got: " + json.dumps(d, sort_keys=True))
    sys.exit(1)
EOF
}

has() {
	grep -qF -- "$2" "$1" && return 0
	say "no '$2' in $(basename "$1"):"
	say_file "$1" 10
	return 1
}

hasnt() {
	grep -qF -- "$2" "$1" || return 0
	say "'$2' in $(basename "$1"):"
	say_file "$1" 10
	return 1
}

ep() { echo "unix:$TMP/srv/$1.sock"; }

# bad MODE PROBLEM SAYS: status and stats, text and --json, for an endpoint
# that answers in way MODE: exit status 1 (not an abort), the problem's
# kind in "problem", SAYS in the error and in the text line.
bad() {
	local mode=$1 problem=$2 says=$3 v
	for v in status stats; do
		ctl "$mode-$v" "$v" --endpoint "$(ep "$mode")"
		[ "$rc" = 1 ] || { say "$mode: $v: exit status $rc, want 1"; say_file "$TMP/$mode-$v.err"; return 1; }
		has "$TMP/$mode-$v.err" "$says" && has "$TMP/$mode-$v.out" "$says" || return 1
		# Only nothing listening means "not running" (and asks for status-listen).
		if [ "$problem" != "not running" ]; then
			hasnt "$TMP/$mode-$v.out" "not running" && hasnt "$TMP/$mode-$v.err" "status-listen =" ||
				return 1
		fi
		ctl "$mode-$v-json" --json "$v" --endpoint "$(ep "$mode")"
		[ "$rc" = 1 ] || { say "$mode: $v --json: exit status $rc, want 1"; return 1; }
		SAYS=$says PROBLEM=$problem expect "$TMP/$mode-$v-json.out" \
			'd["kmtlsd"]["reachable"] is False' 'd["kmtlsd"]["problem"] == PROBLEM' \
			'SAYS in d["error"] and d["error"] == d["kmtlsd"]["error"]' || return 1
	done
}

# 1: documents of another shape: the field and what is wrong with it.
case_shapes() {
	bad listeners_obj "unexpected document" "listeners is not a list" &&
	bad listener_int "unexpected document" "listeners[0] is not an object" &&
	bad count_str "unexpected document" "handshakes.ok is not a whole number" &&
	bad count_float "unexpected document" "accepted is not a whole number" &&
	bad accepted_neg "unexpected document" "accepted is negative (-3)" &&
	bad count_huge "unexpected document" "ktls is larger than any number" &&
	bad missing "unexpected document" "workers is missing" &&
	bad profiles_bad "unexpected document" "kernel_service.profiles[0] is not a string" &&
	bad ks_str "unexpected document" "kernel_service is neither an object nor null" &&
	bad array "unexpected document" "not a JSON object"
}

# 2: the body is the document and nothing else; Content-Length must hold.
case_framing() {
	bad trailing "unexpected document" "more after the JSON document" &&
	bad partial "unexpected document" "ends too early" &&
	bad cl_short "not kmtlsd's status endpoint" "where Content-Length says 5" &&
	bad cl_long "not kmtlsd's status endpoint" "where Content-Length says" &&
	bad chunked "not kmtlsd's status endpoint" "Transfer-Encoding"
}

# 3: what came back, when it is not kmtlsd's HTTP.
case_foreign() {
	bad not_http "not kmtlsd's status endpoint" "the answer is not HTTP" &&
	bad lf "not kmtlsd's status endpoint" "the answer is not HTTP" &&
	bad http404 "not kmtlsd's status endpoint" 'answered "HTTP/1.0 404 Not Found"'
}

# 4: nothing listening (no socket; a socket nobody listens on): "not
# running", and how to turn the endpoint on.
case_down() {
	bad refused "not running" "$(ep refused)" && has "$TMP/refused-status.err" "not reachable on" || return 1
	has "$TMP/refused-status.err" "status-listen = " || return 1
	has "$TMP/refused-status.out" "kmtlsd     not running, or its status endpoint is off" || return 1
	ctl nosock --json status --endpoint "unix:$TMP/srv/none.sock"
	[ "$rc" = 1 ] && expect "$TMP/nosock.out" 'd["kmtlsd"]["problem"] == "not running"'
}

# 5: a user that may not connect: say so, not "not running".
case_denied() {
	local out=$TMP/denied
	if ! is_root || ! id nobody > /dev/null 2>&1; then
		SKIP="needs root and a user nobody"
		return 0
	fi
	# $TMP is 0700 root: nobody cannot reach a socket in it.
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$KMTLSCTL" --json status \
		--endpoint "$(ep ok)" > "$out.out" 2> "$out.err"
	rc=$?
	[ "$rc" = 1 ] || { say "exit status $rc, want 1"; say_file "$out.err"; return 1; }
	expect "$out.out" 'd["kmtlsd"]["problem"] == "permission denied"' \
		'"run it as root, or as a user that may connect" in d["error"]' \
		'"status-listen =" not in d["error"]'
}

# 6: an endpoint that takes the request and never answers: after the 5 s
# deadline, "busy or stalled".
case_stalled() {
	local t0=$SECONDS
	ctl silent status --endpoint "$(ep silent)"
	[ "$rc" = 1 ] || { say "exit status $rc, want 1"; return 1; }
	[ $((SECONDS - t0)) -le 8 ] || { say "took $((SECONDS - t0)) s, the deadline is 5"; return 1; }
	has "$TMP/silent.out" "kmtlsd     busy or stalled" &&
		has "$TMP/silent.err" "kmtlsd is busy or its status endpoint is stalled" &&
		hasnt "$TMP/silent.err" "status-listen ="
}

# 7: a full accept queue (connect gets EAGAIN) empties 1.5 s later: wait.
case_backlog() {
	local sock=$TMP/srv/backlog.sock t0
	[ -s "$sock.full" ] || { say "the server could not fill its accept queue"; return 1; }
	"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.setblocking(False)
try:
    s.connect(sys.argv[1])
except BlockingIOError:
    sys.exit(0)
sys.exit(1)' "$sock" || { say "the queue is not full: connect does not get EAGAIN"; return 1; }
	t0=$(date +%s%N)
	touch "$sock.go"
	ctl backlog --json status --endpoint "unix:$sock"
	[ "$rc" = 0 ] || { say "exit status $rc, want 0"; say_file "$TMP/backlog.err"; return 1; }
	expect "$TMP/backlog.out" 'd["kmtlsd"]["reachable"] is True' 'd["kmtlsd"]["workers"] == 2' ||
		return 1
	say "answered after $((($(date +%s%N) - t0) / 1000000)) ms ($(cat "$sock.full") connections filled the queue)"
}

# 8: control bytes from kmtlsd never reach the terminal raw.
case_control_bytes() {
	ctl esc status --endpoint "$(ep esc)"
	[ "$rc" = 0 ] || { say "exit status $rc"; say_file "$TMP/esc.err"; return 1; }
	if LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]' "$TMP/esc.out"; then
		say "control bytes in the text output:"
		cat -v "$TMP/esc.out" > "$TMP/esc.visible"
		say_file "$TMP/esc.visible"
		return 1
	fi
	has "$TMP/esc.out" 'version 1.0\x1b[31mRED\x0a' && has "$TMP/esc.out" 'listener we\x07b' &&
		has "$TMP/esc.out" 'profiles p\x1b' || return 1
	ctl esc_stats stats --endpoint "$(ep esc)"
	[ "$rc" = 0 ] && ! LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]' "$TMP/esc_stats.out" ||
		{ say "stats: exit $rc, or control bytes"; return 1; }
	# JSON carries the strings as they are (escaped by JSON).
	ctl esc_json --json status --endpoint "$(ep esc)"
	expect "$TMP/esc_json.out" 'd["kmtlsd"]["version"] == "1.0\x1b[31mRED\n"' \
		'd["kmtlsd"]["listeners"][0]["name"] == "we\x07b"'
}

# 9: --json status and stats: the fields kmtlsctl knows and checked, no
# others; a document without Content-Length (to EOF) is fine too.
case_json_fields() {
	ctl extra_status --json status --endpoint "$(ep extra)"
	[ "$rc" = 0 ] || { say "status: exit status $rc"; say_file "$TMP/extra_status.err"; return 1; }
	ctl extra_stats --json stats --endpoint "$(ep extra)"
	[ "$rc" = 0 ] || { say "stats: exit status $rc"; say_file "$TMP/extra_stats.err"; return 1; }
	hasnt "$TMP/extra_status.out" future && hasnt "$TMP/extra_stats.out" future || return 1
	expect "$TMP/extra_stats.out" \
		'sorted(d["kmtlsd"]["totals"]) == sorted(["accepted", "active", "handshakes", "ktls", "fallback", "ktls_refused", "backend_failed", "key_updates", "capped", "closes_unacked", "bytes_client_to_backend", "bytes_backend_to_client"])' \
		'd["kmtlsd"]["totals"]["handshakes"] == {"ok": 10, "failed": 1, "resumed": 4, "sum_us": 12345}' \
		'd["kmtlsd"]["uptime_s"] == 3725 and d["kmtlsd"]["started"] == 1700000000' \
		'd["kmtlsd"]["listeners"][0]["max_connections"] == 10000' || return 1
	expect "$TMP/extra_status.out" 'd["kmtlsd"]["handshakes"]["ok"] == 10' \
		'd["kmtlsd"]["listeners"][0]["name"] == "web"' || return 1
	ctl to_eof status --endpoint "$(ep ok_to_eof)"
	[ "$rc" = 0 ] && has "$TMP/to_eof.out" "kmtlsd     up: version 0.1.0, uptime 1h02m05s, 2 workers"
}

# A negative uptime (kmtlsd's clock went back) is said as such, not printed.
case_uptime_negative() {
	ctl uptime_neg status --endpoint "$(ep uptime_neg)"
	[ "$rc" = 0 ] || { say "status: exit status $rc"; say_file "$TMP/uptime_neg.err"; return 1; }
	has "$TMP/uptime_neg.out" "uptime unknown (the clock went back since kmtlsd started)" &&
		hasnt "$TMP/uptime_neg.out" "-100" || return 1
	ctl uptime_neg_stats stats --endpoint "$(ep uptime_neg)"
	[ "$rc" = 0 ] && has "$TMP/uptime_neg_stats.out" "(the clock went back since kmtlsd started)"
}

# 10: the valid document in text, for comparison with the failures above.
case_ok() {
	ctl ok status --endpoint "$(ep ok)"
	[ "$rc" = 0 ] || { say "exit status $rc"; say_file "$TMP/ok.err"; return 1; }
	has "$TMP/ok.out" "handshakes: 10 ok, 1 failed, 40.0% resumed" &&
		has "$TMP/ok.out" "listener web          terminate 127.0.0.1:8443 -> 127.0.0.1:8080, 1 active"
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtlsctl-status.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$KMTLSCTL" || bail "$MISSING missing (make userspace)"
	need_tools "$PY" timeout setpriv || bail "$MISSING not installed"
	export KMTLS_BPF_PIN_DIR=$TMP/no-pins
	mkdir "$TMP/srv"
	write_server
	"$PY" "$TMP/fake.py" "$TMP/srv" 2> "$TMP/fake.err" &
	SRV_PID=$!
	wait_until 10 test -e "$TMP/srv/ready" || { cat "$TMP/fake.err"; bail "the fake endpoint did not start"; }

	run_case documents_of_another_shape case_shapes
	run_case http_framing case_framing
	run_case not_kmtlsd_says_what_came_back case_foreign
	run_case nothing_listening_is_not_running case_down
	run_case permission_denied_says_so case_denied
	run_case no_answer_in_time_is_stalled case_stalled
	run_case full_accept_queue_is_waited_for case_backlog
	run_case control_bytes_escaped_in_text case_control_bytes
	run_case json_holds_known_fields case_json_fields
	run_case valid_document case_ok
	run_case negative_uptime_said_as_such case_uptime_negative
	ktap_exit
}

main "$@"
