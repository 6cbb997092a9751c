# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench_expect.py FILE EXPR...: every Python expression must hold for the
# kmtls-bench --json object in FILE (d: the object, lat: d["latency_us"],
# why: its invalid_reasons joined). Those that do not are named, followed by
# the JSON, and the exit status is 1; otherwise one line of the numbers, for
# whoever reads the log (never checked against a speed).
import json
import sys

try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    print("no JSON object from kmtls-bench: %s" % e)
    sys.exit(1)
env = {"d": d, "lat": d.get("latency_us") or {},
       "why": " | ".join(d.get("invalid_reasons", []))}
bad = []
for e in sys.argv[2:]:
    try:
        if not eval(e, {}, env):
            bad.append(e)
    except Exception as x:
        bad.append("%s (%s: %s)" % (e, type(x).__name__, x))
for e in bad:
    print("expected: " + e)
if bad:
    print("got: " + json.dumps(d, sort_keys=True))
    sys.exit(1)
keys = ("ok", "failed", "unfinished", "local_errors", "rate_per_s", "resumed",
        "resumable", "resumed_psk_dhe_ke", "achieved_rate_per_s", "backlog",
        "bytes_sent", "bytes_received", "client_cpu_pct", "ecdsa_p256_sign_per_s",
        "ecdsa_p256_verify_per_s", "x25519_per_s", "ceiling_hs_per_s")
lat = env["lat"]
print(", ".join("%s %s" % (k, d[k]) for k in keys if k in d) +
      ("; latency_us p50 %s p99 %s max %s" % (lat["p50"], lat["p99"], lat["max"])
       if lat else "") +
      ("; " + env["why"] if env["why"] else ""))
