#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make bench: kmtlsd against two established TLS terminators, nginx's stream
# module and stunnel4 (Debian's builds, OpenSSL), on the same certificates,
# the same client (kmtls-bench), the same echo backend. The server runs
# alone on CPU 0; client, backend and this script share CPU 1. The result is
# the ratio of handshakes per server CPU-second: it holds whether or not the
# server saturates, and on a shared machine it is far steadier than any
# absolute rate.
#
#   for each PKI (ECDSA P-256, RSA-2048), mode (full, resumed), round 1..N,
#   server (kmtlsd nginx stunnel, interleaved so drift hits all alike):
#     start the server, warm up, meter the server's CPU (all its processes
#     and threads) over exactly one kmtls-bench run, stop the server
#   then full handshakes at nginx's median full rate (offered load) for
#   latency percentiles, and the crypto floor of one core.
#
# Knobs: BENCH_DURATION (8 s per run), BENCH_WARMUP (1 s), BENCH_ROUNDS (3),
# BENCH_CONCURRENCY (32), BENCH_THREADS (client threads, 1),
# BENCH_CURVES ("ecdsa rsa"), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
# KMTLS_BENCH (load generator binary). Output: a table and ratio lines on
# stdout, everything (raw runs too) in build/bench/results.json.
#
# Then the XDP ClientHello limiter (scripts/bench-xdp.sh, about 4 minutes;
# BENCH_XDP=0 skips it): ns per packet under BPF_PROG_TEST_RUN, and drops per
# CPU-second against an nftables per-source meter on the same veth, the flood
# as xdp_frames (as from a NIC) and as skbs, in build/bench/results-xdp.json.
#
# Then the handshake latency programs (scripts/bench-latency.sh, about a
# minute; BENCH_LATENCY=0 skips it): their run time per connection against
# issue 6's 1 us, and ring buffer drops at kmtls-bench's highest rate, in
# build/bench/results-latency.json.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$TOP/scripts/bench-lib.sh"

DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
THREADS=${BENCH_THREADS:-1}
read -r -a CURVES <<< "${BENCH_CURVES:-ecdsa rsa}"
SERVERS=(kmtlsd nginx stunnel)
CLIENT_TIMEOUT=$((DURATION + 60))

main() {
	bench_lib_init
	prepare
	pin_self
	start_backend
	SHARE_BEFORE=("$(cpu_share "$SERVER_CPU")" "$(cpu_share "$CLIENT_CPU")")
	local curve mode
	for curve in "${CURVES[@]}"; do
		for mode in full resumed; do
			throughput "$curve" "$mode"
		done
	done
	latency
	crypto_floor
	SHARE_AFTER=("$(cpu_share "$SERVER_CPU")" "$(cpu_share "$CLIENT_CPU")")
	summarise
	[ "${BENCH_XDP:-1}" = 0 ] || KMTLS_OUT=$OUT "$TOP/scripts/bench-xdp.sh"
	[ "${BENCH_LATENCY:-1}" = 0 ] || KMTLS_OUT=$OUT KMTLS_PKI=$BENCH_OUT/pki-ecdsa \
		RESULTS=$BENCH_OUT/results-latency.json "$TOP/scripts/bench-latency.sh"
}

prepare() {
	install_anchors
	# make bench has built everything; this is for running the script alone.
	if [ ! -x "$KMTLSD" ] || [ ! -x "$BACKEND_BIN" ] || [ ! -x "$CLIENT" ]; then
		make --no-print-directory -C "$TOP" userspace
	fi
	[ -x "$CLIENT" ] || bench_die "no load generator at $CLIENT (make userspace builds kmtls-bench)"
	mkdir -p "$BENCH_OUT"
	"$TOP/selftests/lib/mkpki.sh" "$BENCH_OUT/pki-ecdsa"
	KMTLS_PKI_CURVE=rsa2048 "$TOP/selftests/lib/mkpki.sh" "$BENCH_OUT/pki-rsa"
	RUNS=$BENCH_OUT/runs.jsonl
	: > "$RUNS"
	rm -f "$BENCH_OUT/results.json"
}

