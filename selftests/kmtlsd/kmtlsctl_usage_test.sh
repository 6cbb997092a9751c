#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtlsctl's bad command lines: every one is exit status 2 with a message
# that says what is wrong (the option, the value and its range, the form an
# address takes); with --json that message is the "error" of the one JSON
# object on stdout, and without it stdout stays empty. Verbs that have a
# usage text print it on stderr. Nothing here needs root, BPF or kmtlsd:
# each command line is refused before anything is opened. Prints KTAP.
#
#   KMTLS_OUT  build output with bin/kmtlsctl (default: <repo>/build/out)
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtlsctl-usage.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
# A pin directory that does not exist: nothing to lock, load or mount.
export KMTLS_BPF_PIN_DIR=$TMP/no-pins

# Each case: NAME|WHAT THE ERROR SAYS|USAGE (u: usage text on stderr)|ARGS...
CASES=(
	"no_verb|which verb|u"
	"ratelimit_alone|attach, detach, set, allow or status|u|ratelimit"
	"ratelimit_status_bogus|unknown option '--bogus'|u|ratelimit status --bogus"
	"ratelimit_attach_bogus|unknown option '--bogus'|u|ratelimit attach --bogus x"
	"ratelimit_set_bogus|unknown option '--bogus'|u|ratelimit set --bogus"
	"ratelimit_set_rate_max|bad --rate '4294967295': 0 to 10000000||ratelimit set --rate 4294967295"
	"ratelimit_set_burst_zero|bad --burst '0': 1 to 10000000||ratelimit set --burst 0"
	"ratelimit_set_prefix4|bad --prefix4 '33': 1 to 32||ratelimit set --prefix4 33"
	"ratelimit_set_mode|bad --mode 'panic': enforce or monitor||ratelimit set --mode panic"
	"status_bogus|kmtlsctl status: unknown option '--bogus'|u|status --bogus"
	"stats_endpoint_without_value|--endpoint needs a value|u|stats --endpoint"
	"latency_attach_bogus|kmtlsctl latency attach: unknown option '--bogus'|u|latency attach --bogus"
	"latency_events_bogus|unknown option '--bogus'||latency --events --bogus"
	"tune_c_without_value|-c needs a value|u|tune -c"
	"pki_force_with_value|--force takes no value|u|pki issue --force=1"
	"endpoint_hostname|not an IPv4 address||status --endpoint localhost:1"
	"endpoint_relative_unix|path must be absolute||status --endpoint unix:run/x.sock"
	"endpoint_port_zero|port from 1 to 65535||stats --endpoint 127.0.0.1:0"
	"endpoint_ipv6_without_port|the forms are unix:/absolute/path, IPv4:PORT and [IPv6]:PORT||stats --endpoint [::1]"
)

# check NAME WANT USAGE ARGS...: both forms of the command line.
check() {
	local want=$2 usage=$3 rc
	# shellcheck disable=SC2086 # ARGS are words
	"$KMTLSCTL" --json $4 > "$TMP/out" 2> "$TMP/err"
	rc=$?
	[ "$rc" = 2 ] || { echo "--json: exit status $rc, want 2"; cat "$TMP/out" "$TMP/err"; return 1; }
	"$PY" - "$TMP/out" "$want" <<'EOF' || return 1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
if len(lines) != 1:
    sys.exit("--json: %d lines on stdout, want one object: %r" % (len(lines), lines))
d = json.loads(lines[0])
if sys.argv[2] not in d.get("error", ""):
    sys.exit("--json: error %r does not say %r" % (d.get("error"), sys.argv[2]))
EOF
	# shellcheck disable=SC2086
	"$KMTLSCTL" $4 > "$TMP/out" 2> "$TMP/err"
	rc=$?
	[ "$rc" = 2 ] || { echo "text: exit status $rc, want 2"; return 1; }
	[ ! -s "$TMP/out" ] || { echo "text: stdout is not empty:"; cat "$TMP/out"; return 1; }
	grep -qF -- "$want" "$TMP/err" || { echo "text: stderr does not say '$want':"; cat "$TMP/err"; return 1; }
	if [ "$usage" = u ] && ! grep -q '^usage: kmtlsctl' "$TMP/err"; then
		echo "text: no usage on stderr:"
		cat "$TMP/err"
		return 1
	fi
	return 0
}

ktap_plan ${#CASES[@]}
if ! need_files -x "$KMTLSCTL"; then
	ktap_skip_rest kmtlsctl_usage "no $KMTLSCTL (make userspace)"
	exit 0
fi
for c in "${CASES[@]}"; do
	IFS='|' read -r name want usage args <<< "$c"
	case_ "kmtlsctl_usage.$name" check "$name" "$want" "$usage" "$args"
done
ktap_exit
