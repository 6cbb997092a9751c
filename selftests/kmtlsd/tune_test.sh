#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl tune: the --json document is well formed and agrees with the
# host (/proc/sys, /proc/net/tls_stat) and with its own exit status; the
# private keys of a kmtlsd config are checked through kmtlsd's parser (a
# 0644 key is flagged with its chmod line, a 0600 one is not, a key the
# configured user does not own is flagged with its chown line, both at once
# get chown then chmod); a config that does not load is an error. kTLS:
# the kernel config is read from /proc/config.gz, else /boot (fake ones
# bind-mounted in a private mount namespace), and a kernel without
# CONFIG_TLS is told so, never to modprobe. TCP Fast Open is judged by the
# listeners that set tcp-fastopen (sysctl set in a network namespace of
# its own). Prints KTAP.
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

ktap_plan 12

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
elif mode == "expr":         # expr NAME PYTHON...: each holds for check c
    c = [c for c in doc["checks"] if c["name"] == args[1]]
    if len(c) != 1:
        fail("no single %s check: %r" % (args[1], doc["checks"]))
    for e in args[2:]:
        if not eval(e, {}, {"c": c[0]}):
            fail("%s: not %s: %r" % (args[1], e, c[0]))
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

# 9: kTLS as this host has it: a kernel without CONFIG_TLS is told so (no
# modprobe); with it, modprobe.
tune_json
kconf=$(zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null)
if [ -r /proc/net/tls_stat ]; then
	skip "ktls_matches_kernel_config" "this kernel has kTLS loaded"
elif [ -z "$kconf" ]; then
	skip "ktls_matches_kernel_config" "no /proc/config.gz, no /boot/config-$(uname -r)"
elif grep -q '^CONFIG_TLS=[my]' <<< "$kconf"; then
	if out=$(check_json expr ktls 'c["value"] == "not loaded"' \
		'any(f.startswith("modprobe tls") for f in c["fix"])'); then
		ok "ktls_matches_kernel_config (CONFIG_TLS set)"
	else
		not_ok "ktls_matches_kernel_config" "$out"
	fi
elif out=$(check_json expr ktls 'c["status"] == "change" and c["value"] == "not built"' \
	'"has no kTLS" in c["message"]' 'not any("modprobe" in f for f in c["fix"])'); then
	ok "ktls_matches_kernel_config (no CONFIG_TLS)"
else
	not_ok "ktls_matches_kernel_config" "$out"
fi

# 10: where the kernel config comes from, with fake ones in a private mount
# namespace: /proc/config.gz first, else /boot/config-RELEASE, else nothing.
# tune_ns SETUP: tune --json after the shell commands SETUP, there; fails
# when SETUP does (tune's own exit status says what is to change).
tune_ns() {
	unshare -m --propagation private bash -c "$1"' || exit 1; "$0" --json tune > "$1"; :' \
		"$CTL" "$TMP/out.json" 2> "$TMP/err.txt"
}
ktls_sources() {
	local rel boot hide
	rel=$(uname -r)
	boot=/boot/config-$rel
	mkdir -p "$TMP/boot"
	printf 'CONFIG_64BIT=y\nCONFIG_TLS=m\n' | gzip > "$TMP/m.gz"
	printf 'CONFIG_64BIT=y\n# CONFIG_TLS is not set\n' | gzip > "$TMP/n.gz"
	printf 'CONFIG_64BIT=y\n# CONFIG_TLS is not set\n' > "$TMP/boot/config-$rel"
	: > "$TMP/empty"
	# Nothing to read at all: /boot emptied, /proc/config.gz empty.
	hide="mount -t tmpfs none /boot && { [ ! -e /proc/config.gz ] || mount --bind $TMP/empty /proc/config.gz; }"
	tune_ns "$hide" || { cat "$TMP/err.txt"; return 2; }
	check_json expr ktls 'c["fix"][0].startswith("modprobe tls   # fails if")' || return 1
	tune_ns "$hide && mount --bind $TMP/m.gz /proc/config.gz" ||
		{ echo "cannot bind-mount over /proc/config.gz: $(cat "$TMP/err.txt")"; return 2; }
	check_json expr ktls 'c["value"] == "not loaded" and c["fix"][0] == "modprobe tls"' ||
		return 1
	tune_ns "$hide && mount --bind $TMP/n.gz /proc/config.gz" || { cat "$TMP/err.txt"; return 1; }
	check_json expr ktls 'c["value"] == "not built" and c.get("path") == "/proc/config.gz"' \
		'not any("modprobe" in f for f in c["fix"])' || return 1
	tune_ns "$hide && touch $boot && mount --bind $TMP/boot/config-$rel $boot" ||
		{ cat "$TMP/err.txt"; return 1; }
	check_json expr ktls 'c["value"] == "not built"' \
		"c.get('path') == '$boot'" 'not any("modprobe" in f for f in c["fix"])'
}
if [ "$(id -u)" != 0 ] || [ -r /proc/net/tls_stat ]; then
	skip "ktls_kernel_config_sources" "needs root (mount namespaces) and a kernel without kTLS loaded"