# one_run PHASE SERVER CURVE MODE ROUND [CLIENT ARGS...]: one server start,
# a warmup the server is not metered for, then the metered run. The metered
# run has no warmup of its own, so the CPU window and the counted handshakes
# cover the same connections. Left in: in resumed mode the first
# $CONCURRENCY handshakes are full ones, and handshakes still in flight at
# the end are metered but not counted; each well under 1% of a run.
one_run() {
	local phase=$1 server=$2 curve=$3 mode=$4 round=$5 pki args
	shift 5
	pki=$BENCH_OUT/pki-$curve
	start_server "$server" "$pki"
	args=(--connect "127.0.0.1:$SERVER_PORT" --mode "$mode" --cert "$pki/client.pem"
	      --key "$pki/client.key" --ca "$pki/ca.pem" --concurrency "$CONCURRENCY"
	      --threads "$THREADS" --warmup 0 --json "$@")
	run_client "$BENCH_TMP/warmup.json" "${args[@]}" --duration "$WARMUP"
	measure_client "$BENCH_TMP/run.json" "${args[@]}" --duration "$DURATION"
	stop_server
	record "$RUNS" "$BENCH_TMP/run.json" phase="$phase" server="$server" curve="$curve" \
		mode="$mode" round="$round" server_cpu_s="$CPU_S" window_s="$WALL_S" server_core_busy_s="$CORE_S" \
		offered_per_s="${OFFERED:-null}"
	progress "$phase" "$server" "$curve" "$mode" "$round" "$BENCH_TMP/run.json"
}

progress() {
	"$PY" - "$@" "$CPU_S" <<'EOF' >&2
import json, sys
phase, server, curve, mode, rnd, path, cpu = sys.argv[1:]
b = json.load(open(path))
cpu = float(cpu)
line = f"  {phase:<10} {curve:<5} {mode:<7} round {rnd} {server:<7} {b['rate_per_s']:9.1f}/s" \
       f"  server {cpu:6.2f} CPU-s  {b['ok'] / cpu if cpu else 0:9.1f} per CPU-s" \
       f"  p99 {b['latency_us']['p99'] / 1000:7.2f} ms  failed {b['failed']}"
print(line)
EOF
}

throughput() {
	local curve=$1 mode=$2 round server
	bench_log "bench: $curve $mode, $ROUNDS rounds x ${SERVERS[*]}, ${DURATION} s each"
	for round in $(seq "$ROUNDS"); do
		for server in "${SERVERS[@]}"; do
			one_run throughput "$server" "$curve" "$mode" "$round"
		done
	done
}

# latency: full handshakes offered at nginx's median full-handshake rate
# (ECDSA), the load at which nginx is saturated, against every server. A
# server slower than nginx falls short of that rate on purpose, so the
# shortfall does not make the run invalid (--allow-shortfall).
latency() {
	local rate round server
	rate=$("$PY" - "$RUNS" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
r = [x["bench"]["rate_per_s"] for x in runs if x["phase"] == "throughput"
     and x["server"] == "nginx" and x["curve"] == "ecdsa" and x["mode"] == "full"]
print(max(1, round(statistics.median(r))) if r else "")
EOF
)
	[ -n "$rate" ] || { bench_log "bench: no ECDSA nginx runs, no latency at fixed load"; return 0; }
	bench_log "bench: latency at $rate full handshakes/s offered (nginx's median), $ROUNDS rounds"
	OFFERED=$rate
	for round in $(seq "$ROUNDS"); do
		for server in "${SERVERS[@]}"; do
			one_run latency "$server" ecdsa full "$round" --rate "$rate" --allow-shortfall
		done
	done
}

# crypto_floor: what one core does per second in the operations a full
# handshake needs, on the server's CPU, so it compares with kmtlsd there.
crypto_floor() {
	bench_log "bench: crypto floor on CPU $SERVER_CPU"
	RUN_CPU=$SERVER_CPU run_client "$BENCH_OUT/crypto-floor.json" --crypto-floor --json \
		--duration "${BENCH_FLOOR_DURATION:-2}"
}

