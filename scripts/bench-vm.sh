#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make bench-vm: bulk transfer through kmtlsd (kTLS + splice relay) against
# nginx's stream proxy (OpenSSL records in userspace), in bytes relayed per
# server CPU-second. kTLS needs a kernel that has it, so the measurement runs
# in the QEMU guest of tools/vm (Debian 6.12); under TCG emulation absolute
# numbers mean nothing, only the ratio of the two servers is read.
#
#   scripts/bench-vm.sh             host: install, build, PKI, boot the guest,
#                                   summarise into build/bench/results-vm.json
#   scripts/bench-vm.sh --guest D R C   (inside the guest) R interleaved
#                                   rounds of D s with C connections each
#
# Knobs: BENCH_VM_DURATION (10 s), BENCH_ROUNDS (3), BENCH_VM_CONCURRENCY (4),
# BENCH_WARMUP (1 s), KMTLS_BENCH. Server on guest CPU 0, client and echo
# backend on guest CPU 1, as in bench.sh. kmtlsd runs with --ktls require,
# and the guest's /proc/net/tls_stat must show TlsTxSw grow while it runs.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$TOP/scripts/bench-lib.sh"

SERVERS=(kmtlsd nginx)

main() {
	if [ "${1:-}" = --guest ]; then
		shift
		guest "$@"
	else
		host
	fi
}

