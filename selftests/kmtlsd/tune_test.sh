#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl tune: the --json document is well formed and agrees with the
# host (/proc/sys, /proc/net/tls_stat) and with its own exit status; the
# private keys of a kmtlsd config are checked through kmtlsd's parser (a
# 0644 key is flagged with its chmod line, a 0600 one is not, a key the
# configured user does not own is flagged with its chown line); a config
# that does not load is an error. Prints KTAP.
#
#   KMTLS_OUT  build output with bin/kmtlsctl (default: <repo>/build/out)
set -uo pipefail

export LC_ALL=C
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
CTL=$OUT/bin/kmtlsctl
PY=/usr/bin/python3

# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

TMP=$(mktemp -d /tmp/kmtls-tune.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ktap_plan 8

# A config with one listener whose key is $1 (and [kmtlsd] user = $2).
write_config() {
	{
		echo "[kmtlsd]"
		[ -n "${2:-}" ] && echo "user = $2"
		echo "[listener web]"
		echo "listen = 127.0.0.1:8443"
		echo "backend = 127.0.0.1:8080"
		echo "cert = $TMP/server.pem"
		echo "key = $1"
		echo "ca = $TMP/ca.pem"
	} > "$TMP/kmtlsd.conf"
}

# tune --json -c FILE: the document in $TMP/out.json, the status in $rc.
tune_json() {
	"$CTL" --json tune "$@" > "$TMP/out.json" 2> "$TMP/err.txt"
	rc=$?
}

# Python check over $TMP/out.json; prints nothing and exits 0 when it holds.
check_json() {
	$PY - "$TMP/out.json" "$@" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
args = sys.argv[2:]
def fail(msg):
    print(msg)
    sys.exit(1)
mode = args[0]
if mode == "schema":
    rc = int(args[1])
    checks = doc.get("checks")
    if not isinstance(checks, list) or not checks:
        fail("no checks")
    n = 0
    for c in checks:
        for k in ("name", "status", "message", "fix"):
            if k not in c:
                fail("check without %s: %r" % (k, c))
        if c["status"] not in ("ok", "change", "info"):
            fail("bad status %r" % c)
        if not isinstance(c["fix"], list) or not all(isinstance(f, str) and f for f in c["fix"]):
            fail("bad fix %r" % c)
        if c["status"] == "change":
            n += 1
            if not c["fix"]:
                fail("a change without a fix: %r" % c)
        if not c["message"]:
            fail("empty message %r" % c)
    if doc.get("changes") != n:
        fail("changes %r, counted %d" % (doc.get("changes"), n))
    if doc.get("ok") is not (n == 0):
        fail("ok %r with %d changes" % (doc.get("ok"), n))
    if rc != (1 if n else 0):
        fail("exit status %d with %d changes" % (rc, n))
    names = {c["name"] for c in checks}
    want = {"aes-ni", "ktls", "tcp-fastopen", "somaxconn", "tcp-max-syn-backlog",
            "clock", "nr-open", "file-max", "kmtlsd-nofile", "key-permissions"}
    if want - names:
        fail("missing checks %s" % sorted(want - names))
elif mode == "value":        # value NAME EXPECTED
    c = [c for c in doc["checks"] if c["name"] == args[1]]
    if not c or c[0].get("value") != args[2]:
        fail("%s: value %r, want %r" % (args[1], c and c[0].get("value"), args[2]))
elif mode == "status":       # status NAME STATUS
    c = [c for c in doc["checks"] if c["name"] == args[1]]
    if not c or c[0]["status"] != args[2]:
        fail("%s: %r, want status %s" % (args[1], c, args[2]))
elif mode == "key":          # key PATH STATUS VALUE FIXSUBSTRING
    c = [c for c in doc["checks"] if c["name"] == "key-permissions" and c.get("path") == args[1]]
    if len(c) != 1:
        fail("no single key-permissions check for %s: %r" % (args[1], doc["checks"]))
    c = c[0]
    if c["status"] != args[2] or c.get("value") != args[3]:
        fail("key check %r, want %s %s" % (c, args[2], args[3]))
    if args[4] and not any(args[4] in f for f in c["fix"]):
        fail("no fix with %r: %r" % (args[4], c["fix"]))
    if not args[4] and c["fix"]:
        fail("unexpected fix %r" % c["fix"])
elif mode == "error":
    if "error" not in doc:
        fail("no error in %r" % doc)
EOF
}

cp "$TOP/build/pki/server.pem" "$TMP/server.pem" 2>/dev/null || : > "$TMP/server.pem"
: > "$TMP/ca.pem"
: > "$TMP/server.key"

# 1: the document's shape and its agreement with the exit status.
chmod 0600 "$TMP/server.key"
write_config "$TMP/server.key"
tune_json -c "$TMP/kmtlsd.conf"
if out=$(check_json schema "$rc"); then ok "json_schema_and_exit_status"
else not_ok "json_schema_and_exit_status" "$out"; fi

# 2: values are the host's.
out=$(check_json value somaxconn "$(cat /proc/sys/net/core/somaxconn)" &&
      check_json value tcp-max-syn-backlog "$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)" &&
      check_json value tcp-fastopen "$(cat /proc/sys/net/ipv4/tcp_fastopen)" &&
      check_json value nr-open "$(cat /proc/sys/fs/nr_open)")
if [ $? -eq 0 ]; then ok "values_match_proc_sys"; else not_ok "values_match_proc_sys" "$out"; fi

# 3: kTLS is "ok" exactly when the kernel shows /proc/net/tls_stat.
if [ -r /proc/net/tls_stat ]; then want=ok; else want=change; fi
if out=$(check_json status ktls $want); then ok "ktls_matches_tls_stat ($want)"
else not_ok "ktls_matches_tls_stat" "$out"; fi

# 4: a 0600 key owned by us passes.
if out=$(check_json key "$TMP/server.key" ok 0600 ""); then ok "key_0600_ok"
else not_ok "key_0600_ok" "$out"; fi

# 5: a 0644 key is flagged, with the chmod that fixes it, and tune fails.
chmod 0644 "$TMP/server.key"
tune_json -c "$TMP/kmtlsd.conf"
if out=$(check_json key "$TMP/server.key" change 0644 "chmod 600 $TMP/server.key") &&
   [ "$rc" = 1 ]; then ok "key_0644_flagged"
else not_ok "key_0644_flagged" "rc=$rc $out"; fi

# 6: with user = nobody, a 0600 key owned by root cannot be reloaded.
chmod 0600 "$TMP/server.key"
if [ "$(id -u)" = 0 ] && getent passwd nobody > /dev/null; then
	write_config "$TMP/server.key" nobody
	tune_json -c "$TMP/kmtlsd.conf"
	if out=$(check_json key "$TMP/server.key" change 0600 "chown nobody $TMP/server.key"); then
		ok "key_not_owned_by_user_flagged"
	else
		not_ok "key_not_owned_by_user_flagged" "$out"
	fi
else
	skip "key_not_owned_by_user_flagged" "needs root and a user nobody"
fi

# 7: the human output has one line per check and the same exit status.
write_config "$TMP/server.key"
"$CTL" tune -c "$TMP/kmtlsd.conf" > "$TMP/out.txt" 2>&1
trc=$?
tune_json -c "$TMP/kmtlsd.conf"
lines=$(grep -cE '^(ok|change|info) ' "$TMP/out.txt")
checks=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["checks"]))' "$TMP/out.json")
if [ "$trc" = "$rc" ] && [ "$lines" = "$checks" ]; then ok "text_output_matches_json"
else not_ok "text_output_matches_json" "text rc=$trc lines=$lines, json rc=$rc checks=$checks"; fi

# 8: a config that does not load is an error, not a pass.
printf '[listener web]\nlisten = nowhere\n' > "$TMP/bad.conf"
tune_json -c "$TMP/bad.conf"
if out=$(check_json error) && [ "$rc" = 1 ] && grep -q 'bad.conf:2' "$TMP/err.txt"; then
	ok "broken_config_is_an_error"
else
	not_ok "broken_config_is_an_error" "rc=$rc $out $(cat "$TMP/err.txt")"
fi

ktap_exit