# meta: what the numbers were measured on, as JSON. Through the environment,
# so quotes in a version string cannot break the JSON.
meta() {
	M_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) M_KERNEL=$(uname -r) \
	M_CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
	M_KMTLSD=$("$KMTLSD" --version 2>&1 | head -n1) \
	M_NGINX=$(nginx -v 2>&1 | head -n1) \
	M_STUNNEL=$(stunnel4 -version 2>&1 | grep -m1 '^stunnel' || true) \
	M_OPENSSL=$(openssl version) \
	"$PY" - "$DURATION" "$WARMUP" "$ROUNDS" "$CONCURRENCY" "$THREADS" "$SERVER_CPU" "$CLIENT_CPU" \
		"${SHARE_BEFORE[@]}" "${SHARE_AFTER[@]}" <<'EOF2'
import json, os, sys
n = [float(x) for x in sys.argv[1:]]
e = os.environ
share = {"before": {"server_cpu": n[7], "client_cpu": n[8]}, "after": {"server_cpu": n[9], "client_cpu": n[10]}}
print(json.dumps({
    "date": e["M_DATE"], "kernel": e["M_KERNEL"], "cpu": e["M_CPU"], "cpus": os.cpu_count(),
    "kmtlsd": e["M_KMTLSD"], "nginx": e["M_NGINX"], "stunnel": e["M_STUNNEL"],
    "openssl": e["M_OPENSSL"],
    "duration_s": n[0], "warmup_s": n[1], "rounds": int(n[2]), "concurrency": int(n[3]),
    "client_threads": int(n[4]), "server_cpu": int(n[5]), "client_cpu": int(n[6]),
    "busy_loop_cpu_share_pct": share,
    "note": "shared, noisy machine: absolute numbers are context, ratios are the result",
}))
EOF2
}

# summarise: medians over rounds, the table, the ratio lines, results.json.
summarise() {
	meta > "$BENCH_TMP/meta.json"
	"$PY" - "$RUNS" "$BENCH_TMP/meta.json" "$BENCH_OUT/crypto-floor.json" \
		"$BENCH_OUT/results.json" <<'EOF'
import json, statistics, sys

runs_f, meta_f, floor_f, out_f = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_f)]
meta = json.load(open(meta_f))
floor = json.load(open(floor_f))
med = statistics.median
SERVERS = ["kmtlsd", "nginx", "stunnel"]
TARGETS = {"full": 3.5, "resumed": 4.0}	# kmtlsd/nginx; p99: <= 1/3 of nginx

