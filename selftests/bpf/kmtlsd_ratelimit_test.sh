#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsd's [ratelimit] section: kmtlsd attaches and configures hello_limit
# on a veth in a network namespace, with the same pins kmtlsctl reads.
#
#   netns cli (10.197.0.2)  --veth A--  netns srv (10.197.0.1)
#     hello_flood, openssl               kmtlsd 10.197.0.1:8443 -> test_backend
#                           --veth B--   (second interface, for reloads)
#
# Bad sections are refused at start with the operator's sentence (a bad
# mode, a bad prefix, a missing interface, no CAP_BPF/CAP_NET_ADMIN, no
# bpffs); a good one attaches; kmtlsctl ratelimit status --json shows the
# settings; SIGHUP applies a new rate, keeps the old settings when the
# section is bad, moves the limiter between interfaces (a foreign XDP
# program only with force = yes) and syncs the allowlist; a ClientHello
# flood is held to the budget; kmtlsd's exit leaves the limiter attached
# and a restarted kmtlsd adopts it. kmtlsd runs as user nobody with its
# sandbox on: reloads go through its privileged helper.
#
# Pins go to a bpffs mounted for this run; the namespaces, the mount and
# every process in the namespaces go at exit.
#
#   KMTLS_OUT  build output (default <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default <repo>/build/pki)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

FLOOD_BIN=$OUT/selftests/bpf/hello_flood
XDP_PASS=$OUT/bpf/xdp_pass.bpf.o

PORT=8443
SUF=$$
SRV=kmtls-rl-srv-$SUF
CLI=kmtls-rl-cli-$SUF
IF_S=krls$SUF		# A: the limiter starts here
IF_C=krlc$SUF
IF_S2=krlt$SUF		# B: reloads move it here
IF_C2=krld$SUF
NTESTS=17
KPID=			# the running kmtlsd
HELPER=			# its [ratelimit] helper

# Everything in our namespaces is ours: kmtlsd, its helper, the backend.
cleanup() {
	netns_kill "$SRV" "$CLI"
	wait 2>/dev/null
	netns_del "$SRV" "$CLI"
	tmp_cleanup
}
cleanup_on_exit

ctl() { nsenter --net="/run/netns/$SRV" "$KMTLSCTL" "$@"; }

xdp_prog_on() { ip -n "$SRV" -d link show dev "$1" 2>/dev/null | sed -n 's/.*prog\/xdp id [0-9]* name \([^ ]*\).*/\1/p'; }

