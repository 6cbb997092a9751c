# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the shell selftests share, sourced before anything else:
# `. "$(dirname "$0")/../lib/shlib.sh"`.
#
#   env.sh     PATH and locale, where the build and the PKI are, tool checks
#   ktap.sh    KTAP output; cases with their diagnostics
#   procs.sh   processes, free ports, daemons waited for, cleanup at exit
#   pki.sh     the test PKI, or a private copy of it
#   netns.sh   network namespaces, veth pairs, bpffs mounts
#   checks.sh  jget and expect_eq

shlib_dir=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=../lib/env.sh
. "$shlib_dir/env.sh"
# shellcheck source=../lib/ktap.sh
. "$shlib_dir/ktap.sh"
# shellcheck source=../lib/procs.sh
. "$shlib_dir/procs.sh"
# shellcheck source=../lib/pki.sh
. "$shlib_dir/pki.sh"
# shellcheck source=../lib/netns.sh
. "$shlib_dir/netns.sh"
# shellcheck source=../lib/checks.sh
. "$shlib_dir/checks.sh"
