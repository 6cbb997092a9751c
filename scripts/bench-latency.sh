#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Cost of the handshake latency programs (bpf/hs_latency.bpf.c) per
# connection, and ring buffer drops at the highest handshake rate
# kmtls-bench reaches. The last part of `make bench` (BENCH_LATENCY=0 skips it).
#
#   full, resumed   kmtls-bench (closed loop, CONCURRENCY connections, DURATION
#                   s) against kmtlsd with hs_latency attached to kmtlsd's
#                   cgroup, USDT added (what a host without kTLS needs);
#                   `kmtlsctl latency --events` reads the ring buffer all along
#   keys            plain TCP connections whose server side calls
#                   setsockopt(SOL_TLS, TLS_TX): the kTLS completion path, as
#                   on a kTLS host, without USDT (first; on a kernel without
#                   kTLS the call fails after the hook ran)
#
# Per connection = the run time of all four programs (kernel.bpf_stats_enabled:
# run_time_ns, run_cnt) over the connections tracked in that phase: sockops
# runs (every op of every TCP socket of the cgroup, kmtlsd's backend
# connections included), setsockopt runs (every setsockopt in the cgroup),
# release runs (every inet socket the cgroup closes) and USDT runs. Not in run_time_ns: the kernel's own work around a cgroup
# hook (the setsockopt hook copies optval into a kernel buffer before the
# program runs, whatever the program does), and the uprobe trap of a USDT
# probe (~1-3 us per hit on x86, a property of uprobes).
#
# Targets from issue 6: at most 1 us per connection, no ring buffer drops.
# The keys phase runs KEYS_ROUNDS times (the machine's noise moves single
# runs by 10-30%); its median is checked against the target. Results, one
# JSON object per run, in $RESULTS (build/bench/results-latency.json).
# The clients (kmtls-bench, the keys driver) and kmtlsd's echo backend run
# outside the cgroup, so what is measured is kmtlsd's side: its accepted
# connection and its connection to the backend. Runs in a private mount namespace with its
# own bpffs and its own cgroup; kernel.bpf_stats_enabled is put back.
#
# Usage: scripts/bench-latency.sh   (root; `make` first)
#   DURATION=10 CONCURRENCY=64 WORKERS=2 KEYS_CONNS=20000 KEYS_ROUNDS=3
#   PHASES="full resumed keys"
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
PKI=$(realpath -m "${KMTLS_PKI:-$TOP/build/pki}")
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
WORKERS=${WORKERS:-2}
KEYS_CONNS=${KEYS_CONNS:-20000}
KEYS_ROUNDS=${KEYS_ROUNDS:-3}
RESULTS=${RESULTS:-$TOP/build/bench/results-latency.json}
PHASES=${PHASES:-full resumed keys}
PY=/usr/bin/python3

if [ "${KMTLS_BENCH_LAT_INNER:-}" != 1 ]; then
	for f in "$OUT/bin/kmtlsd" "$OUT/bin/kmtlsctl" "$OUT/bin/kmtls-bench" \
		 "$OUT/selftests/progs/test_backend" "$OUT/selftests/bpf/hs_floor" "$PKI/client.pem"; do
		[ -e "$f" ] || { echo "bench-latency: $f missing (make; make check makes the PKI)" >&2; exit 1; }
	done
	[ "$(id -u)" = 0 ] || { echo "bench-latency: needs root" >&2; exit 1; }
	exec env KMTLS_BENCH_LAT_INNER=1 unshare -m --propagation private "$0" "$@"
fi