else
	out=$(ktls_sources)
	case $? in
	0) ok "ktls_kernel_config_sources" ;;
	2) skip "ktls_kernel_config_sources" "$out" ;;
	*) not_ok "ktls_kernel_config_sources" "$out" ;;
	esac
fi

# 11: TCP Fast Open by the listeners that ask for it; the sysctl is set in
# a network namespace of our own.
# tune_tfo SYSCTL [ARGS...]: tune --json ARGS with net.ipv4.tcp_fastopen = SYSCTL.
tune_tfo() {
	local v=$1
	shift
	unshare -n bash -c 'echo "$1" > /proc/sys/net/ipv4/tcp_fastopen && shift &&
		"$@"' _ "$v" "$CTL" --json tune "$@" > "$TMP/out.json" 2> "$TMP/err.txt"
}
tfo_cases() {
	write_config "$TMP/server.key"
	tune_tfo 1 -c "$TMP/kmtlsd.conf"
	check_json expr tcp-fastopen 'c["status"] == "ok"' \
		'"no listener sets tcp-fastopen" in c["message"]' 'c["value"] == "1"' || return 1
	echo "tcp-fastopen = 16" >> "$TMP/kmtlsd.conf"
	tune_tfo 1 -c "$TMP/kmtlsd.conf"
	check_json expr tcp-fastopen 'c["status"] == "change"' \
		'"[listener web] sets tcp-fastopen" in c["message"]' \
		'c["fix"][0] == "sysctl -w net.ipv4.tcp_fastopen=3"' || return 1
	tune_tfo 2 -c "$TMP/kmtlsd.conf"
	check_json expr tcp-fastopen 'c["status"] == "ok"' '"on for [listener web]" in c["message"]' ||
		return 1
	if [ -e /etc/kmtls/kmtlsd.conf ]; then
		echo "(no check without a config: /etc/kmtls/kmtlsd.conf exists)"
		return 0
	fi
	tune_tfo 1
	check_json expr tcp-fastopen 'c["status"] == "info"' '"-c FILE" in c["message"]'
}
if [ "$(id -u)" != 0 ]; then
	skip "tcp_fastopen_per_listener" "needs root (a network namespace)"
elif out=$(tfo_cases); then
	ok "tcp_fastopen_per_listener"
else
	not_ok "tcp_fastopen_per_listener" "$out"
fi

# 12: a 0644 key that the configured user does not own: chown, then chmod
# (chmod 600 alone would lock that user out of its key).
if [ "$(id -u)" = 0 ] && getent passwd nobody > /dev/null; then
	chmod 0644 "$TMP/server.key"
	write_config "$TMP/server.key" nobody
	tune_json -c "$TMP/kmtlsd.conf"
	if out=$(check_json expr key-permissions 'c["status"] == "change"' \
		"c['fix'] == ['chown nobody $TMP/server.key', 'chmod 600 $TMP/server.key']"); then
		ok "key_0644_not_owned_by_user_gets_chown_and_chmod"
	else
		not_ok "key_0644_not_owned_by_user_gets_chown_and_chmod" "$out"
	fi
	chmod 0600 "$TMP/server.key"
else
	skip "key_0644_not_owned_by_user_gets_chown_and_chmod" "needs root and a user nobody"
fi

ktap_exit
