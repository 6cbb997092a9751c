#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# ns per packet of the XDP ClientHello limiter (bpf/hello_limit.bpf.c) with
# BPF_PROG_TEST_RUN (`bpftool prog run ... repeat N`), against an XDP
# program that only returns XDP_PASS (bpf/xdp_pass.bpf.c) on the same CPU:
#
#   empty          xdp_pass
#   not candidate  TCP to port 80 (parse, port check)
#   not TLS        a TLS application-data record to port 443 (+ payload peek)
#   hello, admitted      ClientHellos from SOURCES random IPv4 sources, each
#                        repeated, budgets so high every one passes (bucket
#                        lookup + compare-and-swap)
#   hello, over limit    the same with rate 1 burst 1: after its first packet
#                        each source is over its budget (the flood path)
#
# Not measured: a source's first ClientHello (the LRU insert). `repeat` runs
# the same frame again, and a single run costs ~2 us of test_run overhead.
#
# Targets from issue 5 (this machine, an empty program ~25 ns): not
# candidate <= 35 ns, ClientHello with random sources <= 100 ns.
#
# Runs in a private mount namespace with its own bpffs on /sys/fs/bpf, so
# nothing is pinned on the host and nothing is attached to any interface.
# Usage: scripts/bench-xdp.sh [REPEAT] (default 2000000); needs root, and
# `make` for build/out/bpf/*.bpf.o and build/out/bin/kmtlsctl.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
REPEAT=${1:-2000000}
SOURCES=${SOURCES:-16}

if [ "${KMTLS_BENCH_XDP_INNER:-}" != 1 ]; then
	for f in "$OUT/bpf/hello_limit.bpf.o" "$OUT/bpf/xdp_pass.bpf.o" "$OUT/bin/kmtlsctl"; do
		[ -e "$f" ] || { echo "bench-xdp: $f missing (make)" >&2; exit 1; }
	done
	[ "$(id -u)" = 0 ] || { echo "bench-xdp: needs root" >&2; exit 1; }
	exec env KMTLS_BENCH_XDP_INNER=1 unshare -m --propagation private "$0" "$@"
fi

TMP=$(mktemp -d /tmp/kmtls-bench-xdp.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
umount /sys/fs/bpf 2>/dev/null || true
mount -t bpf bpf /sys/fs/bpf
export KMTLS_BPF_PIN_DIR=/sys/fs/bpf
CTL=$OUT/bin/kmtlsctl

# Frames: Ethernet + IPv4 + TCP (+ payload), written as files.
/usr/bin/python3 - "$TMP" "$SOURCES" <<'EOF'
import os, random, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
def frame(src, dport, payload):
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0,
                     64, 6, 0, bytes(src), bytes([192, 0, 2, 1]))
    eth = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00])
    return eth + ip + tcp + payload
body = bytes([3, 3]) + os.urandom(32) + bytes([0, 0, 2, 0x13, 0x01, 1, 0, 0, 0])
hs = bytes([1]) + len(body).to_bytes(3, "big") + body
hello = bytes([0x16, 3, 1]) + len(hs).to_bytes(2, "big") + hs + bytes(200)
appdata = bytes([0x17, 3, 3, 0, 64]) + os.urandom(64)
open(out + "/port80", "wb").write(frame([192, 0, 2, 7], 80, appdata))
open(out + "/appdata", "wb").write(frame([192, 0, 2, 7], 443, appdata))
for i in range(n):
    src = [random.randint(1, 223), random.randint(0, 255), random.randint(0, 255), random.randint(1, 254)]
    open(out + "/hello%d" % i, "wb").write(frame(src, 443, hello))
EOF

bpftool prog load "$OUT/bpf/xdp_pass.bpf.o" /sys/fs/bpf/xdp_pass type xdp
# Maps are pinned by name next to it; kmtlsctl configures them there.
bpftool prog load "$OUT/bpf/hello_limit.bpf.o" /sys/fs/bpf/hello_limit type xdp

# run PROG FILE REPEAT: average ns per run.
run() {
	bpftool -j prog run pinned "/sys/fs/bpf/$1" data_in "$2" repeat "$3" |
		/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["duration"])'
}

# hellos REPEAT: mean over the sources of the per-run average.
hellos() {
	local i t=0
	for ((i = 0; i < SOURCES; i++)); do
		t=$((t + $(run hello_limit "$TMP/hello$i" "$1")))
	done
	echo $((t / SOURCES))
}

"$CTL" ratelimit set --ports 443 --rate 10000000 --burst 10000000 --global-rate 0 > /dev/null
empty=$(run xdp_pass "$TMP/port80" "$REPEAT")
noncand=$(run hello_limit "$TMP/port80" "$REPEAT")
nottls=$(run hello_limit "$TMP/appdata" "$REPEAT")
admitted=$(hellos $((REPEAT / SOURCES)))

"$CTL" ratelimit set --rate 1 --burst 1 > /dev/null
over=$(hellos $((REPEAT / SOURCES)))

ratio() { /usr/bin/python3 -c "import sys; print('%.2f' % (int(sys.argv[1]) / max(1, int(sys.argv[2]))))" "$1" "$2"; }
printf '%-28s %6s %8s\n' "path" "ns/pkt" "x empty"
printf '%-28s %6s %8s\n' "empty XDP program" "$empty" "1.00"
printf '%-28s %6s %8s\n' "not candidate (port 80)" "$noncand" "$(ratio "$noncand" "$empty")"
printf '%-28s %6s %8s\n' "not TLS (443, app data)" "$nottls" "$(ratio "$nottls" "$empty")"
printf '%-28s %6s %8s\n' "hello, admitted" "$admitted" "$(ratio "$admitted" "$empty")"
printf '%-28s %6s %8s\n' "hello, over limit" "$over" "$(ratio "$over" "$empty")"
echo "repeat $REPEAT; $SOURCES random sources; targets: not candidate <= 35 ns, hello <= 100 ns (empty ~25 ns)"
