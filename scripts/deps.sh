#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what kmtls needs on Debian 12, as root. Idempotent: packages that are
# already installed are not touched, so `make check` can call it every time.
set -euo pipefail

BUILD=${BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
mkdir -p "$BUILD"

PKGS=(
	build-essential clang llvm lld libbpf-dev bpftool libelf-dev zlib1g-dev
	libnl-3-dev libnl-genl-3-dev libinih-dev libjson-c-dev systemtap-sdt-dev
	pkg-config dpkg-dev patch autoconf automake libtool
	openssl curl gnutls-bin iproute2 qemu-system-x86 busybox-static cpio
	kmod libclang-rt-14-dev python3 zstd xz-utils
	# install_test: groff lints the man pages, systemd-analyze verifies the unit
	groff-base man-db systemd
	# make bench: the XDP limiter against an nftables meter (bench-xdp.sh)
	nftables
	# make check-valgrind: kmtlsd under memcheck (selftests/kmtlsd/valgrind.sh)
	valgrind
)

die() { echo "deps: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"

apt_updated=
apt_update() {
	local out failed
	[ -n "$apt_updated" ] && return 0
	out=$(apt-get update -qq 2>&1) || { printf '%s\n' "$out" >&2; die "apt-get update failed"; }
	# apt-get update exits 0 when a source could not be fetched ("W:
	# Failed to fetch"). Said now, and again if an install then fails: a
	# source we do not need (a third-party one) must not stop us.
	failed=$(printf '%s\n' "$out" |
		awk 'sub(/^[WE]: Failed to fetch /, "") && n++ < 3 {printf "%s%s", sep, $0; sep = "; "}')
	[ -z "$out" ] || printf '%s\n' "$out" >&2
	if [ -n "$failed" ]; then
		unreachable=" (apt sources unreachable: $failed: check the network, proxy and /etc/apt/sources.list, then run make deps again)"
		echo "deps: warning: apt sources unreachable ($failed); carrying on with the others" >&2
	fi
	apt_updated=1
}
unreachable=""


missing() {
	local p out=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || out+=("$p")
	done
	echo "${out[@]:-}"
}

install() {
	local need
	need=$(missing "$@")
	[ -z "$need" ] && return 0
	apt_update
	echo "deps: installing $need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null \
		|| die "apt-get install $need failed$unreachable"
}

# Newest version for which both the unsigned image and the headers exist.
pick_kernel() {
	local series=$1 img hdr v
	for v in $(apt-cache pkgnames "linux-headers-$series" 2>/dev/null |
		   sed -n "s/^linux-headers-\($series[.0-9-]*\(+deb[0-9]*\)\?\)-amd64$/\1/p" | sort -Vr); do
		img=linux-image-$v-amd64-unsigned
		hdr=linux-headers-$v-amd64
		if apt-cache show "$img" >/dev/null 2>&1 && apt-cache show "$hdr" >/dev/null 2>&1; then
			echo "$v"
			return 0
		fi
	done
	return 1
}

install "${PKGS[@]}"

# Kernel packages: keep an already installed pair, otherwise take the newest.
# Nothing (and status 0) when there is none: dpkg-query fails when it knows
# no such package, as on a fresh machine.
installed_kernel() {
	local pkgs v
	pkgs=$(dpkg-query -W -f='${Package} ${Status}\n' "linux-headers-$1*-amd64" 2>/dev/null) || true
	printf '%s\n' "$pkgs" | awk '/install ok installed/ {print $1}' |
		sed -n "s/^linux-headers-\(.*\)-amd64$/\1/p" |
		while read -r v; do
			if [ -f "/boot/vmlinuz-$v-amd64" ]; then echo "$v"; fi
		done | sort -V | tail -n1
}

for series in 6.12 6.1.0; do
	v=$(installed_kernel "$series")
	if [ -z "$v" ]; then
		apt_update
		v=$(pick_kernel "$series") || die "no linux-image/linux-headers pair for $series in the apt sources$unreachable"
		install "linux-image-$v-amd64-unsigned" "linux-headers-$v-amd64"
	fi
	echo "$v-amd64" > "$BUILD/kernel-${series%.0}"
done

install linux-source-6.12
"$(dirname "$0")/extract-ksrc.sh" "$BUILD"
"$(dirname "$0")/wolfssl.sh" "$BUILD"
"$(dirname "$0")/versions.sh" "$BUILD"
