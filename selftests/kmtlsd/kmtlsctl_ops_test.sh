#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl status, stats and pki against a running kmtlsd.
#
# status/stats: kmtlsd from a config file (two listeners, two workers, the
# status endpoint on a unix socket) in front of an echo test_backend; a
# Python (OpenSSL) client makes an exact number of handshakes on each
# listener (full, resumed, one refused), then the counts kmtlsctl reports,
# in text and --json, must be those, per listener and in total, and agree
# with kmtlsd's own /status. An endpoint where nothing listens is an error
# (exit 1) that names the address and status-listen. kmtls.ko and the BPF
# programs are reported as absent (a private, empty pin directory).
#
# pki: init + issue server and client for ec256, rsa2048 and ed25519; the
# chains verify with openssl, the extensions are right, keys are 0600,
# existing files are kept without --force; kmtlsd serves mTLS with those
# certificates (an OpenSSL client, and kmtls-bench's wolfSSL client for
# ec256) and refuses a client of another CA. issue refuses an intermediate
# key that is not the intermediate certificate's, a NAME longer than a
# common name holds (63) and a DNS label longer than 63; init dates both
# CAs from one reading of the clock (checked with a time(2) that moves a
# second at every call, selftests/lib/steptime).
#
# Only 127.0.0.1 is used; every process and file made here goes at the end.
# Prints KTAP and exits non-zero when a case fails.
#
#   KMTLS_OUT  build output with bin/kmtlsd, bin/kmtlsctl, bin/kmtls-bench and
#              selftests/progs/test_backend (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki;
#              a private one is made when it is missing or incomplete)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

START_TIMEOUT=30
CLIENT_TIMEOUT=60

NTESTS=18
started=$SECONDS

PKI=
DIAG=

status_up() { grep -q 'status on' "$K_LOG" 2>/dev/null; }

# start_kmtlsd NAME N CERT KEY CA [LINE...]: kmtlsd -c NAME.conf with two
# workers, listeners l1..lN (each with the extra config LINEs) in front of
# the echo backend, and its status endpoint on $TMP/NAME.sock. Ports are
# picked free and written in the config, so a lost race means a new try.
# Sets K_PID, K_LOG, K_CONF, K_SOCK and K_PORTS.
start_kmtlsd() {
	local name=$1
	shift
	K_LOG=$TMP/$name.log
	K_CONF=$TMP/$name.conf
	K_SOCK=$TMP/$name.sock
	start_daemon "kmtlsd did not start with $K_CONF:" status_up "$K_LOG" launch_kmtlsd "$@" ||
		return 1
	K_PID=$D_PID
}

