#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make soak: kmtlsd under steady load for SOAK_TIME seconds (default 600),
# watched for slow leaks and failures. Not part of make check.
#
#   1. kmtlsd (one worker per CPU, the test PKI with its CRL) in front of the
#      echo test_backend; kmtls-bench measures the highest rate of full and
#      of resumed handshakes (closed loop, a few seconds each).
#   2. For SOAK_TIME: full handshakes at 40% of the full maximum and resumed
#      ones at 40% of the resumed maximum (open loop, --rate), so together
#      about 80% of what this machine does; beside them bad clients at 5% of
#      the good rate (expired, revoked, unknown-CA certificates from the test
#      PKI's bad/, a third each); SIGHUP to kmtlsd every 30 s (reload).
#   3. Every 10 s: kmtlsd's VmRSS, descriptors, and its /status counters.
#
# Reports RSS growth from the end of the warm-up (SOAK_WARMUP, default a
# tenth of SOAK_TIME, at most 60 s) to the end, good handshakes that failed,
# bad ones that got in, descriptors, reloads; everything in
# build/soak/soak.json (kmtlsd's log and the kmtls-bench reports beside it).
# Exit status 0 when the targets hold: RSS growth under 5%, no good
# handshake failed, no bad one accepted, every reload done, kmtlsd alive and
# exiting cleanly, and its descriptors back to where they were once idle.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${BUILD:-$TOP/build}
OUT=$(realpath -m "${KMTLS_OUT:-$BUILD/out}")
PKI=$(realpath -m "${KMTLS_PKI:-$BUILD/pki}")
RESULTS=$BUILD/soak
SOAK_TIME=${SOAK_TIME:-600}
WARMUP=${SOAK_WARMUP:-$((SOAK_TIME / 10 < 60 ? SOAK_TIME / 10 : 60))}
SAMPLE_EVERY=10
HUP_EVERY=30
PROBE_TIME=5
PY=/usr/bin/python3

KMTLSD=$OUT/bin/kmtlsd
BENCH=$OUT/bin/kmtls-bench
BACKEND=$OUT/selftests/progs/test_backend

PIDS=()
BENCH_PIDS=()
K_PID=
K_PORT=
S_PORT=
B_PORT=

die() { echo "soak: $*" >&2; exit 1; }
say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