TMP=$(mktemp -d /tmp/kmtls-bench-lat.XXXXXX)
CG=
PIDS=()
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
CTL=$OUT/bin/kmtlsctl

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	"$CTL" latency detach > /dev/null 2>&1 || true
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS" || true
	[ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
	[ -n "$CG" ] && rmdir "$CG-floor" 2>/dev/null || true
	umount "$TMP/bpffs" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs"
export KMTLS_BPF_PIN_DIR=$TMP/bpffs/kmtls

CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
if [ -z "$CGROOT" ]; then
	CGROOT=$TMP/cgroup2
	mkdir "$CGROOT"
	mount -t cgroup2 cgroup2 "$CGROOT"
fi
CG=$CGROOT/kmtls-bench-lat-$$
mkdir "$CG"
sysctl -qw kernel.bpf_stats_enabled=1

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# in_cg CMD...: run CMD in the background inside the benchmark's cgroup.
in_cg() {
	( echo "$BASHPID" > "$CG/cgroup.procs" && exec "$@" ) &
	PIDS+=($!)
}

BPORT=$(free_port)
KPORT=$(free_port)
SPORT=$(free_port)
# The backend is a service of its own, outside kmtlsd's cgroup.
"$OUT/selftests/progs/test_backend" --listen "127.0.0.1:$BPORT" --mode echo > /dev/null &
PIDS+=($!)
in_cg "$OUT/bin/kmtlsd" --foreground --workers "$WORKERS" --log-level error \
	--listen "127.0.0.1:$KPORT" --backend "127.0.0.1:$BPORT" \
	--cert "$PKI/server.pem" --key "$PKI/server.key" --ca "$PKI/ca.pem"
sleep 1
# The keys phase runs first, without USDT (what a kTLS host needs); then
# the USDT program joins for the kmtls-bench phases.
"$CTL" latency attach --cgroup "$CG" --ports "$KPORT,$SPORT" >&2 2>/dev/null

# prog_id LINK_PIN
prog_id() { bpftool -j link show pinned "$KMTLS_BPF_PIN_DIR/$1" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["prog_id"])'; }
P_SOCKOPS=$(prog_id hs_link_sockops)
P_SOCKOPT=$(prog_id hs_link_setsockopt)
P_RELEASE=$(prog_id hs_link_release)
P_USDT=

usdt_on() {
	[ -n "$P_USDT" ] && return 0
	"$CTL" latency attach --cgroup "$CG" --usdt "$OUT/bin/kmtlsd" >&2
	P_USDT=$(prog_id "$(cd "$KMTLS_BPF_PIN_DIR" && ls -d hs_link_usdt_* | head -n 1)")
}

# snapshot FILE: run_time_ns and run_cnt of the programs, hs_stats.
snapshot() {
	{
		for id in "$P_SOCKOPS" "$P_SOCKOPT" "$P_RELEASE" "$P_USDT"; do
			if [ -n "$id" ]; then bpftool -j prog show id "$id"; else echo '{}'; fi
			echo
		done
		"$CTL" --json latency status
	} > "$1"
}

# The keys driver: a server in the cgroup that accepts and installs keys,
# a client outside it that connects and waits for the close.
cat > "$TMP/keys.py" <<'EOF'
import errno, os, socket, sys
role, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SOL_TLS, TLS_TX = 282, 1
# struct tls12_crypto_info_aes_gcm_128: TLS 1.2, AES-GCM-128, zero key
info = (0x0303).to_bytes(2, "little") + (51).to_bytes(2, "little") + bytes(36)
if role == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    sys.stdout.write("ready\n"); sys.stdout.flush()
    fails = 0
    for _ in range(n):
        s, _ = ls.accept()
        try:
            s.setsockopt(SOL_TLS, TLS_TX, info)
        except OSError as e:
            fails += e.errno in (errno.ENOPROTOOPT, errno.ENOENT)
        s.close()
    print("setsockopt(SOL_TLS) failed %d of %d times (no TLS ULP)" % (fails, n))
else:
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.recv(1)
        c.close()
EOF

# report NAME BEFORE AFTER RATE READER_LOG: print the phase, append it to $TMP/runs.jsonl.
report() {
	"$PY" - "$@" "$TMP/runs.jsonl" <<'EOF'
import json, sys
name, before, after, rate, reader, runs = sys.argv[1:7]
def load(path):
    dec, docs, text = json.JSONDecoder(), [], open(path).read()
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        o, i = dec.raw_decode(text, i)
        docs.append(o)
    return docs
b, a = load(before), load(after)
progs = [("sockops", 0), ("setsockopt", 1), ("release", 2), ("usdt", 3)]
conns = a[4]["stats"]["tracked"] - b[4]["stats"]["tracked"]
total = 0
rows = []
for label, i in progs:
    dt = a[i].get("run_time_ns", 0) - b[i].get("run_time_ns", 0)
    dn = a[i].get("run_cnt", 0) - b[i].get("run_cnt", 0)
    total += dt
    rows.append((label, dn, dt))
dropped = a[4]["stats"]["events_dropped"] - b[4]["stats"]["events_dropped"]
events = a[4]["stats"]["events"] - b[4]["stats"]["events"]
read = None
for line in open(reader):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if "summary" in o:
        read = o["summary"]
print("%s: %d connections%s" % (name, conns, ", %s handshakes/s" % rate if rate else ""))
for label, dn, dt in rows:
    print("  %-10s %8d runs  %5.2f per conn  %6.0f ns per run  %6.0f ns per conn" %
          (label, dn, dn / conns if conns else 0, dt / dn if dn else 0, dt / conns if conns else 0))
per = total / conns if conns else float("nan")
print("  all        %6.0f ns per connection (target <= 1000): %s" % (per, "ok" if per <= 1000 else "OVER"))
with open(runs, "a") as f:
    f.write(json.dumps({"phase": name, "connections": conns, "ns_per_connection": round(per),
                        "programs": {l: {"runs": dn, "run_time_ns": dt} for l, dn, dt in rows},
                        "events": events, "dropped": dropped}) + "\n")
print("  ring buffer: %d events written, %d dropped by the kernel, reader got %s (target 0 dropped): %s" %
      (events, dropped, read["events"] if read else "?", "ok" if dropped == 0 else "DROPS"))
EOF
}

# phase NAME CMD...: one measured run with a ring buffer reader going.
phase() {
	local name=$1 rate="" reader
	shift
	"$CTL" --json latency --events > "$TMP/$name.events" &
	reader=$!
	sleep 0.5
	snapshot "$TMP/$name.before"
	"$@" > "$TMP/$name.out"
	snapshot "$TMP/$name.after"
	sleep 0.5
	kill -INT "$reader"
	wait "$reader" || true
	rate=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("rate_per_s", ""))' \
		"$TMP/$name.out" 2>/dev/null || true)
	report "$name" "$TMP/$name.before" "$TMP/$name.after" "$rate" "$TMP/$name.events"
}