def per_cpu(r):
    return r["bench"]["ok"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else 0.0

def select(phase, curve, mode, server):
    return [r for r in runs if (r["phase"], r["curve"], r["mode"], r["server"])
            == (phase, curve, mode, server)]

def merge(dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out

rows, table = [], {}
for curve in ("ecdsa", "rsa"):
    for mode in ("full", "resumed"):
        for server in SERVERS:
            rs = select("throughput", curve, mode, server)
            if not rs:
                continue
            b = [r["bench"] for r in rs]
            row = {
                "curve": curve, "mode": mode, "server": server, "rounds": len(rs),
                "hs_per_s": med(x["rate_per_s"] for x in b),
                "server_cpu_s": med(r["server_cpu_s"] for r in rs),
                "server_cpu_pct": med(100 * r["server_cpu_s"] / r["window_s"] for r in rs),
                "hs_per_server_cpu_s": med(per_cpu(r) for r in rs),
                "client_cpu_pct": med(x.get("client_cpu_pct", 0) for x in b),
                "failed": sum(x["failed"] for x in b),
                "failures": merge(x.get("failures") or {} for x in b),
                "resumed_pct": med(100 * x.get("resumed", 0) / max(1, x["ok"]) for x in b),
                "negotiated": sorted({f'{x.get("version")} {x.get("cipher")} {x.get("group")}' for x in b}),
            }
            rows.append(row)
            table[curve, mode, server] = row

def ratio(curve, mode, other):
    a, b = table.get((curve, mode, "kmtlsd")), table.get((curve, mode, other))
    if not a or not b or not b["hs_per_server_cpu_s"]:
        return None
    return a["hs_per_server_cpu_s"] / b["hs_per_server_cpu_s"]

ratios = {}
for curve in ("ecdsa", "rsa"):
    for mode in ("full", "resumed"):
        label = mode if curve == "ecdsa" else f"{mode}-rsa"
        if (curve, mode, "kmtlsd") in table:
            ratios[label] = {f"kmtlsd/{o}": ratio(curve, mode, o) for o in ("nginx", "stunnel")}

lat = {}
for server in SERVERS:
    rs = select("latency", "ecdsa", "full", server)
    if rs:
        b = [r["bench"] for r in rs]
        lat[server] = {
            "rounds": len(rs),
            "offered_per_s": rs[0].get("offered_per_s"),
            "achieved_per_s": med(x["rate_per_s"] for x in b),
            "p50_ms": med(x["latency_us"]["p50"] for x in b) / 1000,
            "p99_ms": med(x["latency_us"]["p99"] for x in b) / 1000,
            "server_cpu_pct": med(100 * r["server_cpu_s"] / r["window_s"] for r in rs),
            "failed": sum(x["failed"] for x in b),
        }
rate = next((v["offered_per_s"] for v in lat.values()), None)

kfull = table.get(("ecdsa", "full", "kmtlsd"))
ceiling = floor.get("ceiling_hs_per_s")
floor_sum = dict(floor)
if kfull and ceiling:
    floor_sum["kmtlsd_full_hs_per_server_cpu_s"] = kfull["hs_per_server_cpu_s"]
    floor_sum["kmtlsd_fraction_of_ceiling"] = kfull["hs_per_server_cpu_s"] / ceiling

def f(x, fmt="{:.2f}"):
    return "n/a " if x is None else fmt.format(x)

print()
print(f"kmtls bench: {meta['cpu']}, kernel {meta['kernel']}")
print(f"server alone on CPU {meta['server_cpu']}; client, backend and harness on CPU {meta['client_cpu']};"
      f" {meta['rounds']} interleaved rounds of {meta['duration_s']:g} s, concurrency {meta['concurrency']},"
      f" medians shown.")
print("This machine is shared and noisy: absolute numbers are context, the ratios are the result.")
sh = meta["busy_loop_cpu_share_pct"]
print(f"(a busy loop got {sh['before']['server_cpu']:.0f}% of the server CPU and {sh['before']['client_cpu']:.0f}%"
      f" of the client CPU before the runs, {sh['after']['server_cpu']:.0f}% and {sh['after']['client_cpu']:.0f}% after)")
print()
hdr = f"{'pki':<6}{'mode':<9}{'server':<9}{'hs/s':>9}{'srv CPU-s':>11}{'srv CPU':>9}" \
      f"{'hs/srv CPU-s':>14}{'cli CPU':>9}{'resumed':>9}{'failed':>8}  negotiated"
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['curve']:<6}{r['mode']:<9}{r['server']:<9}{r['hs_per_s']:>9.1f}{r['server_cpu_s']:>11.2f}"
          f"{r['server_cpu_pct']:>8.0f}%{r['hs_per_server_cpu_s']:>14.1f}{r['client_cpu_pct']:>8.0f}%"
          f"{r['resumed_pct']:>8.0f}%{r['failed']:>8}  {', '.join(r['negotiated'])}")
if lat:
    print()
    print(f"full handshakes offered at {rate}/s (nginx's median full rate, ECDSA):")
    print(f"{'server':<9}{'achieved/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU':>9}{'failed':>8}")
    for s, v in lat.items():
        print(f"{s:<9}{v['achieved_per_s']:>11.1f}{v['p50_ms']:>9.2f}{v['p99_ms']:>9.2f}"
              f"{v['server_cpu_pct']:>8.0f}%{v['failed']:>8}")