# conf FILE [RATELIMIT LINES...]: a config with one listener and, when
# lines are given, a [ratelimit] section of them.
conf() {
	local f=$1 l
	shift
	{
		printf '[kmtlsd]\nworkers = 1\nuser = nobody\n\n'
		printf '[listener web]\nlisten = 10.197.0.1:%s\nbackend = 127.0.0.1:%s\n' \
			"$PORT" "$BPORT"
		printf 'cert = %s/server.pem\nkey = %s/server.key\nca = %s/ca.pem\n' \
			"$TMP/pki" "$TMP/pki" "$TMP/pki"
		if [ $# -gt 0 ]; then
			printf '\n[ratelimit]\n'
			for l in "$@"; do printf '%s\n' "$l"; done
		fi
	} > "$f"
}

GOOD=("interfaces = $IF_S" "xdp-mode = native" "ports = $PORT" "rate = 20" "burst = 40"
      "global-rate = 0" "mode = enforce" "allow = 192.0.2.0/24 2001:db8::/48")

# refused_at_start WANT_RC WANT_TEXT [ENV/WRAPPER...] -- LINES...: kmtlsd with
# that section must exit WANT_RC, saying WANT_TEXT, without serving.
refused_at_start() {
	local want_rc=$1 want=$2 wrap=() rc
	shift 2
	while [ "$1" != -- ]; do wrap+=("$1"); shift; done
	shift
	conf "$TMP/bad.conf" "$@"
	timeout 20 ip netns exec "$SRV" "${wrap[@]}" "$KMTLSD" --foreground -c "$TMP/bad.conf" \
		> /dev/null 2> "$TMP/bad.log"
	rc=$?
	sed -n '1,3p' "$TMP/bad.log"
	expect_eq "exit status" "$rc" "$want_rc" || return 1
	grep -qF -- "$want" "$TMP/bad.log" || { echo "no \"$want\" in the log"; return 1; }
	! grep -q 'listening on' "$TMP/bad.log" || { echo "it served"; return 1; }
	expect_eq "XDP on $IF_S" "$(xdp_prog_on "$IF_S")" ""
}

# ---- setup -------------------------------------------------------------------

setup() {
	local ready ns
	need_files -e "$KMTLSD" "$KMTLSCTL" "$BACKEND" "$FLOOD_BIN" "$XDP_PASS" ||
		{ SKIP="$MISSING not built (make userspace)"; return 1; }
	is_root || { SKIP="needs root (netns, XDP)"; return 1; }
	need_tools openssl nsenter ip setpriv || { SKIP="no $MISSING"; return 1; }
	id nobody > /dev/null 2>&1 || { SKIP="no user nobody"; return 1; }
	TMP=$(mktemp -d /tmp/kmtls-rl.XXXXXX)
	chmod 755 "$TMP"
	pki_ensure || { echo "mkpki.sh failed"; return 1; }
	# kmtlsd re-reads its key on SIGHUP as nobody: a copy nobody owns.
	mkdir -m 755 "$TMP/pki" && cp "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem" "$TMP/pki/" &&
		chown nobody "$TMP/pki/server.key" || return 1
	bpffs_mount "$TMP/bpffs" || { echo "cannot mount bpffs"; return 1; }
	export KMTLS_BPF_PIN_DIR=$TMP/bpffs/kmtls

	netns_add "$SRV" "$CLI" || return 1
	veth "$SRV" "$IF_S" "$CLI" "$IF_C" && veth "$SRV" "$IF_S2" "$CLI" "$IF_C2" || return 1
	ip -n "$SRV" addr add 10.197.0.1/24 dev "$IF_S"
	ip -n "$CLI" addr add 10.197.0.2/24 dev "$IF_C"
	ip -n "$SRV" addr add 10.197.1.1/24 dev "$IF_S2"
	ip -n "$CLI" addr add 10.197.1.2/24 dev "$IF_C2"
	ip -n "$SRV" route add 10.197.16.0/20 via 10.197.0.2
	SRV_MAC=$(ip -n "$SRV" -br link show dev "$IF_S" | awk '{print $3}')

	ready=$TMP/backend.ready
	ip netns exec "$SRV" "$BACKEND" --listen 127.0.0.1:0 --mode echo --ready-file "$ready" \
		> /dev/null 2> "$TMP/backend.err" &
	wait_until 20 test -s "$ready" || { echo "backend did not start"; return 1; }
	BPORT=$(cat "$ready")
	echo "veth $IF_S and $IF_S2 in $SRV; backend on 127.0.0.1:$BPORT"
}

# start_kmtlsd CONF: kmtlsd in the server namespace, until it listens.
start_kmtlsd() {
	: > "$TMP/kmtlsd.log"
	ip netns exec "$SRV" "$KMTLSD" --foreground -c "$1" > /dev/null 2>> "$TMP/kmtlsd.log" &
	KPID=$!
	if ! wait_until 20 grep -q 'listening on' "$TMP/kmtlsd.log"; then
		echo "kmtlsd did not start:"
		tail -n 5 "$TMP/kmtlsd.log"
		return 1
	fi
	HELPER=$(sed -n 's/.*ratelimit: process \([0-9]*\) applies.*/\1/p' "$TMP/kmtlsd.log" | tail -n1)
}

status() { ctl --json ratelimit status --top 0; }

# reload LINES...: rewrite the section, SIGHUP, and wait for the helper's
# word: its settings line when applied, a "[ratelimit]" error otherwise.
reload() {
	local n
	n=$(wc -l < "$TMP/kmtlsd.log")
	conf "$TMP/kmtlsd.conf" "$@"
	kill -HUP "$KPID"
	wait_until 20 eval 'tail -n +$((n + 1)) "$TMP/kmtlsd.log" |
		grep -q "ratelimit: \(enforce\|monitor\), ports\|reload: .*\[ratelimit\]"' ||
		echo "no word from the [ratelimit] helper after SIGHUP"
	tail -n +$((n + 1)) "$TMP/kmtlsd.log" | grep 'ratelimit' | sed 's/^[^ ]* //'
}

# ---- cases -----------------------------------------------------------------------

t_bad_mode() {
	refused_at_start 2 "bad.conf:14: [ratelimit] mode = \"block\": expected enforce or monitor" \
		-- "interfaces = $IF_S" "mode = block"
}

t_bad_prefix() {
	refused_at_start 2 "[ratelimit] allow: \"10.1.0.0/33\" is not a prefix" \
		-- "interfaces = $IF_S" "allow = 10.0.0.0/8 10.1.0.0/33"
}

t_missing_interface() {
	refused_at_start 1 "[ratelimit] interfaces: no interface 'nosuch$SUF' in kmtlsd's network namespace" \
		-- "interfaces = $IF_S nosuch$SUF"
}

t_no_privileges() {
	refused_at_start 1 "the XDP limiter needs CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN" \
		setpriv --bounding-set=-bpf,-sys_admin,-net_admin --inh-caps=-all -- \
		"interfaces = $IF_S"
}

t_no_bpffs() {
	mkdir -p "$TMP/plain"
	KMTLS_BPF_PIN_DIR=$TMP/plain refused_at_start 1 "$TMP/plain is not on a bpf filesystem" \
		-- "interfaces = $IF_S"
}

t_start_attaches() {
	local j
	conf "$TMP/kmtlsd.conf" "${GOOD[@]}"
	start_kmtlsd "$TMP/kmtlsd.conf" || return 1
	grep 'ratelimit' "$TMP/kmtlsd.log" | sed 's/^[^ ]* //'
	grep -q "hello_limit attached to $IF_S (native XDP" "$TMP/kmtlsd.log" ||
		{ echo "no attach line"; return 1; }
	[ -n "$HELPER" ] && [ -d "/proc/$HELPER" ] || { echo "no helper process"; return 1; }
	expect_eq "XDP on $IF_S" "$(xdp_prog_on "$IF_S")" hello_limit
}

t_status_shows_settings() {
	local j
	j=$(status) || return 1
	expect_eq attached "$(jget "$j" attached.0.iface) $(jget "$j" attached.0.mode)" "$IF_S native" &&
	expect_eq "attached count" "$("$PY" -c 'import json,sys; print(len(json.loads(sys.argv[1])["attached"]))' "$j")" 1 &&
	expect_eq rate "$(jget "$j" config.rate)/$(jget "$j" config.burst)" 20/40 &&
	expect_eq ports "$(jget "$j" config.ports)" "[$PORT]" &&
	expect_eq mode "$(jget "$j" config.mode)" enforce &&
	expect_eq global "$(jget "$j" config.global_rate)" 0 &&
	expect_eq allowlist "$(jget "$j" allowlist)" '["192.0.2.0/24","2001:db8::/48"]'
}

rate_is() { [ "$(jget "$(status)" config.rate)" = "$1" ]; }

t_reload_rate() {
	reload "${GOOD[@]/rate = 20/rate = 30}"
	wait_until 10 rate_is 30 || { echo "rate is $(jget "$(status)" config.rate)"; return 1; }
	expect_eq burst "$(jget "$(status)" config.burst)" 40 &&
	expect_eq "kmtlsd still runs" "$(kill -0 "$KPID" 2>&1 && echo yes)" yes
}

# A bad section on SIGHUP: logged, and the limiter keeps rate 30.
t_reload_bad_kept() {
	local out
	out=$(reload "${GOOD[@]/mode = enforce/mode = block}")
	echo "$out"
	grep -q 'mode = "block": expected enforce or monitor; keeping the previous configuration' \
		<<< "$out" || return 1
	rate_is 30 || { echo "rate changed to $(jget "$(status)" config.rate)"; return 1; }
	out=$(reload "${GOOD[@]/rate = 20/rate = 99}" "allow = 10.0.0.0/33")
	echo "$out"
	grep -q '"10.0.0.0/33" is not a prefix.*; keeping the previous \[ratelimit\] settings' \
		<<< "$out" || return 1
	rate_is 30 || { echo "rate changed to $(jget "$(status)" config.rate)"; return 1; }
	expect_eq "mode" "$(jget "$(status)" config.mode)" enforce &&
	expect_eq "kmtlsd still runs" "$(kill -0 "$KPID" 2>&1 && echo yes)" yes
}

# legit: one mTLS handshake through kmtlsd from the client namespace.
legit() { pki_handshake "$CLI" "10.197.0.1:$PORT" "$TMP/legit.out"; }

t_flood_limited() {
	local fpid ok=0 i
	legit || { echo "a handshake before the flood failed"; tail -n 3 "$TMP/legit.out"; return 1; }
	ip netns exec "$CLI" "$FLOOD_BIN" --ifname "$IF_C" --dst-mac "$SRV_MAC" --port "$PORT" \
		--count 300 --rate 100 --dst4 10.197.0.1 --src4 10.197.16.0 --sources4 64 \
		> "$TMP/flood.json" 2> "$TMP/flood.err" &
	fpid=$!
	sleep 0.5
	for i in 1 2 3 4 5; do
		legit && ok=$((ok + 1))
		sleep 0.2
	done
	wait "$fpid"
	status > "$TMP/status.json" || return 1
	echo "$ok of 5 handshakes during the flood"
	"$PY" - "$TMP/flood.json" "$TMP/status.json" <<'EOF' || return 1
import json, sys
flood = json.load(open(sys.argv[1]))
st = json.load(open(sys.argv[2]))
c, cfg = st["counters"], st["config"]
secs = flood["elapsed_ms"] / 1000.0
cap = cfg["burst"] + cfg["rate"] * (secs + 0.1) + 1
srcs = [s for s in st["top_sources"] if s["source"].startswith("10.197.16.")]
print("flood: %d ClientHellos from %d sources in %.1f s at %d/s burst %d; over_source %d, dropped %d"
      % (flood["sent"], flood["sources"], secs, cfg["rate"], cfg["burst"], c["over_source"], c["dropped"]))
ok = len(srcs) == flood["sources"] and c["over_source"] > 0
ok = ok and c["dropped"] == c["over_source"] + c["over_global"]
for s in srcs:
    if s["admitted"] > cap or s["limited"] == 0:
        print("source %s: admitted %d (cap %.0f), limited %d" % (s["source"], s["admitted"], cap, s["limited"]))
        ok = False
sys.exit(0 if ok else 1)
EOF
	[ "$ok" -ge 4 ]
}

# Interfaces A -> B, where B runs someone else's XDP program: refused
# without force (nothing changes, not even the rate), done with force = yes;
# the allowlist follows the section.
t_reload_moves() {
	local j sec=("interfaces = $IF_S2" "xdp-mode = native" "ports = $PORT" "burst = 40"
		     "global-rate = 0" "mode = enforce")
	ip -n "$SRV" link set dev "$IF_S2" xdpgeneric obj "$XDP_PASS" sec xdp || return 1
	reload "${sec[@]}" "rate = 31" "allow = 198.51.100.0/24 2001:db8::/48" |
		tee "$TMP/reload.out"
	grep -q "already runs XDP program 'xdp_pass'.*force = yes replaces it" "$TMP/reload.out" ||
		return 1
	expect_eq "XDP on $IF_S" "$(xdp_prog_on "$IF_S")" hello_limit &&
	expect_eq "XDP on $IF_S2" "$(xdp_prog_on "$IF_S2")" xdp_pass || return 1
	rate_is 30 || { echo "a refused reload changed the rate"; return 1; }
	j=$(status) || return 1
	expect_eq "allowlist after a refused reload" "$(jget "$j" allowlist)" \
		'["192.0.2.0/24","2001:db8::/48"]' || return 1
	reload "${sec[@]}" "rate = 30" "force = yes" "allow = 198.51.100.0/24 2001:db8::/48"
	expect_eq "XDP on $IF_S2" "$(xdp_prog_on "$IF_S2")" hello_limit &&
	expect_eq "XDP on $IF_S" "$(xdp_prog_on "$IF_S")" "" || return 1
	j=$(status) || return 1
	expect_eq attached "$(jget "$j" attached.0.iface) ($(jget "$j" attached.0.mode))" \
		"$IF_S2 (native)" &&
	expect_eq allowlist "$(jget "$j" allowlist)" '["198.51.100.0/24","2001:db8::/48"]'
}

# SIGTERM: kmtlsd and its helper go, the limiter and its settings stay.
t_exit_leaves_limiter() {
	local j
	kill -TERM "$KPID"
	timeout 20 tail --pid="$KPID" -f /dev/null || { echo "kmtlsd did not exit"; return 1; }
	wait "$KPID"
	expect_eq "kmtlsd exit status" "$?" 0 || return 1
	wait_until 10 test ! -d "/proc/$HELPER" || { echo "helper $HELPER still runs"; return 1; }
	expect_eq "XDP on $IF_S2" "$(xdp_prog_on "$IF_S2")" hello_limit || return 1
	j=$(status) || return 1
	LINK=$(jget "$j" attached.0.link_id)
	expect_eq rate "$(jget "$j" config.rate)" 30
}

# A new kmtlsd with the same section adopts the link: nothing re-attached.
t_restart_adopts() {
	local j
	start_kmtlsd "$TMP/kmtlsd.conf" || return 1
	! grep -q "hello_limit attached" "$TMP/kmtlsd.log" || { echo "attached again"; return 1; }
	j=$(status) || return 1
	expect_eq "link id" "$(jget "$j" attached.0.link_id)" "$LINK"
}

# A restart with a prefix gone from allow removes it from the pinned map,
# as a reload does; a prefix an operator added with kmtlsctl stays, even
# when the section listed it too and no longer does.
t_restart_drops_removed() {
	local j sec=("interfaces = $IF_S2" "xdp-mode = native" "ports = $PORT" "burst = 40"
		     "global-rate = 0" "mode = enforce" "rate = 30")
	kill -TERM "$KPID"
	timeout 20 tail --pid="$KPID" -f /dev/null || { echo "kmtlsd did not exit"; return 1; }
	wait "$KPID"
	ctl ratelimit allow add 203.0.113.0/24 > /dev/null || return 1
	conf "$TMP/kmtlsd.conf" "${sec[@]}" "allow = 198.51.100.0/24 203.0.113.0/24"
	start_kmtlsd "$TMP/kmtlsd.conf" || return 1
	grep -q "ratelimit: 2001:db8::/48 is no longer allowlisted" "$TMP/kmtlsd.log" ||
		{ echo "no word of 2001:db8::/48 leaving"; return 1; }
	reload "${sec[@]}" "allow = 198.51.100.0/24" > /dev/null
	! grep -q "203.0.113.0/24 is no longer allowlisted" "$TMP/kmtlsd.log" ||
		{ echo "the operator's 203.0.113.0/24 was removed"; return 1; }
	j=$(status) || return 1
	expect_eq allowlist "$("$PY" -c 'import json, sys; print(" ".join(sorted(json.loads(sys.argv[1])["allowlist"])))' "$j")" \
		"198.51.100.0/24 203.0.113.0/24"
}

# A good section in a reload kmtlsd refuses (a listener's certificate is
# missing): nothing of it applies, the limiter's rate included.
t_reload_refused_keeps_rate() {
	local n
	n=$(wc -l < "$TMP/kmtlsd.log")
	conf "$TMP/kmtlsd.conf" "${GOOD[@]/rate = 20/rate = 77}"
	cp "$TMP/pki/server.pem" "$TMP/server.pem.good"
	echo "not a certificate" > "$TMP/pki/server.pem"
	kill -HUP "$KPID"
	wait_until 20 eval 'tail -n +$((n + 1)) "$TMP/kmtlsd.log" | grep -q "nothing of this reload applies"' ||
		echo "kmtlsd did not refuse the reload"
	if wait_until 3 rate_is 77; then
		echo "the limiter took rate 77 from a refused reload"
	fi
	cp "$TMP/server.pem.good" "$TMP/pki/server.pem"
	tail -n +$((n + 1)) "$TMP/kmtlsd.log" | sed 's/^[^ ]* //'
	expect_eq rate "$(jget "$(status)" config.rate)" 30 &&
		tail -n +$((n + 1)) "$TMP/kmtlsd.log" | grep -q "nothing of this reload applies"
}

# ---- main ------------------------------------------------------------------------

ktap_plan "$NTESTS"
SKIP=
setup > /tmp/kmtls-rl-setup.$$ 2>&1
rc=$?
if [ -n "$SKIP" ] || [ "$rc" -ne 0 ]; then
	if [ -n "$SKIP" ]; then
		ktap_skip_rest kmtlsd_ratelimit "$SKIP"
	else
		while [ "$testno" -lt "$NTESTS" ]; do
			not_ok kmtlsd_ratelimit.setup
		done
	fi
	diag < /tmp/kmtls-rl-setup.$$
	rm -f /tmp/kmtls-rl-setup.$$
	ktap_exit
fi
diag < /tmp/kmtls-rl-setup.$$
rm -f /tmp/kmtls-rl-setup.$$

case_ kmtlsd_ratelimit.start_refuses_unknown_mode t_bad_mode
case_ kmtlsd_ratelimit.start_refuses_bad_prefix t_bad_prefix
case_ kmtlsd_ratelimit.start_refuses_missing_interface t_missing_interface
case_ kmtlsd_ratelimit.start_refuses_without_capabilities t_no_privileges
case_ kmtlsd_ratelimit.start_refuses_without_bpffs t_no_bpffs
case_ kmtlsd_ratelimit.start_attaches t_start_attaches
case_ kmtlsd_ratelimit.status_shows_settings t_status_shows_settings
case_ kmtlsd_ratelimit.sighup_applies_rate t_reload_rate
case_ kmtlsd_ratelimit.sighup_bad_section_keeps_settings t_reload_bad_kept
case_ kmtlsd_ratelimit.sighup_refused_reload_keeps_settings t_reload_refused_keeps_rate
case_ kmtlsd_ratelimit.flood_limited t_flood_limited
case_ kmtlsd_ratelimit.sighup_moves_interfaces t_reload_moves
case_ kmtlsd_ratelimit.exit_leaves_limiter_attached t_exit_leaves_limiter
case_ kmtlsd_ratelimit.restart_adopts_link t_restart_adopts
case_ kmtlsd_ratelimit.restart_drops_removed_prefixes t_restart_drops_removed
case_ kmtlsd_ratelimit.sandboxed_as_nobody grep -q "running as user nobody" "$TMP/kmtlsd.log"
case_ kmtlsd_ratelimit.no_sigsys eval '! grep -q "not on the seccomp allowlist" "$TMP/kmtlsd.log"'

[ "$failures" -eq 0 ]