launch_kmtlsd() {
	local n=$1 cert=$2 key=$3 ca=$4 j port
	shift 4
	K_PORTS=()
	{
		printf '[kmtlsd]\nworkers = 2\nstatus-listen = unix:%s\n' "$K_SOCK"
		for ((j = 1; j <= n; j++)); do
			port=$(free_port)
			K_PORTS+=("$port")
			printf '\n[listener l%d]\nlisten = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\n' \
				"$j" "$port" "$B_PORT"
			printf 'cert = %s\nkey = %s\nca = %s\n' "$cert" "$key" "$ca"
			[ $# -gt 0 ] && printf '%s\n' "$@"
		done
	} > "$K_CONF"
	"$KMTLSD" -c "$K_CONF" --foreground > /dev/null 2> "$K_LOG" &
}

# The TLS client: OpenSSL through Python's ssl module, so neither end is
# the wolfSSL kmtlsd uses. N connections in a row, each a handshake and a
# 5-byte echo through the backend; --resume offers the previous session.
# Prints {"ok": N, "resumed": N, "errors": [...]}; exit 1 on any error.
write_client() {
	cat > "$TMP/client.py" <<'EOF'
import json, socket, ssl, sys
port, ca, cert, key, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
resume = "--resume" in sys.argv[6:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
ok = resumed = 0
errors = []
sess = None
for i in range(n):
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=20) as s:
            with ctx.wrap_socket(s, server_hostname="localhost",
                                 session=sess if resume else None) as t:
                t.sendall(b"ping%d" % (i % 10))
                got = b""
                while len(got) < 5:
                    d = t.recv(5 - len(got))
                    if not d:
                        break
                    got += d
                if got != b"ping%d" % (i % 10):
                    raise RuntimeError("echo: got %r" % got)
                ok += 1
                resumed += int(t.session_reused)
                sess = t.session
    except Exception as e:
        errors.append("%s: %s" % (type(e).__name__, e))
print(json.dumps({"ok": ok, "resumed": resumed, "errors": errors}))
sys.exit(1 if errors else 0)
EOF
}

# client NAME PORT CA CERT KEY N [--resume]: output in $TMP/NAME.client.
client() {
	local name=$1
	shift
	timeout -k 5 "$CLIENT_TIMEOUT" "$PY" "$TMP/client.py" "$@" \
		> "$TMP/$name.client" 2> "$TMP/$name.client.err"
}

# expect FILE EXPR...: every Python expression holds for the JSON in FILE
# (d: the object; L: listeners by name, from d["kmtlsd"]["listeners"]).
expect() {
	local file=$1
	shift
	"$PY" - "$file" "$@" >> "$DIAG" 2>&1 <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    print("no JSON object in %s: %s" % (sys.argv[1], e))
    sys.exit(1)
L = {}
if isinstance(d.get("kmtlsd"), dict):
    L = {l["name"]: l for l in d["kmtlsd"].get("listeners") or []}
bad = []
for e in sys.argv[2:]:
    try:
        if not eval(e, {}, {"d": d, "L": L}):
            bad.append(e)
    except Exception as x:
        bad.append("%s (%s: %s)" % (e, type(x).__name__, x))
for e in bad:
    print("expected: " + e)
if bad:
    print("got: " + json.dumps(d, sort_keys=True))
    sys.exit(1)
EOF
}

# ctl NAME ARGS...: kmtlsctl ARGS, stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err, exit status in $rc.
ctl() {
	local name=$1
	shift
	timeout -k 5 30 "$KMTLSCTL" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
}

has() {
	grep -qE -- "$2" "$1" && return 0
	say "no line matching '$2' in $(basename "$1"):"
	say_file "$1" 20
	return 1
}

setup() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtlsctl-ops.XXXXXX") || bail "mktemp failed"
	DIAG=$TMP/diag
	: > "$DIAG"
	need_files -x "$KMTLSD" "$KMTLSCTL" "$BENCH" "$BACKEND" || bail "$MISSING missing (make userspace)"
	need_tools openssl timeout "$PY" || bail "$MISSING not installed"
	# Nothing pinned here: both BPF programs must read "not loaded".
	export KMTLS_BPF_PIN_DIR=$TMP/no-pins
	setup_pki || bail "no usable PKI at $PKI_SRC and mkpki.sh failed"
	write_client
	start_backend echo backend || bail "echo backend did not start"
}

# ---- status and stats --------------------------------------------------------

N1=4		# full handshakes on l1
N2=5		# handshakes on l2, resumed after the first
R2=		# how many the client saw resumed

# 1: traffic with known counts on the two listeners of one kmtlsd.
case_traffic() {
	start_kmtlsd ops 2 "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem" || return 1
	MAIN_SOCK=$K_SOCK
	MAIN_CONF=$K_CONF
	MAIN_PORTS=("${K_PORTS[@]}")
	client l1 "${K_PORTS[0]}" "$PKI/ca.pem" "$PKI/client.pem" "$PKI/client.key" "$N1" || {
		say_file "$TMP/l1.client"
		say_file "$TMP/l1.client.err"
		return 1
	}
	client l2 "${K_PORTS[1]}" "$PKI/ca.pem" "$PKI/client.pem" "$PKI/client.key" "$N2" \
		--resume || {
		say_file "$TMP/l2.client"
		return 1
	}
	# A client of another CA: its handshake fails on kmtlsd's side.
	if client bad "${K_PORTS[1]}" "$PKI/ca.pem" "$PKI/bad/otherca.pem" \
		"$PKI/bad/otherca.key" 1; then
		say "a client of another CA got through"
		return 1
	fi
	R2=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["resumed"])' \
		"$TMP/l2.client")
	say "clients: l1 $N1 full, l2 $N2 ($R2 resumed), 1 refused on l2"
	[ "$R2" -ge 1 ] || { say "the client never resumed"; return 1; }
}

# kmtlsd counts a refused handshake after sending its alert: wait for it.
failed_counted() {
	"$KMTLSCTL" --json stats --endpoint "unix:$MAIN_SOCK" 2> /dev/null |
		"$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["kmtlsd"]["totals"]["handshakes"]["failed"] < 1)'
}