print()
if floor:
    print(f"crypto floor, one core (CPU {meta['server_cpu']}): ECDSA P-256 sign "
          f"{f(floor.get('ecdsa_p256_sign_per_s'), '{:.0f}')}/s, verify "
          f"{f(floor.get('ecdsa_p256_verify_per_s'), '{:.0f}')}/s, X25519 "
          f"{f(floor.get('x25519_per_s'), '{:.0f}')}/s -> ceiling "
          f"{f(ceiling, '{:.0f}')} full handshakes/s per core")
    if floor.get("ceiling_cached_chain_hs_per_s"):
        print(f"  (with the client's intermediate already verified: "
              f"{floor['ceiling_cached_chain_hs_per_s']:.0f}/s; resumed, X25519 only: "
              f"{f(floor.get('ceiling_resumed_hs_per_s'), '{:.0f}')}/s)")
    if "kmtlsd_fraction_of_ceiling" in floor_sum:
        print(f"kmtlsd: {kfull['hs_per_server_cpu_s']:.0f} full handshakes per server CPU-second"
              f" = {floor_sum['kmtlsd_fraction_of_ceiling']:.2f} of that ceiling")
    print()
print("handshakes per server CPU-second, kmtlsd over the others (issue targets are context, not asserted):")
for label, r in ratios.items():
    target = TARGETS.get(label)
    note = f"   [target: kmtlsd/nginx >= {target:g}]" if target else ""
    print(f"{label:<8} kmtlsd/nginx = {f(r['kmtlsd/nginx'])}   kmtlsd/stunnel = {f(r['kmtlsd/stunnel'])}{note}")
p99_ratio = None
if {"kmtlsd", "nginx", "stunnel"} <= lat.keys():
    k, n, s = (lat[x]["p99_ms"] for x in ("kmtlsd", "nginx", "stunnel"))
    p99_ratio = k / n if n else None
    print(f"p99 at {rate}/s: kmtlsd {k:.2f} ms, nginx {n:.2f} ms, stunnel {s:.2f} ms"
          f" (kmtlsd/nginx = {f(p99_ratio)})   [target: kmtlsd/nginx <= 0.33]")

warn = []
empty = [f"{r['curve']} {r['mode']} {r['server']} round {r['round']}" for r in runs if not r["bench"]["ok"]]
if empty:
    warn.append("no handshake completed in " + ", ".join(empty) + " (stalled machine or broken server)")
for r in rows:
    if r["failed"]:
        warn.append(f"{r['curve']} {r['mode']} {r['server']}: {r['failed']} failed handshakes: "
                    + "; ".join(f"{k} x{v}" for k, v in r["failures"].items()))
    if r["mode"] == "resumed" and r["resumed_pct"] < 90:
        warn.append(f"{r['curve']} {r['mode']} {r['server']}: only {r['resumed_pct']:.0f}% resumed")
others = [100 * max(0.0, r["server_core_busy_s"] - r["server_cpu_s"]) / r["window_s"] for r in runs
          if "server_core_busy_s" in r]
if others:
    warn.append(f"other processes kept the server CPU busy a median {med(others):.0f}% of the time"
                f" (up to {max(others):.0f}%) while servers were metered")
idle = [f"{r['server_cpu_pct']:.0f}% ({r['curve']} {r['mode']})" for r in rows
        if r["server"] == "kmtlsd" and r["server_cpu_pct"] < 90]
if idle:
    warn.append("kmtlsd kept its CPU busy only " + ", ".join(idle) + ": the client or other load on"
                " this machine held it back; per server CPU-second it still compares")
for s, v in lat.items():
    if rate and v["achieved_per_s"] < 0.95 * rate:
        warn.append(f"{s} reached {v['achieved_per_s']:.0f} of {rate} offered handshakes/s: overloaded,"
                    " its latency is a queue that grows with the run")
for w in warn:
    print(f"note: {w}")

json.dump({
    "meta": meta,
    "targets": {"full_kmtlsd_over_nginx_min": TARGETS["full"],
                "resumed_kmtlsd_over_nginx_min": TARGETS["resumed"],
                "p99_kmtlsd_over_nginx_max": 1 / 3, "asserted": False},
    "summary": {"throughput": rows, "ratios": ratios,
                "latency": {"offered_per_s": rate, "servers": lat, "p99_kmtlsd_over_nginx": p99_ratio},
                "crypto_floor": floor_sum},
    "runs": runs,
}, open(out_f, "w"), indent=1)
print(f"\nall runs and this summary: {out_f}")
EOF
}

main "$@"
