#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# hello_limit on a real interface: a ClientHello flood from many sources
# while a legitimate client completes real mTLS handshakes with kmtlsd.
#
#   netns cli (10.199.0.2, fd00:199::2)  --veth--  netns srv (10.199.0.1, fd00:199::1)
#     hello_flood: raw frames from          hello_limit (XDP, native on veth)
#       10.199.16.1 .. 10.199.16.N4,        kmtlsd 10.199.0.1:8443 -> test_backend
#       fd00:199:100:i::/64 (random IIDs)     (echo) on the namespace's 127.0.0.1
#     openssl s_client with the test PKI
#
# enforce: at least 99% of the legitimate handshakes succeed, every flooding
# source gets at most burst + rate * t ClientHellos through, and each
# over-limit ClientHello is dropped and counted. monitor (fresh maps, same
# flood): nothing is dropped and the over-limit counts match enforce's.
#
# Traffic stays in the two namespaces made here; maps and links are pinned
# in a bpffs mounted for this run only. Everything goes at exit (trap).
#
#   KMTLS_OUT  build output (default <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default <repo>/build/pki;
#              made privately when missing)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

FLOOD_BIN=$OUT/selftests/bpf/hello_flood

# The limiter's budget per source, and the flood: every source sends
# PER_SOURCE ClientHellos at FLOOD_RATE per second, far over the budget.
RATE=20
BURST=40
SOURCES4=192
SOURCES6=64
FLOOD_RATE=100
PER_SOURCE=1200
LEGIT=100		# handshakes per mode
LEGIT_GAP=0.06		# between handshakes: well inside RATE for this source
PORT=8443
START_TIMEOUT=20

NTESTS=8
SUF=$$
SRV=kmtls-fl-srv-$SUF
CLI=kmtls-fl-cli-$SUF
IF_S=kfls$SUF
IF_C=kflc$SUF
DIAG=/dev/null

# PIDS are the `ip netns exec` wrappers this script backgrounded (a
# function run with & is a subshell that forks ip, so $! is not kmtlsd): the
# processes themselves are found in our namespaces, where everything is ours.
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	netns_kill "$SRV" "$CLI"
	for p in "${PIDS[@]}"; do
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PIDS=()
	# Pinned links go with the bpffs; the namespaces take the veth along.
	netns_del "$SRV" "$CLI"
	tmp_cleanup
}
cleanup_on_exit

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }
# kmtlsctl in the server's network namespace but the host's mount namespace,
# so it sees the bpffs mounted for this run (ip netns exec remounts /sys).
ctl() { nsenter --net="/run/netns/$SRV" "$KMTLSCTL" "$@"; }

# ---- setup -------------------------------------------------------------------

setup() {
	need_files -x "$KMTLSD" "$KMTLSCTL" "$BACKEND" "$FLOOD_BIN" ||
		{ SKIP="$MISSING not built (make userspace)"; return 1; }
	is_root || { SKIP="needs root (netns, XDP)"; return 1; }
	need_tools openssl nsenter ip || { SKIP="no $MISSING"; return 1; }
	TMP=$(mktemp -d /tmp/kmtls-flood.XXXXXX)
	DIAG=$TMP/diag
	: > "$DIAG"
	pki_ensure || { say "mkpki.sh failed"; say_file "$TMP/mkpki.log" 10; return 1; }
	bpffs_mount "$TMP/bpffs" || { say "cannot mount bpffs on $TMP/bpffs"; return 1; }

	netns_add "$SRV" "$CLI" || return 1
	veth "$SRV" "$IF_S" "$CLI" "$IF_C" || return 1
	for ns in "$SRV" "$CLI"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0
	done
	ip -n "$SRV" addr add 10.199.0.1/24 dev "$IF_S"
	ip -n "$SRV" addr add fd00:199::1/64 dev "$IF_S" nodad
	ip -n "$CLI" addr add 10.199.0.2/24 dev "$IF_C"
	ip -n "$CLI" addr add fd00:199::2/64 dev "$IF_C" nodad
	# Replies to flood sources go back into the veth and die there.
	ip -n "$SRV" route add 10.199.16.0/20 via 10.199.0.2
	ip -n "$SRV" -6 route add fd00:199:100::/48 via fd00:199::2
	SRV_MAC=$(ip -n "$SRV" -br link show dev "$IF_S" | awk '{print $3}')

	start_backend echo backend in_srv || return 1

	in_srv "$KMTLSD" --foreground --workers 1 --listen "10.199.0.1:$PORT" \
		--backend "127.0.0.1:$B_PORT" --cert "$PKI/server.pem" \
		--key "$PKI/server.key" --ca "$PKI/ca.pem" > /dev/null 2> "$TMP/kmtlsd.log" &
	PIDS+=($!)
	wait_until 20 grep -q 'listening on' "$TMP/kmtlsd.log" ||
		{ say "kmtlsd did not start"; say_file "$TMP/kmtlsd.log" 10; return 1; }

	# One handshake before any limiter: the path itself works.
	if ! legit_once; then
		say "a handshake without any flood failed:"
		say_file "$TMP/legit.out" 10
		return 1
	fi
	say "kmtlsd on 10.199.0.1:$PORT, veth $IF_S ($SRV_MAC) <-> $IF_C"
}