bench() {
	"$OUT/bin/kmtls-bench" --connect "127.0.0.1:$KPORT" --mode "$1" --cert "$PKI/client.pem" \
		--key "$PKI/client.key" --ca "$PKI/ca.pem" --concurrency "$CONCURRENCY" \
		--duration "$DURATION" --json
}

# keys [CGROUP]: the keys driver, its server in CGROUP ($CG by default).
keys() {
	local srv cg=${1:-$CG}
	( echo "$BASHPID" > "$cg/cgroup.procs" && exec "$PY" "$TMP/keys.py" server "$SPORT" "$KEYS_CONNS" ) \
		> "$TMP/keys.server" &
	srv=$!
	until grep -q ready "$TMP/keys.server" 2>/dev/null; do sleep 0.05; done
	"$PY" "$TMP/keys.py" client "$SPORT" "$KEYS_CONNS"
	wait "$srv"
	sed -n 2p "$TMP/keys.server" >&2
}

# floor: the keys driver once more, in a cgroup of its own with
# selftests/bpf/hs_floor's programs (they return at once): what the runs
# cost before any work.
floor() {
	local pid
	mkdir -p "$CG-floor"
	"$OUT/selftests/bpf/hs_floor" "$CG-floor" > "$TMP/floor.out" &
	pid=$!
	until grep -q ready "$TMP/floor.out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { echo "bench-latency: hs_floor failed" >&2; return 1; }
		sleep 0.05
	done
	keys "$CG-floor" 2> /dev/null
	kill -TERM "$pid"
	wait "$pid"
	"$PY" - "$TMP/floor.out" "$KEYS_CONNS" "$TMP/runs.jsonl" <<'EOF'
import json, sys
st = json.loads(open(sys.argv[1]).read().split("\n", 1)[1])
n = int(sys.argv[2])
total = sum(p["run_time_ns"] for p in st.values())
print("floor: %d connections, programs that only return" % n)
for k, p in st.items():
    print("  %-10s %8d runs  %5.2f per conn  %6.0f ns per run  %6.0f ns per conn" %
          (k, p["runs"], p["runs"] / n, p["run_time_ns"] / max(p["runs"], 1), p["run_time_ns"] / n))
print("  all        %6.0f ns per connection" % (total / n))
with open(sys.argv[3], "a") as f:
    f.write(json.dumps({"phase": "floor", "connections": n, "ns_per_connection": round(total / n),
                        "programs": st}) + "\n")
EOF
}

echo "hs_latency on $(uname -r), kmtlsd $WORKERS workers, kmtls-bench $CONCURRENCY connections for ${DURATION}s"
# keys first: it is the one without USDT.
for p in keys full resumed; do
	[[ " $PHASES " == *" $p "* ]] || continue
	case $p in
	full|resumed) usdt_on && phase "$p" bench "$p" ;;
	keys)
		for r in $(seq "$KEYS_ROUNDS"); do phase "keys$r" keys; done
		floor
		"$PY" - "$TMP/runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
per = sorted(r["ns_per_connection"] for r in runs if r["phase"].startswith("keys"))
floor = [r["ns_per_connection"] for r in runs if r["phase"] == "floor"]
med = statistics.median(per)
print("keys, %d runs: %s ns per connection; median %.0f = %.2f x the 1000 ns target: %s" %
      (len(per), " ".join(map(str, per)), med, med / 1000, "ok" if med <= 1000 else "OVER"))
if floor:
    print("  of which the runs themselves (programs that only return): %d ns; "
          "hs_latency's own work: %.0f ns" % (floor[0], med - floor[0]))
EOF
		;;
	*) echo "bench-latency: unknown phase $p" >&2; exit 2 ;;
	esac
done
mkdir -p "$(dirname "$RESULTS")"
cp "$TMP/runs.jsonl" "$RESULTS"
