#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Take the few kernel-tree files kmtls uses from Debian's linux-source-6.12
# tarball into $BUILD/ksrc: the kselftest harness headers and checkpatch.pl with
# the data files it reads. They are never committed.
set -euo pipefail

BUILD=${1:?usage: extract-ksrc.sh BUILD_DIR}
OUT=$BUILD/ksrc
TARS=(/usr/src/linux-source-6.12.tar.*)
TAR=${TARS[0]}
[ -f "$TAR" ] || { echo "extract-ksrc: /usr/src/linux-source-6.12.tar.* missing: apt-get install linux-source-6.12" >&2; exit 1; }

FILES=(
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
)
[ -f "$OUT/.done" ] && [ "$(cat "$OUT/.done")" = "$TAR $(stat -c %Y "$TAR")" ] && exit 0

rm -rf "$OUT"
mkdir -p "$OUT"
tar -xf "$TAR" -C "$OUT" --strip-components=1 "${FILES[@]/#/linux-source-6.12/}" ||
	{ echo "extract-ksrc: could not extract from $TAR" >&2; exit 1; }
echo "$TAR $(stat -c %Y "$TAR")" > "$OUT/.done"