# 2: status --json: the handshakes by outcome, the listeners, the absent parts.
case_status_json() {
	[ -n "${MAIN_SOCK:-}" ] || { say "no kmtlsd from the traffic case"; return 1; }
	wait_until 10 failed_counted
	ctl status_json --json status --endpoint "unix:$MAIN_SOCK"
	[ "$rc" -eq 0 ] || { say "exit status $rc"; say_file "$TMP/status_json.err"; return 1; }
	expect "$TMP/status_json.out" \
		'd["kmtlsd"]["reachable"] is True' 'd["kmtlsd"]["workers"] == 2' \
		'd["kmtlsd"]["version"] != ""' 'd["kmtlsd"]["uptime_s"] >= 0' \
		"d['kmtlsd']['handshakes']['ok'] == $N1 + $N2" \
		'd["kmtlsd"]["handshakes"]["failed"] == 1' \
		"d['kmtlsd']['handshakes']['resumed'] == $R2" \
		"abs(d['kmtlsd']['handshakes']['resumed_ratio'] - $R2 / ($N1 + $N2)) < 1e-9" \
		'd["kmtlsd"]["ktls"] + d["kmtlsd"]["fallback"] == d["kmtlsd"]["handshakes"]["ok"]' \
		'sorted(L) == ["l1", "l2"]' \
		'all(l["mode"] == "terminate" and l["active"] == 0 for l in L.values())' \
		"L['l1']['listen'] == '127.0.0.1:${MAIN_PORTS[0]}'" \
		"L['l2']['backend'] == '127.0.0.1:$B_PORT'" \
		'd["kmtlsd"]["kernel_service"] is None' \
		'd["kmtls_ko"]["loaded"] == __import__("os").path.exists("/sys/module/kmtls")' \
		'd["bpf"]["hello_limit"]["state"] == "not loaded"' \
		'd["bpf"]["hs_latency"]["state"] == "not loaded"' \
		'"error" not in d'
}

# 3: the text form says the same, in the lines an operator reads.
case_status_text() {
	local p1=${MAIN_PORTS[0]}
	ctl status_text status --endpoint "unix:$MAIN_SOCK"
	[ "$rc" -eq 0 ] || { say "exit status $rc"; say_file "$TMP/status_text.err"; return 1; }
	cat "$TMP/status_text.out" >> "$DIAG"
	has "$TMP/status_text.out" "^kmtlsd +up: version .*, 2 workers" &&
		has "$TMP/status_text.out" "handshakes: $((N1 + N2)) ok, 1 failed, [0-9.]+% resumed" &&
		has "$TMP/status_text.out" "listener l1 +terminate +127\.0\.0\.1:$p1 -> 127\.0\.0\.1:$B_PORT, 0 active" &&
		has "$TMP/status_text.out" "^kmtls\.ko +(not loaded|loaded)" &&
		has "$TMP/status_text.out" "hello_limit: not loaded" &&
		has "$TMP/status_text.out" "hs_latency: not loaded"
}

# 4: stats --json: per listener and outcome, totals, and kmtlsd's own /status.
case_stats_json() {
	ctl stats_json --json stats --endpoint "unix:$MAIN_SOCK"
	[ "$rc" -eq 0 ] || { say "exit status $rc"; say_file "$TMP/stats_json.err"; return 1; }
	"$PY" - "$MAIN_SOCK" > "$TMP/raw.json" 2>> "$DIAG" <<'EOF' || return 1
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
r = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    r += d
print(r.split(b"\r\n\r\n", 1)[1].decode())
EOF
	expect "$TMP/stats_json.out" \
		"L['l1']['handshakes'] == {'ok': $N1, 'failed': 0, 'resumed': 0}" \
		"L['l2']['handshakes'] == {'ok': $N2, 'failed': 1, 'resumed': $R2}" \
		"L['l1']['accepted'] == $N1 and L['l2']['accepted'] == $N2 + 1" \
		'all(l["ktls"] + l["fallback"] == l["handshakes"]["ok"] for l in L.values())' \
		'all(l["backend_failed"] == 0 and l["capped"] == 0 for l in L.values())' \
		'd["kmtlsd"]["totals"]["handshakes"]["ok"] == sum(l["handshakes"]["ok"] for l in L.values())' \
		'd["kmtlsd"]["totals"]["accepted"] == sum(l["accepted"] for l in L.values())' \
		'd["kmtlsd"]["totals"]["bytes_client_to_backend"] >= 5 * (d["kmtlsd"]["totals"]["handshakes"]["ok"])' \
		'd["kmtlsd"]["workers"] == 2' \
		'd["kmtls_ko"]["loaded"] or d["kmtls_ko"]["counters"] is None' \
		'd["hello_limit"]["state"] == "not loaded" and d["hs_latency"]["state"] == "not loaded"' \
		|| return 1
	# Nothing moved between the two reads: the totals are kmtlsd's own.
	"$PY" - "$TMP/stats_json.out" "$TMP/raw.json" >> "$DIAG" 2>&1 <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["kmtlsd"]
raw = json.load(open(sys.argv[2]))
for k in ("handshakes", "accepted", "ktls", "fallback", "bytes_client_to_backend",
          "bytes_backend_to_client", "backend_failed", "key_updates"):
    if s["totals"][k] != raw[k]:
        print("%s: kmtlsctl %r, /status %r" % (k, s["totals"][k], raw[k]))
        sys.exit(1)
for a, b in zip(s["listeners"], raw["listeners"]):
    if a != b:
        print("listener differs: %r vs %r" % (a, b))
        sys.exit(1)
EOF
}

