# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034
#
# Where a shell selftest finds things; sourced first:
# `. "$(dirname "$0")/../lib/env.sh"`. The Debian tools, not whatever a shim
# or /usr/local puts first; python3 by absolute path as well, since a pyenv
# shim does not work inside the guest.
#
#   KMTLS_OUT  build output (default: <repo>/build/out)
#   KMTLS_PKI  test PKI from selftests/lib/mkpki.sh (default: <repo>/build/pki)

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
PY=/usr/bin/python3

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")
PKI_SRC=$(realpath -m "${KMTLS_PKI:-$TOP/build/pki}")
KMTLSD=$OUT/bin/kmtlsd
KMTLSCTL=$OUT/bin/kmtlsctl
BENCH=$OUT/bin/kmtls-bench
BACKEND=$OUT/selftests/progs/test_backend

# need_files TEST FILE...: 0 when `test TEST FILE` holds for every FILE (TEST
# -x, -e), else 1 with the first that does not in MISSING.
need_files() {
	local t=$1 f
	shift
	for f in "$@"; do
		test "$t" "$f" || { MISSING=$f; return 1; }
	done
}

# need_tools TOOL...: 0 when every TOOL is a command here, else 1 with the
# first missing one in MISSING.
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" > /dev/null || { MISSING=$t; return 1; }
	done
}

is_root() { [ "$(id -u)" = 0 ]; }