# attach_limiter MODE PINDIR: fresh maps in PINDIR, the test's budget.
attach_limiter() {
	export KMTLS_BPF_PIN_DIR=$2
	ctl ratelimit attach "$IF_S" --mode native --ports "$PORT" > "$TMP/attach.out" 2>&1 ||
		{ say "attach failed:"; say_file "$TMP/attach.out" 10; return 1; }
	ctl ratelimit set --rate "$RATE" --burst "$BURST" --global-rate 0 --mode "$1" \
		>> "$TMP/attach.out" 2>&1 ||
		{ say "set failed:"; say_file "$TMP/attach.out" 10; return 1; }
	say "$(head -n 1 "$TMP/attach.out"), $1, $RATE/s burst $BURST per source"
}

# ---- the legitimate client ------------------------------------------------

# Connections test_backend has finished (one JSON line each in its report).
backend_conns() { grep -c '"conn"' "$TMP/backend.report" 2>/dev/null || true; }
backend_has() { [ "$(backend_conns)" -ge "$1" ]; }

legit_once() { pki_handshake "$CLI" "10.199.0.1:$PORT" "$TMP/legit.out"; }

# legit_run N: N handshakes in a row; sets LEGIT_OK.
legit_run() {
	local i
	LEGIT_OK=0
	for ((i = 0; i < $1; i++)); do
		if legit_once; then
			LEGIT_OK=$((LEGIT_OK + 1))
		else
			cp "$TMP/legit.out" "$TMP/legit.fail.$i"
		fi
		sleep "$LEGIT_GAP"
	done
}

# ---- one mode ------------------------------------------------------------------

# flood_phase MODE: flood and legitimate client together, then the numbers.
# Leaves flood.MODE.json (generator) and status.MODE.json (kmtlsctl status);
# sets LEGIT_OK and BACKEND_CONNS (handshakes kmtlsd completed: it connects
# to the backend only after a verified mTLS handshake).
flood_phase() {
	local mode=$1 fpid before
	before=$(backend_conns)
	in_cli "$FLOOD_BIN" --ifname "$IF_C" --dst-mac "$SRV_MAC" --port "$PORT" \
		--count "$PER_SOURCE" --rate "$FLOOD_RATE" \
		--dst4 10.199.0.1 --src4 10.199.16.0 --sources4 "$SOURCES4" \
		--dst6 fd00:199::1 --src6 fd00:199:100:: --sources6 "$SOURCES6" \
		> "$TMP/flood.$mode.json" 2> "$TMP/flood.$mode.err" &
	fpid=$!
	PIDS+=("$fpid")
	sleep 1				# the flood is on before the first handshake
	legit_run "$LEGIT"
	wait "$fpid"
	forget "$fpid"
	wait_until 10 backend_has $((before + LEGIT_OK))
	BACKEND_CONNS=$(($(backend_conns) - before))
	ctl --json ratelimit status --top 0 > "$TMP/status.$mode.json"
}