alive() {
	local state
	state=$(sed -n 's/^.*) \(.\) .*$/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 400; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}" "${PIDS[@]}"; do
		alive "$p" && stop_pid "$p"
	done
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# ---- setup -----------------------------------------------------------

prepare() {
	local f
	[ "$SOAK_TIME" -ge 60 ] 2>/dev/null || die "SOAK_TIME=$SOAK_TIME: at least 60 seconds"
	for f in "$KMTLSD" "$BENCH" "$BACKEND"; do
		[ -x "$f" ] || die "$f missing (make userspace)"
	done
	"$TOP/selftests/lib/mkpki.sh" "$PKI" > /dev/null || die "cannot make the test PKI in $PKI"
	rm -rf "$RESULTS"
	mkdir -p "$RESULTS"
}

start_backend() {
	"$BACKEND" --listen 127.0.0.1:0 --mode echo --ready-file "$RESULTS/backend.ready" \
		> /dev/null 2> "$RESULTS/backend.log" &
	PIDS+=($!)
	wait_until 10 test -s "$RESULTS/backend.ready" || die "test_backend did not start"
	B_PORT=$(cat "$RESULTS/backend.ready")
}

kmtlsd_up() { grep -q 'status on' "$RESULTS/kmtlsd.log" 2>/dev/null; }
up_or_dead() { kmtlsd_up || ! alive "$K_PID"; }

start_kmtlsd() {
	local i
	for ((i = 0; i < 3; i++)); do
		K_PORT=$(free_port)
		S_PORT=$(free_port)
		"$KMTLSD" --foreground --log-level info \
			--listen "127.0.0.1:$K_PORT" --backend "127.0.0.1:$B_PORT" \
			--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem" \
			--crl "$PKI/crl.pem" --status-listen "127.0.0.1:$S_PORT" \
			> "$RESULTS/kmtlsd.log" 2>&1 &
		K_PID=$!
		PIDS+=("$K_PID")
		wait_until 30 up_or_dead && kmtlsd_up && return 0
		stop_pid "$K_PID"
	done
	tail -n 20 "$RESULTS/kmtlsd.log" >&2
	die "kmtlsd did not start"
}

# ---- measuring ---------------------------------------------------------

# bench NAME CERT KEY ARGS...: kmtls-bench --json into $RESULTS/NAME.json;
# bench_bg the same in the background, its pid in BENCH_PIDS.
bench() {
	local name=$1 cert=$2 key=$3
	shift 3
	"$BENCH" --json --connect "127.0.0.1:$K_PORT" --cert "$PKI/$cert" --key "$PKI/$key" \
		--ca "$PKI/ca.pem" "$@" > "$RESULTS/$name.json" 2> "$RESULTS/$name.err"
}

bench_bg() {
	local name=$1 cert=$2 key=$3
	shift 3
	"$BENCH" --json --connect "127.0.0.1:$K_PORT" --cert "$PKI/$cert" --key "$PKI/$key" \
		--ca "$PKI/ca.pem" "$@" > "$RESULTS/$name.json" 2> "$RESULTS/$name.err" &
	BENCH_PIDS+=($!)
}

jget() {	# jget FILE EXPR: a Python expression on the JSON as d
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

probe() {
	local mode
	for mode in full resumed; do
		bench "probe-$mode" client.pem client.key --mode "$mode" --concurrency 16 \
			--duration "$PROBE_TIME" --warmup 1 || die "the $mode probe failed: $(tail -n 3 "$RESULTS/probe-$mode.err")"
	done
	FULL_MAX=$(jget "$RESULTS/probe-full.json" 'round(d["rate_per_s"])')
	RESUMED_MAX=$(jget "$RESULTS/probe-resumed.json" 'round(d["rate_per_s"])')
	FULL_RATE=$("$PY" -c "print(round($FULL_MAX * 0.4, 1))")
	RESUMED_RATE=$("$PY" -c "print(round($RESUMED_MAX * 0.4, 1))")
	BAD_RATE=$("$PY" -c "print(round(($FULL_RATE + $RESUMED_RATE) * 0.05 / 3, 2))")
	say "max: $FULL_MAX full/s, $RESUMED_MAX resumed/s; soak: $FULL_RATE full/s + $RESUMED_RATE resumed/s, bad clients 3 x $BAD_RATE/s, ${SOAK_TIME} s"
}

start_load() {
	local bad
	bench_bg full client.pem client.key --mode full --rate "$FULL_RATE" \
		--duration "$SOAK_TIME" --warmup 0
	bench_bg resumed client.pem client.key --mode resumed --rate "$RESUMED_RATE" \
		--duration "$SOAK_TIME" --warmup 0
	for bad in expired revoked otherca; do
		bench_bg "bad-$bad" "bad/$bad.pem" "bad/$bad.key" --mode full --rate "$BAD_RATE" \
			--concurrency 4 --duration "$SOAK_TIME" --warmup 0
	done
}

fd_count() { find "/proc/$K_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$K_PID/status" 2>/dev/null; }

# status KEY...: kmtlsd's /status values, space-separated ("-" if missing).
status() {
	"$PY" - "$S_PORT" "$@" <<'EOF'
import json, socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    d = json.loads(data.split(b"\r\n\r\n", 1)[1])
except Exception:
    d = {}
out = []
for k in sys.argv[2:]:
    v = d
    for part in k.split("."):
        v = v.get(part, {}) if isinstance(v, dict) else {}
    out.append(str(v) if v != {} else "-")
print(" ".join(out))
EOF
}

load_running() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		alive "$p" && return 0
	done
	return 1
}

# One line per sample on stdout, and in samples.tsv.
watch_load() {
	local t0=$SECONDS next_sample=0 next_hup=$HUP_EVERY t hups=0 fields active ok failed resumed
	echo -e "t_s\trss_kb\tfds\tactive\tok\tfailed\tresumed\treloads" > "$RESULTS/samples.tsv"
	while load_running; do
		t=$((SECONDS - t0))
		alive "$K_PID" || { say "kmtlsd died"; return 1; }
		if [ "$t" -ge "$next_hup" ] && [ "$t" -lt "$SOAK_TIME" ]; then
			kill -HUP "$K_PID"
			hups=$((hups + 1))
			HUPS=$hups
			next_hup=$((next_hup + HUP_EVERY))
		fi
		if [ "$t" -ge "$next_sample" ]; then
			read -r active ok failed resumed <<< "$(status active handshakes.ok handshakes.failed handshakes.resumed)"
			fields=("$t" "$(rss_kb)" "$(fd_count)" "$active" "$ok" "$failed" "$resumed" "$hups")
			(IFS=$'\t'; echo "${fields[*]}") >> "$RESULTS/samples.tsv"
			say "$(printf 't=%4ss  RSS %6s kB  fds %4s  active %4s  handshakes ok %8s failed %6s resumed %8s  SIGHUPs %3s' "${fields[@]}")"
			next_sample=$((next_sample + SAMPLE_EVERY))
		fi
		sleep 1
	done
}

# ---- the verdict -------------------------------------------------------

idle() { [ "$(status active)" = 0 ]; }

summarise() {
	local idle_fds idle_rss krc nworkers
	# Idle again: what is left open.
	wait_until 30 idle
	idle_fds=$(fd_count)
	idle_rss=$(rss_kb)
	nworkers=$(status workers)
	# SIGTERM drains (nothing is open) and exits 0.
	kill -TERM "$K_PID"
	wait "$K_PID"
	krc=$?
	"$PY" - "$RESULTS" "$SOAK_TIME" "$WARMUP" "$HUPS" "$IDLE_BEFORE" "$idle_fds" "$idle_rss" \
		"$krc" "$nworkers" "$FULL_MAX" "$RESUMED_MAX" "$FULL_RATE" "$RESUMED_RATE" "$BAD_RATE" <<'EOF'
import json, os, re, sys
(res, soak, warm, hups, idle_before, idle_fds, idle_rss, krc, nworkers, full_max,
 res_max, full_rate, res_rate, bad_rate) = sys.argv[1:]
soak, warm, hups = int(soak), int(warm), int(hups)

def load(name):
    try:
        return json.load(open(os.path.join(res, name + ".json")))
    except (OSError, ValueError):
        return None

cols = None
samples = []
for line in open(os.path.join(res, "samples.tsv")):
    f = line.rstrip("\n").split("\t")
    if cols is None:
        cols = f
        continue
    samples.append({k: (int(v) if re.fullmatch(r"-?\d+", v) else None) for k, v in zip(cols, f)})

# RSS goes up and down with the connections in flight at the moment of a
# sample: compare the median of the first minute after the warm-up with the
# median of the last minute (a third of the run each when it is short).
after = [s for s in samples if s["t_s"] >= warm and s["rss_kb"]]
win = min(60, max(10, (soak - warm) // 3))
def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else None
base_rss = median([s["rss_kb"] for s in after if s["t_s"] < warm + win])
end_rss = median([s["rss_kb"] for s in after if s["t_s"] >= after[-1]["t_s"] - win + 1]) if after else None
growth = (end_rss - base_rss) * 100.0 / base_rss if base_rss and end_rss else None
fds = [s["fds"] for s in samples if s["fds"]]

good = {n: load(n) for n in ("full", "resumed")}
bad = {n: load("bad-" + n) for n in ("expired", "revoked", "otherca")}
good_failed = sum(d["failed"] for d in good.values() if d) if all(good.values()) else None
good_ok = sum(d["ok"] for d in good.values() if d) if all(good.values()) else None
bad_in = sum(d["ok"] for d in bad.values() if d) if all(bad.values()) else None
bad_refused = sum(d["failed"] for d in bad.values() if d) if all(bad.values()) else None
log = open(os.path.join(res, "kmtlsd.log"), errors="replace").read()
reloads = log.count("reloaded certificates, keys, CAs and CRLs")
reload_errors = log.count("reload: ")
workers = int(nworkers) if nworkers.isdigit() else 1

checks = {
    "rss_growth_under_5_percent": growth is not None and growth < 5.0,
    "no_good_handshake_failed": good_failed == 0 and good_ok,
    "no_bad_client_accepted": bad_in == 0 and bool(bad_refused),
    "every_sighup_reloaded": reloads == hups and reload_errors == 0,
    "kmtlsd_exited_cleanly": krc == "0",
    # Idle again, only the relay pipe pools (64 pipes a worker) may have grown.
    "fds_back_when_idle": int(idle_fds) <= int(idle_before) + 2 * 64 * workers,
}
out = {
    "soak_time_s": soak, "warmup_s": warm, "sample_every_s": 10, "sighup_every_s": 30,
    "max_rate_per_s": {"full": int(full_max), "resumed": int(res_max)},
    "offered_rate_per_s": {"full": float(full_rate), "resumed": float(res_rate),
                           "bad_each": float(bad_rate)},
    "rss_kb": {"after_warmup_median": base_rss, "end_median": end_rss, "window_s": win,
               "max": max((s["rss_kb"] for s in samples if s["rss_kb"]), default=None),
               "idle_after": int(idle_rss) if idle_rss else None},
    "rss_growth_percent": growth and round(growth, 2),
    "fds": {"idle_before": int(idle_before), "min": min(fds, default=None),
            "max": max(fds, default=None), "idle_after": int(idle_fds)},
    "good": {n: d and {k: d.get(k) for k in ("ok", "failed", "failures", "rate_per_s",
                                              "target_rate_per_s", "backlog", "resumed",
                                              "latency_us")}
             for n, d in good.items()},
    "good_failed": good_failed, "good_ok": good_ok,
    "bad": {n: d and {"ok": d.get("ok"), "failed": d.get("failed"), "failures": d.get("failures")}
            for n, d in bad.items()},
    "bad_accepted": bad_in,
    "sighups": hups, "reloads": reloads, "reload_errors": reload_errors,
    "samples": samples, "checks": checks, "passed": all(checks.values()),
}
json.dump(out, open(os.path.join(res, "soak.json"), "w"), indent=1, sort_keys=True)

def fmt(v, spec=""):
    return "?" if v is None else format(v, spec)
print()
print("soak: %d s at %s full/s + %s resumed/s (max %s / %s), bad clients 3 x %s/s"
      % (soak, full_rate, res_rate, full_max, res_max, bad_rate))
print("  RSS       %s kB after the %d s warm-up -> %s kB at the end (medians of %d s): %s%% (target < 5%%); max %s kB, idle after %s kB"
      % (fmt(base_rss), warm, fmt(end_rss), win, fmt(growth, "+.2f"),
         fmt(out["rss_kb"]["max"]), idle_rss or "?"))
print("  good      %s ok, %s failed (target 0)%s" % (fmt(good_ok), fmt(good_failed),
      "".join("; %s: %s" % (n, d["failures"]) for n, d in good.items() if d and d["failures"])))
if all(good.values()):
    print("  latency   full p50 %s us p99 %s us, resumed p50 %s us p99 %s us; %s of %s resumed"
          % (good["full"]["latency_us"]["p50"], good["full"]["latency_us"]["p99"],
             good["resumed"]["latency_us"]["p50"], good["resumed"]["latency_us"]["p99"],
             good["resumed"]["resumed"], good["resumed"]["ok"]))
print("  bad       %s accepted (target 0), %s refused: %s" % (fmt(bad_in), fmt(bad_refused),
      "; ".join("%s %s" % (n, sorted((d or {}).get("failures", {}))) for n, d in bad.items())))
print("  fds       %s idle before, %s..%s under load, %s idle after"
      % (idle_before, fmt(out["fds"]["min"]), fmt(out["fds"]["max"]), idle_fds))
print("  reloads   %d SIGHUPs, %d reloaded, %d failed" % (hups, reloads, reload_errors))
for k, v in checks.items():
    print("  %-4s %s" % ("ok" if v else "FAIL", k))
print("  -> %s" % os.path.join(res, "soak.json"))
sys.exit(0 if all(checks.values()) else 1)
EOF
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	prepare
	start_backend
	start_kmtlsd
	say "kmtlsd pid $K_PID on 127.0.0.1:$K_PORT (status $S_PORT), echo backend on $B_PORT; results in $RESULTS"
	probe
	wait_until 30 idle
	IDLE_BEFORE=$(fd_count)
	start_load
	HUPS=0
	watch_load || true
	wait "${BENCH_PIDS[@]}" 2>/dev/null
	alive "$K_PID" || { tail -n 30 "$RESULTS/kmtlsd.log" >&2; die "kmtlsd is gone"; }
	summarise
}

main "$@"