host() {
	local duration=${BENCH_VM_DURATION:-10} rounds=${BENCH_ROUNDS:-3}
	local conc=${BENCH_VM_CONCURRENCY:-4} timeout vm rc=0
	bench_lib_init
	install_anchors
	if [ ! -x "$KMTLSD" ] || [ ! -x "$BACKEND_BIN" ] || [ ! -x "$CLIENT" ]; then
		make --no-print-directory -C "$TOP" userspace
	fi
	[ -x "$CLIENT" ] || bench_die "no load generator at $CLIENT (make userspace builds kmtls-bench)"
	mkdir -p "$BENCH_OUT"
	"$TOP/selftests/lib/mkpki.sh" "$BENCH_OUT/pki-ecdsa"
	: > "$BENCH_OUT/vm-runs.jsonl"
	rm -f "$BENCH_OUT/results-vm.json" "$BENCH_OUT/vm-gcm.txt"
	# The guest sees the build directory at the same path, as KMTLS_BUILD.
	export KMTLS_BUILD=$BUILD KMTLS_BENCH_WARMUP=${BENCH_WARMUP:-1}
	# Generous: TCG makes every process start and every handshake slow.
	timeout=$((rounds * ${#SERVERS[@]} * (duration + 40) + 300))
	# In the background, so the EXIT trap can stop the guest (QEMU and all)
	# if this script is interrupted.
	"$TOP/tools/vm/kmtls-vm" run --kernel 6.12 --no-kmod --timeout "$timeout" -- \
		"$TOP/scripts/bench-vm.sh" --guest "$duration" "$rounds" "$conc" &
	vm=$!
	BENCH_PIDS+=("$vm")
	wait "$vm" || rc=$?
	forget_pid "$vm"
	[ "$rc" = 0 ] || bench_die "the guest run failed (kmtls-vm exited $rc)"
	summarise "$BENCH_OUT/vm-runs.jsonl" "$BENCH_OUT/results-vm.json"
}

# ---- guest ------------------------------------------------------------------

tls_stat() {
	awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' /proc/net/tls_stat
}

guest() {
	local duration=$1 rounds=$2 conc=$3 round server
	BUILD=$KMTLS_BUILD
	WARMUP=${KMTLS_BENCH_WARMUP:-1}
	CLIENT_TIMEOUT=$((duration * 4 + 120))
	bench_lib_init
	[ -r /proc/net/tls_stat ] || bench_die "guest kernel $(uname -r) has no kTLS (/proc/net/tls_stat)"
	# kTLS or nothing: a silent fallback to wolfSSL records would measure
	# the wrong thing.
	KMTLSD_ARGS="--ktls require"
	# On a real boot udev loads the CPU's AES drivers by modalias; this
	# guest has no udev, and kTLS would get the kernel's table-driven C AES
	# (aes-generic) while OpenSSL uses AES-NI. Load them as udev would.
	modprobe -q -a aesni_intel ghash_clmulni_intel 2>/dev/null ||
		echo "bench-vm: no aesni_intel: kTLS gets the generic AES" >&2
	pin_self
	start_backend
	echo "bench-vm: guest $(uname -r), $rounds rounds x ${SERVERS[*]}, bulk, $conc connections, $duration s"
	for round in $(seq "$rounds"); do
		for server in "${SERVERS[@]}"; do
			bulk_run "$server" "$round" "$duration" "$conc"
		done
	done
	# Which AES-GCM implementations the kernel instantiated for kTLS.
	awk '/^name/ { n = $3 } /^driver/ { d = $3 } /^refcnt/ { r = $3 }
	     /^$/ { if (n == "gcm(aes)") print d, r }' /proc/crypto > "$BENCH_OUT/vm-gcm.txt"
}

# bulk_run SERVER ROUND DURATION CONCURRENCY
bulk_run() {
	local server=$1 round=$2 duration=$3 conc=$4 pki=$BENCH_OUT/pki-ecdsa tx0 rx0 tx1 rx1
	local args
	args=(--mode bulk --cert "$pki/client.pem" --key "$pki/client.key" --ca "$pki/ca.pem"
	      --concurrency "$conc" --threads 1 --warmup 0 --json)
	start_server "$server" "$pki"
	run_client "$BENCH_TMP/warmup.json" --connect "127.0.0.1:$SERVER_PORT" "${args[@]}" --duration "$WARMUP"
	tx0=$(tls_stat TlsTxSw)
	rx0=$(tls_stat TlsRxSw)
	measure_client "$BENCH_TMP/run.json" --connect "127.0.0.1:$SERVER_PORT" "${args[@]}" --duration "$duration"
	tx1=$(tls_stat TlsTxSw)
	rx1=$(tls_stat TlsRxSw)
	stop_server
	record "$BENCH_OUT/vm-runs.jsonl" "$BENCH_TMP/run.json" server="$server" round="$round" \
		server_cpu_s="$CPU_S" window_s="$WALL_S" kernel="$(uname -r)" \
		tls_tx_sw_delta=$((tx1 - tx0)) tls_rx_sw_delta=$((rx1 - rx0))
	echo "  round $round $server: server $CPU_S CPU-s over $WALL_S s, kTLS TX sockets +$((tx1 - tx0)), RX +$((rx1 - rx0))"
}

# ---- host: summary ------------------------------------------------------------

summarise() {
	"$PY" - "$1" "$2" "$BENCH_OUT/vm-gcm.txt" <<'EOF'
import json, statistics, sys

runs = [json.loads(l) for l in open(sys.argv[1])]
try:
    gcm = [{"driver": d, "refcnt": int(r)} for d, r in (l.split() for l in open(sys.argv[3]))]
except (OSError, ValueError):
    gcm = []
med = statistics.median
if not runs:
    sys.exit("bench-vm: the guest recorded no runs")

def moved(b):
    return b.get("bytes_sent", 0) + b.get("bytes_received", 0)

servers = {}
for name in ("kmtlsd", "nginx"):
    rs = [r for r in runs if r["server"] == name]
    if not rs:
        continue
    servers[name] = {
        "rounds": len(rs),
        "bytes_per_s": med(moved(r["bench"]) / r["bench"]["duration_s"] for r in rs),
        "server_cpu_s": med(r["server_cpu_s"] for r in rs),
        "server_cpu_pct": med(100 * r["server_cpu_s"] / r["window_s"] for r in rs),
        "bytes_per_server_cpu_s": med(moved(r["bench"]) / r["server_cpu_s"] if r["server_cpu_s"] else 0
                                      for r in rs),
        "failed": sum(r["bench"]["failed"] for r in rs),
        "ktls_tx_sockets": sum(r["tls_tx_sw_delta"] for r in rs),
        "ktls_rx_sockets": sum(r["tls_rx_sw_delta"] for r in rs),
        "cipher": sorted({str(r["bench"].get("cipher")) for r in rs}),
    }
k, n = servers.get("kmtlsd"), servers.get("nginx")
ratio = k["bytes_per_server_cpu_s"] / n["bytes_per_server_cpu_s"] if k and n and n["bytes_per_server_cpu_s"] else None
ktls_ok = bool(k and all(r["tls_tx_sw_delta"] > 0 for r in runs if r["server"] == "kmtlsd"))

print()
print(f"bulk through the server, guest kernel {runs[0]['kernel']} under QEMU emulation:"
      " absolute numbers are meaningless here, only the ratio is read.")
print("bytes = client bytes sent + received (echo backend); medians over rounds.")
print()
print(f"{'server':<9}{'MB/s':>9}{'srv CPU-s':>11}{'srv CPU':>9}{'MB per srv CPU-s':>18}{'failed':>8}"
      f"{'kTLS TX+RX':>12}  cipher")
for name, v in servers.items():
    print(f"{name:<9}{v['bytes_per_s'] / 1e6:>9.2f}{v['server_cpu_s']:>11.2f}{v['server_cpu_pct']:>8.0f}%"
          f"{v['bytes_per_server_cpu_s'] / 1e6:>18.2f}{v['failed']:>8}"
          f"{v['ktls_tx_sockets']:>6}+{v['ktls_rx_sockets']:<5}  {', '.join(v['cipher'])}")
print()
print(f"bulk     kmtlsd/nginx = {'n/a' if ratio is None else f'{ratio:.2f}'}"
      "   (bytes per server CPU-second; emulated guest)")
print(f"guest kernel gcm(aes) for kTLS: {', '.join(g['driver'] for g in gcm) or 'unknown'}")
print("kTLS: kmtlsd " + ("used kTLS in every round (/proc/net/tls_stat TlsTxSw grew)" if ktls_ok
                         else "did NOT show kTLS use in every round (TlsTxSw did not grow)"))
json.dump({"note": "QEMU TCG guest: absolute numbers are meaningless, the ratio is the result",
           "summary": {"servers": servers, "bulk_kmtlsd_over_nginx": ratio, "kmtlsd_used_ktls": ktls_ok,
                       "guest_gcm_aes": gcm},
           "runs": runs}, open(sys.argv[2], "w"), indent=1)
print(f"\nall runs and this summary: {sys.argv[2]}")
if not ktls_ok:
    sys.exit(1)
EOF
}

main "$@"
