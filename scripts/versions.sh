#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Record what this build was made from, so a run can be reproduced:
# $BUILD/versions.txt
set -euo pipefail

BUILD=${1:?usage: versions.sh BUILD_DIR}
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }

{
	echo "# kmtls build inputs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "debian: $(cat /etc/debian_version)"
	for k in 6.12 6.1; do
		rel=$(cat "$BUILD/kernel-$k" 2>/dev/null || echo missing)
		echo "kernel $k: $rel image $(pkgver "linux-image-$rel-unsigned") headers $(pkgver "linux-headers-$rel")"
	done
	echo "linux-source-6.12: $(pkgver linux-source-6.12)"
	echo "wolfssl source: $(cat "$BUILD/wolfssl/.source-version" 2>/dev/null || echo missing) (Debian $(cd "$BUILD/src" 2>/dev/null && ls wolfssl_*.dsc 2>/dev/null | sed 's/^wolfssl_//; s/\.dsc$//'))"
	echo "wolfssl configure: $(cat "$BUILD/wolfssl/.configure-line" 2>/dev/null || echo missing)"
	for p in gcc clang libbpf-dev bpftool libnl-genl-3-dev libinih-dev libjson-c-dev qemu-system-x86 openssl gnutls-bin curl; do
		echo "$p: $(pkgver "$p")"
	done
} > "$BUILD/versions.txt"