# 5: stats in text: one row per listener with the same numbers.
case_stats_text() {
	ctl stats_text stats --endpoint "unix:$MAIN_SOCK"
	[ "$rc" -eq 0 ] || { say "exit status $rc"; say_file "$TMP/stats_text.err"; return 1; }
	cat "$TMP/stats_text.out" >> "$DIAG"
	has "$TMP/stats_text.out" "^  l1 +$N1 +$N1 +0 +0 " &&
		has "$TMP/stats_text.out" "^  l2 +$((N2 + 1)) +$N2 +1 +$R2 " &&
		has "$TMP/stats_text.out" "^  \(all\) +$((N1 + N2 + 1)) +$((N1 + N2)) +1 +$R2 " &&
		has "$TMP/stats_text.out" "^hello_limit \(hl_stats\): not loaded"
}

# 6: the endpoint found through --config (status-listen of that file).
case_config_endpoint() {
	ctl by_config --json status --config "$MAIN_CONF"
	[ "$rc" -eq 0 ] || { say "exit status $rc"; say_file "$TMP/by_config.err"; return 1; }
	expect "$TMP/by_config.out" "d['kmtlsd']['endpoint'] == 'unix:$MAIN_SOCK'" \
		"d['kmtlsd']['handshakes']['ok'] == $N1 + $N2"
}

# 7: nothing listening: exit 1, the address and how to enable the endpoint.
case_unreachable() {
	local addr=unix:$TMP/nobody.sock f
	ctl unreach status --endpoint "$addr"
	[ "$rc" -eq 1 ] || { say "status: exit status $rc, want 1"; return 1; }
	has "$TMP/unreach.err" "not reachable on $addr" || return 1
	has "$TMP/unreach.err" "status-listen" || return 1
	has "$TMP/unreach.out" "^kmtlsd +not running" || return 1
	ctl unreach_json --json stats --endpoint "$addr"
	[ "$rc" -eq 1 ] || { say "stats --json: exit status $rc, want 1"; return 1; }
	expect "$TMP/unreach_json.out" 'd["kmtlsd"]["reachable"] is False' \
		"'$addr' in d['error'] and 'status-listen' in d['error']" \
		'd["hello_limit"]["state"] == "not loaded"' || return 1
	# A config that names an endpoint nobody serves, and one without any.
	f=$TMP/other.conf
	printf '[kmtlsd]\nstatus-listen = %s\n' "$addr" > "$f"
	ctl unreach_conf status --config "$f"
	[ "$rc" -eq 1 ] || { say "--config: exit status $rc, want 1"; return 1; }
	has "$TMP/unreach_conf.err" "address from status-listen in $f" || return 1
	printf '[kmtlsd]\nworkers = 1\n' > "$f"
	ctl unreach_none status --config "$f"
	[ "$rc" -eq 1 ] || { say "no status-listen: exit status $rc, want 1"; return 1; }
	has "$TMP/unreach_none.err" "$f sets no status-listen" &&
		has "$TMP/unreach_none.err" "add .status-listen = "
}

# ---- pki ---------------------------------------------------------------------

# pki_make ALG: DIR $TMP/pki-ALG with the CA, a server and a client of ALG.
pki_make() {
	local d=$TMP/pki-$1
	ctl "pki-$1-init" pki init "$d" --key "$1" --days 30
	[ "$rc" -eq 0 ] || { say "pki init: $rc"; say_file "$TMP/pki-$1-init.err"; return 1; }
	ctl "pki-$1-server" pki issue "$d" server --server --key "$1" \
		--san DNS:localhost,IP:127.0.0.1,IP:::1
	[ "$rc" -eq 0 ] || { say "pki issue server: $rc"; say_file "$TMP/pki-$1-server.err"; return 1; }
	ctl "pki-$1-client" --json pki issue "$d" client --client --key "$1" \
		--san URI:spiffe://example.org/client --san DNS:client.example.org
	[ "$rc" -eq 0 ] || { say "pki issue client: $rc"; say_file "$TMP/pki-$1-client.err"; return 1; }
	expect "$TMP/pki-$1-client.out" "d['key_type'] == '$1' and d['role'] == 'client'" \
		"d['san'] == ['URI:spiffe://example.org/client', 'DNS:client.example.org']" \
		"d['cert'] == '$d/client.pem' and len(d['serial']) == 32"
}

