# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Checks for shell selftests whose case output is the diagnostics (ktap.sh's
# case_), sourced after env.sh ($PY).

# jget JSON PATH: one value ("a.b.0.c") from a JSON document; lists,
# objects, booleans and null as compact JSON, the rest as they are.
jget() {
	"$PY" -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict, bool)) or v is None else v)' "$1" "$2"
}

# expect_eq WHAT GOT WANT: 0 when equal, else a line that says how not.
expect_eq() {
	[ "$2" = "$3" ] && return 0
	echo "$1: got '$2', expected '$3'"
	return 1
}