# check PYTHON-EXPR...: evaluate checks over the phase's JSON; prints lines
# for the diagnostics and exits non-zero when one fails.
check() {
	"$PY" - "$TMP/flood.$1.json" "$TMP/status.$1.json" "$RATE" "$BURST" \
		"${2:-}" <<'EOF' >> "$DIAG"
import json, sys
flood = json.load(open(sys.argv[1]))
st = json.load(open(sys.argv[2]))
rate, burst = int(sys.argv[3]), int(sys.argv[4])
what = sys.argv[5]
c = st["counters"]
secs = flood["elapsed_ms"] / 1000.0
hellos = c["hello_ok"] + c["over_source"] + c["over_global"] + c["hello_allowed"]
ok = True
if what == "budget":
    # GCRA: at most burst + rate * t over t seconds; 0.1 s for packets still
    # in flight when the generator stops its clock, 1 for rounding.
    cap = burst + rate * (secs + 0.1) + 1
    srcs = [s for s in st["top_sources"] if not s["source"].startswith("10.199.0.")]
    worst = max(srcs, key=lambda s: s["admitted"]) if srcs else None
    print("flood: %d ClientHellos from %d sources in %.1f s; %d sources tracked"
          % (flood["sent"], flood["sources"], secs, len(srcs)))
    if worst:
        print("most admitted: %s, %d (cap %.0f), limited %d"
              % (worst["source"], worst["admitted"], cap, worst["limited"]))
    if len(srcs) != flood["sources"]:
        print("expected one entry per flooding source (IPv6 aggregated per /64)")
        ok = False
    for s in srcs:
        if s["admitted"] > cap or s["limited"] == 0:
            print("source %s: admitted %d, limited %d" % (s["source"], s["admitted"], s["limited"]))
            ok = False
elif what == "counted":
    print("seen %d, ClientHellos %d (sent %d), ok %d, over_source %d, dropped %d"
          % (c["seen"], hellos, flood["sent"], c["hello_ok"], c["over_source"], c["dropped"]))
    if hellos < 0.98 * flood["sent"] or hellos > flood["sent"] + 2000:
        print("the program did not see the flood")
        ok = False
    if c["over_source"] == 0:
        ok = False
    if c["seen"] != c["passed"] + c["dropped"]:
        ok = False
    if st["config"]["mode"] == "enforce":
        ok = ok and c["dropped"] == c["over_source"] + c["over_global"]
    else:
        ok = ok and c["dropped"] == 0
sys.exit(0 if ok else 1)
EOF
}

# over_source MODE: the counter after that mode's flood (0 when unknown).
over_source() {
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["counters"]["over_source"])' \
		"$TMP/status.$1.json" 2>/dev/null || echo 0
}

legit_verdict() {
	say "$LEGIT_OK of $LEGIT handshakes succeeded for openssl, $BACKEND_CONNS reached the backend"
	[ "$LEGIT_OK" -ge $((LEGIT * 99 / 100)) ] && [ "$BACKEND_CONNS" -ge $((LEGIT * 99 / 100)) ] &&
		return 0
	for f in "$TMP"/legit.fail.*; do
		[ -e "$f" ] && { say "a failed handshake:"; say_file "$f" 5; break; }
	done
	return 1
}

# ---- main ------------------------------------------------------------------------

ktap_plan "$NTESTS"
SKIP=
setup
rc=$?
ktap_result flood.setup "$rc"
if [ "$rc" -ne 0 ]; then
	ktap_skip_rest flood.skipped "setup did not complete"
	ktap_exit
fi

rc=1
attach_limiter enforce "$TMP/bpffs/enforce" && flood_phase enforce && rc=0
[ "$rc" -eq 0 ] && legit_verdict || rc=1
ktap_result flood.enforce.legitimate_handshakes "$rc"

check enforce budget
ktap_result flood.enforce.sources_held_to_budget $?
check enforce counted
ktap_result flood.enforce.overlimit_dropped_and_counted $?
ENFORCE_OVER=$(over_source enforce)
ctl ratelimit detach "$IF_S" > /dev/null 2>&1

rc=1
attach_limiter monitor "$TMP/bpffs/monitor" && flood_phase monitor && rc=0
[ "$rc" -eq 0 ] && legit_verdict || rc=1
ktap_result flood.monitor.legitimate_handshakes "$rc"

check monitor counted
ktap_result flood.monitor.nothing_dropped $?

MONITOR_OVER=$(over_source monitor)
say "over_source: enforce $ENFORCE_OVER, monitor $MONITOR_OVER"
# The same flood against the same budgets: equal up to timing (3%).
[ "$ENFORCE_OVER" -gt 0 ] && [ $((100 * (ENFORCE_OVER - MONITOR_OVER) / ENFORCE_OVER)) -le 3 ] &&
	[ $((100 * (MONITOR_OVER - ENFORCE_OVER) / ENFORCE_OVER)) -le 3 ]
ktap_result flood.monitor.counts_match_enforce $?

rc=0
ctl ratelimit detach "$IF_S" > "$TMP/detach.out" 2>&1 || { rc=1; say_file "$TMP/detach.out" 10; }
if ip -n "$SRV" link show dev "$IF_S" | grep 'prog/xdp' > /dev/null; then
	say "an XDP program is still on $IF_S"
	rc=1
fi
ktap_result flood.detach_leaves_interface_clean "$rc"

[ "$failures" -eq 0 ]