modes_ok() {
	local d=$1 f m
	for f in ca.key intermediate.key server.key client.key; do
		m=$(stat -c %a "$d/$f")
		[ "$m" = 600 ] || { say "$f is mode $m, want 600"; return 1; }
	done
	for f in ca.pem intermediate.pem server.pem client.pem; do
		m=$(stat -c %a "$d/$f")
		[ "$m" = 644 ] || { say "$f is mode $m, want 644"; return 1; }
	done
}

# 8: files, modes and chains for every key type.
case_pki_chains() {
	local alg d
	for alg in ec256 rsa2048 ed25519; do
		d=$TMP/pki-$alg
		pki_make "$alg" || return 1
		modes_ok "$d" || return 1
		openssl verify -CAfile "$d/ca.pem" -untrusted "$d/intermediate.pem" \
			"$d/server.pem" "$d/client.pem" >> "$DIAG" 2>&1 || return 1
		# The intermediate alone does not make a trust anchor.
		if openssl verify -CAfile "$d/intermediate.pem" "$d/server.pem" > /dev/null 2>&1; then
			say "$alg: the leaf verified against the intermediate alone"
			return 1
		fi
		openssl pkey -in "$d/client.key" -noout 2>> "$DIAG" || return 1
	done
}

# ext FILE: the certificate's text, one line per extension value.
ext() { openssl x509 -in "$1" -noout -text 2>/dev/null | tr -s ' '; }

# 9: the extensions, as openssl reads them.
case_pki_extensions() {
	local d=$TMP/pki-ec256 r i s c skid_i akid_s
	r=$(ext "$d/ca.pem")
	i=$(ext "$d/intermediate.pem")
	s=$(ext "$d/server.pem")
	c=$(ext "$d/client.pem")
	printf '%s\n' "$s" > "$TMP/server.txt"
	grep -q 'CA:TRUE, pathlen:1' <<< "$r" || { say "root: no CA:TRUE, pathlen:1"; return 1; }
	grep -q 'CA:TRUE, pathlen:0' <<< "$i" || { say "intermediate: no pathlen:0"; return 1; }
	for x in "$r" "$i"; do
		grep -A1 'Key Usage: critical' <<< "$x" | grep 'Certificate Sign, CRL Sign' > /dev/null ||
			{ say "a CA without keyUsage keyCertSign, cRLSign"; return 1; }
	done
	grep -q 'CA:FALSE' <<< "$s" && grep -q 'CA:FALSE' <<< "$c" ||
		{ say "a leaf without CA:FALSE"; return 1; }
	grep -A1 'Key Usage: critical' <<< "$s" | grep 'Digital Signature' > /dev/null ||
		{ say "server: no keyUsage digitalSignature"; return 1; }
	grep -q 'TLS Web Server Authentication' <<< "$s" &&
		! grep -q 'TLS Web Client Authentication' <<< "$s" ||
		{ say "server: extKeyUsage is not serverAuth alone"; return 1; }
	grep -q 'TLS Web Client Authentication' <<< "$c" &&
		! grep -q 'TLS Web Server Authentication' <<< "$c" ||
		{ say "client: extKeyUsage is not clientAuth alone"; return 1; }
	grep -q 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1' <<< "$s" ||
		{ say "server SAN:"; say_file "$TMP/server.txt" 40; return 1; }
	grep -q 'URI:spiffe://example.org/client, DNS:client.example.org' <<< "$c" ||
		{ say "client: wrong SAN"; return 1; }
	grep -q 'Subject: O = kmtls, CN = server' <<< "$s" ||
		{ say "server: wrong subject"; return 1; }
	skid_i=$(printf '%s\n' "$i" | grep -A1 'Subject Key Identifier' | tail -n1)
	akid_s=$(printf '%s\n' "$s" | grep -A1 'Authority Key Identifier' | tail -n1 | sed 's/keyid://')
	[ -n "$skid_i" ] && [ "$skid_i" = "$akid_s" ] ||
		{ say "server AKID '$akid_s' is not the intermediate's SKID '$skid_i'"; return 1; }
	# Random serials: 16 bytes each, all different.
	for f in ca intermediate server client; do
		openssl x509 -in "$d/$f.pem" -noout -serial | cut -d= -f2
	done > "$TMP/serials"
	[ "$(sort -u "$TMP/serials" | wc -l)" -eq 4 ] &&
		! grep -qvE '^[0-9A-F]{32}$' "$TMP/serials" ||
		{ say "serials:"; say_file "$TMP/serials"; return 1; }
	# --days: 30 for the CA, the server's default 365 cut to the whole days
	# the intermediate has left (29 or 30, by the second init and issue ran).
	[ "$(openssl x509 -in "$d/server.pem" -noout -checkend $((28 * 86400)) >/dev/null; echo $?)" = 0 ] &&
		[ "$(openssl x509 -in "$d/server.pem" -noout -checkend $((31 * 86400)) >/dev/null; echo $?)" = 1 ] ||
		{ say "server validity is not about 30 days"; return 1; }
	has "$TMP/pki-ec256-server.err" "the intermediate CA expires in [0-9]+ days"
}

# 10: existing files stay unless --force; --force replaces with 0600 keys.
case_pki_refuse() {
	local d=$TMP/pki-ec256 before after key
	before=$(sha256sum "$d"/*.pem "$d"/*.key)
	key=$(sha256sum < "$d/server.key")
	ctl refuse_issue pki issue "$d" server --server
	[ "$rc" -eq 1 ] || { say "issue over server.pem: exit $rc, want 1"; return 1; }
	has "$TMP/refuse_issue.err" "server.pem exists.*--force" || return 1
	ctl refuse_init --json pki init "$d"
	[ "$rc" -eq 1 ] || { say "init over a CA: exit $rc, want 1"; return 1; }
	expect "$TMP/refuse_init.out" "'ca.pem exists' in d['error']" || return 1
	after=$(sha256sum "$d"/*.pem "$d"/*.key)
	[ "$before" = "$after" ] || { say "files changed without --force"; return 1; }
	ls "$d" | grep tmp > /dev/null && { say "temporary files left: $(ls "$d")"; return 1; }
	ctl force_issue pki issue "$d" server --server --force --san DNS:localhost
	[ "$rc" -eq 0 ] || { say "--force: exit $rc"; say_file "$TMP/force_issue.err"; return 1; }
	[ "$(sha256sum < "$d/server.key")" != "$key" ] || { say "--force kept the old key"; return 1; }
	[ "$(stat -c %a "$d/server.key")" = 600 ] || { say "forced key is not 0600"; return 1; }
	ctl bad_name pki issue "$d" ../x --client
	[ "$rc" -eq 2 ] || { say "NAME ../x: exit $rc, want 2"; return 1; }
	ctl no_ca pki issue "$TMP/nowhere" x --client
	[ "$rc" -eq 1 ] && has "$TMP/no_ca.err" "kmtlsctl pki init"
}

# 11-13: kmtlsd serves mTLS with a kmtlsctl PKI: both ends verify the other,
# the allow-list matches the client's SPIFFE ID, a client of another CA is
# refused; kmtlsd's counters say so.
case_pki_mtls() {
	local alg=$1 d=$TMP/pki-$1 n=3
	[ -s "$d/client.pem" ] || { say "no PKI from the chains case"; return 1; }
	start_kmtlsd "mtls-$alg" 1 "$d/server.pem" "$d/server.key" "$d/ca.pem" \
		"allow-uri = spiffe://example.org/*" || return 1
	client "mtls-$alg" "${K_PORTS[0]}" "$d/ca.pem" "$d/client.pem" "$d/client.key" "$n" || {
		say "client with the $alg PKI:"
		say_file "$TMP/mtls-$alg.client"
		say_file "$K_LOG" 5
		stop_pid "$K_PID"
		return 1
	}
	if client "mtls-$alg-other" "${K_PORTS[0]}" "$d/ca.pem" "$PKI/client.pem" \
		"$PKI/client.key" 1; then
		say "a client of another CA got through"
		stop_pid "$K_PID"
		return 1
	fi
	if [ "$alg" = ec256 ]; then
		timeout -k 5 60 "$BENCH" --json --connect "127.0.0.1:${K_PORTS[0]}" \
			--cert "$d/client.pem" --key "$d/client.key" --ca "$d/ca.pem" \
			--mode full --concurrency 1 --duration 0.5 --warmup 0 \
			> "$TMP/mtls-bench.json" 2> "$TMP/mtls-bench.err"
		expect "$TMP/mtls-bench.json" 'd["ok"] > 0 and d["failed"] == 0' || {
			say_file "$TMP/mtls-bench.err"
			stop_pid "$K_PID"
			return 1
		}
	fi
	K_SOCK_NOW=$K_SOCK
	wait_until 10 mtls_failed_counted
	ctl "mtls-$alg-stats" --json stats --endpoint "unix:$K_SOCK"
	stop_pid "$K_PID"
	expect "$TMP/mtls-$alg-stats.out" \
		"L['l1']['handshakes']['ok'] >= $n and L['l1']['handshakes']['failed'] == 1"
}

mtls_failed_counted() {
	"$KMTLSCTL" --json stats --endpoint "unix:$K_SOCK_NOW" 2> /dev/null |
		"$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["kmtlsd"]["totals"]["handshakes"]["failed"] < 1)'
}

main() {
	cleanup_on_exit
	ktap_plan "$NTESTS"
	setup
	echo "# kmtlsctl $KMTLSCTL, echo backend on 127.0.0.1:$B_PORT, kernel $(uname -r)"

	run_case traffic_with_known_counts case_traffic
	run_case status_json_counts case_status_json
	run_case status_text case_status_text
	run_case stats_json_per_listener case_stats_json
	run_case stats_text_per_listener case_stats_text
	run_case endpoint_from_config case_config_endpoint
	run_case unreachable_endpoint_is_an_error case_unreachable
	run_case pki_chains_verify case_pki_chains
	run_case pki_extensions case_pki_extensions
	run_case pki_refuses_overwrite case_pki_refuse
	run_case pki_mtls_ec256 case_pki_mtls ec256
	run_case pki_mtls_rsa2048 case_pki_mtls rsa2048
	run_case pki_mtls_ed25519 case_pki_mtls ed25519
	run_case help_and_usage case_help
	run_case bpf_hello_limit_loaded case_bpf_loaded
	run_case pki_refuses_mismatched_intermediate_key case_pki_key_mismatch
	run_case pki_names_fit_or_are_refused case_pki_names
	run_case pki_init_dates_from_one_clock case_pki_one_clock

	echo "# $failures of $NTESTS failed, $((SECONDS - started)) s"
	[ "$failures" -eq 0 ]
}

# 14: --help per verb (exit 0), bad arguments (exit 2).
case_help() {
	local v
	for v in status stats pki; do
		ctl "help-$v" "$v" --help
		[ "$rc" -eq 0 ] && has "$TMP/help-$v.out" "^usage: kmtlsctl" || return 1
	done
	ctl bad_opt status --bogus
	[ "$rc" -eq 2 ] || { say "status --bogus: exit $rc, want 2"; return 1; }
	ctl bad_key pki init "$TMP/x" --key dsa
	[ "$rc" -eq 2 ] || { say "pki init --key dsa: exit $rc, want 2"; return 1; }
	ctl bad_role pki issue "$TMP/x" y
	[ "$rc" -eq 2 ] || { say "pki issue without a role: exit $rc, want 2"; return 1; }
	ctl bad_san pki issue "$TMP/x" y --server --san IP:nope
	[ "$rc" -eq 2 ] && has "$TMP/bad_san.err" "not an IPv4 or IPv6 address"
}

# 15: hello_limit loaded (maps pinned by `ratelimit set`, attached nowhere)
# on a bpffs of this run: status says so, stats has its counters.
case_bpf_loaded() {
	local pins=$TMP/bpffs/kmtls
	if ! bpffs_mount "$TMP/bpffs" 2> "$TMP/mount.err"; then
		SKIP="cannot mount bpffs: $(head -n1 "$TMP/mount.err")"
		return 0
	fi
	KMTLS_BPF_PIN_DIR=$pins ctl rl_set ratelimit set --rate 50
	if [ "$rc" -ne 0 ]; then
		if grep -qiE 'operation not permitted|permission' "$TMP/rl_set.err"; then
			SKIP="cannot load BPF programs here: $(head -n1 "$TMP/rl_set.err")"
			return 0
		fi
		say "ratelimit set: exit $rc"
		say_file "$TMP/rl_set.err"
		return 1
	fi
	KMTLS_BPF_PIN_DIR=$pins ctl bpf_status --json status --endpoint "unix:$MAIN_SOCK"
	[ "$rc" -eq 0 ] || { say "status: exit $rc"; say_file "$TMP/bpf_status.err"; return 1; }
	expect "$TMP/bpf_status.out" 'd["bpf"]["hello_limit"]["state"] == "loaded"' \
		'd["bpf"]["hello_limit"]["attached"] == []' \
		'd["bpf"]["hs_latency"]["state"] == "not loaded"' || return 1
	KMTLS_BPF_PIN_DIR=$pins ctl bpf_text status --endpoint "unix:$MAIN_SOCK"
	has "$TMP/bpf_text.out" "hello_limit: loaded, not attached" || return 1
	KMTLS_BPF_PIN_DIR=$pins ctl bpf_stats --json stats --endpoint "unix:$MAIN_SOCK"
	expect "$TMP/bpf_stats.out" 'd["hello_limit"]["counters"]["seen"] == 0' \
		'len(d["hello_limit"]["counters"]) == 15' \
		'"hello_ok" in d["hello_limit"]["counters"]'
}

# 16: an intermediate.key that is not intermediate.pem's: refused, nothing
# written (signed with it, a certificate would fail openssl verify).
case_pki_key_mismatch() {
	local d=$TMP/pki-mix o=$TMP/pki-mix-other
	ctl mix-init pki init "$d" && ctl mix-other pki init "$o" ||
		{ say "pki init: exit $rc"; return 1; }
	cp "$d/intermediate.key" "$TMP/mix-own.key"
	cp "$o/intermediate.key" "$d/intermediate.key"
	ctl mix-issue pki issue "$d" web --server
	if [ "$rc" != 1 ]; then
		say "issue with another intermediate's key: exit $rc, want 1"
		[ -e "$d/web.pem" ] && openssl verify -CAfile "$d/ca.pem" \
			-untrusted "$d/intermediate.pem" "$d/web.pem" >> "$DIAG" 2>&1
		return 1
	fi
	has "$TMP/mix-issue.err" "$d/intermediate.key is not the key of $d/intermediate.pem" ||
		return 1
	[ ! -e "$d/web.pem" ] && [ ! -e "$d/web.key" ] || { say "files written anyway"; return 1; }
	ctl mix-json --json pki issue "$d" web --server
	[ "$rc" = 1 ] && expect "$TMP/mix-json.out" '"is not the key of" in d["error"]' || return 1
	# The right key back: issued, and it verifies.
	cp "$TMP/mix-own.key" "$d/intermediate.key"
	ctl mix-own pki issue "$d" web --server
	[ "$rc" = 0 ] || { say "issue with the right key: exit $rc"; say_file "$TMP/mix-own.err"; return 1; }
	openssl verify -CAfile "$d/ca.pem" -untrusted "$d/intermediate.pem" "$d/web.pem" \
		>> "$DIAG" 2>&1
}

# 17: a NAME the common name holds exactly (63), or a usage error; DNS
# labels of at most 63 characters; no empty label in the default SAN.
case_pki_names() {
	local d=$TMP/pki-names n63 n64 cn
	n63=$(printf 'n%.0s' $(seq 63))
	n64=${n63}n
	ctl names-init pki init "$d" || { say "pki init: exit $rc"; return 1; }
	ctl name64 pki issue "$d" "$n64" --client
	[ "$rc" = 2 ] || { say "a 64-character NAME: exit $rc, want 2"; return 1; }
	has "$TMP/name64.err" "the certificate's common name holds at most 63" || return 1
	[ ! -e "$d/$n64.pem" ] || { say "a 64-character NAME got a certificate"; return 1; }
	ctl name63 pki issue "$d" "$n63" --client
	[ "$rc" = 0 ] || { say "a 63-character NAME: exit $rc"; say_file "$TMP/name63.err"; return 1; }
	cn=$(openssl x509 -in "$d/$n63.pem" -noout -subject -nameopt multiline |
		sed -n 's/^ *commonName *= //p')
	[ "$cn" = "$n63" ] || { say "CN '$cn', want the 63-character NAME"; return 1; }
	ctl label64 pki issue "$d" lab --client --san "DNS:$n64.example.org"
	[ "$rc" = 2 ] && has "$TMP/label64.err" "a DNS label has at most 63 characters" ||
		{ say "a 64-character DNS label: exit $rc, want 2"; return 1; }
	ctl label63 pki issue "$d" lab --client --san "DNS:$n63.example.org"
	[ "$rc" = 0 ] || { say "a 63-character DNS label: exit $rc"; return 1; }
	ctl dots pki issue "$d" a..b --client
	[ "$rc" = 2 ] && has "$TMP/dots.err" "an empty label"
}

# 18: init dates the root and the intermediate from one reading of the
# clock: with time(2) a second later at every call, both still agree (they
# differed by the time between the two certificates: up to a second with
# rsa2048 keys, so the intermediate could outlive its root).
case_pki_one_clock() {
	local d=$TMP/pki-clock root inter
	need_files -e "$OUT/selftests/lib/steptime.so" || { say "$MISSING missing (make userspace)"; return 1; }
	LD_PRELOAD=$OUT/selftests/lib/steptime.so \
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		ctl clock pki init "$d"
	[ "$rc" = 0 ] || { say "pki init: exit $rc"; say_file "$TMP/clock.err"; return 1; }
	root=$(openssl x509 -in "$d/ca.pem" -noout -dates | tr '\n' ' ')
	inter=$(openssl x509 -in "$d/intermediate.pem" -noout -dates | tr '\n' ' ')
	[ "$root" = "$inter" ] || { say "root: $root; intermediate: $inter"; return 1; }
}

main "$@"
