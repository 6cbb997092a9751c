#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build wolfSSL from Debian's source package with x86_64 assembly (SP math,
# AES-NI, AVX) into $BUILD/wolfssl. Debian's binary libwolfssl is a portable C
# build, 5-25x slower than OpenSSL on ECC and AES-GCM; this build matches it.
set -euo pipefail

BUILD=${1:?usage: wolfssl.sh BUILD_DIR}
PREFIX=$BUILD/wolfssl
SRC=$BUILD/src
STAMP=$PREFIX/.configure-line
HERE=$(cd "$(dirname "$0")" && pwd)

# Everything kmtls relies on; kmtlsd --version prints the resulting features.
CONFIGURE=(
	--enable-static --disable-shared --with-pic
	--enable-tls13 --enable-tlsv12 --disable-oldtls
	--enable-sp=yes --enable-sp-asm --enable-sp-math-all
	--enable-aesni --enable-intelasm
	--enable-aesgcm --enable-chacha --enable-poly1305
	--enable-ecc --enable-ed25519 --enable-curve25519 --enable-rsa --enable-rsapss
	--enable-atomicuser --enable-pkcallbacks --enable-session-ticket --enable-crl --enable-ocsp
	--enable-ocspstapling --enable-ocspstapling2 --enable-certgen --enable-certreq
	--enable-certext --enable-keygen --enable-alpn --enable-sni --enable-pkcs11
	--enable-secure-renegotiation-info --enable-opensslextra --enable-supportedcurves
	--enable-hkdf --enable-harden --disable-examples --disable-crypttests
	--disable-benchmark --enable-aescbc-length-checks --disable-hashdrbg
)
# WOLFSSL_ALT_NAMES: subjectAltName in certificates we make (kmtlsctl pki);
# 5.5.4 has no configure switch for it. CUSTOM_RAND_*: random bytes come
# from getrandom(2), not a per-connection Hash_DRBG (scripts/wolfssl-getrandom.h
# says why; --disable-hashdrbg goes with it).
# WOLFSSL_TICKET_EXTRA_PADDING_SZ: room in a session ticket for the client's
# certificate, which kmtlsd seals in to re-check it on resumption
# (agent/resume.h); wolfSSL's default leaves 32 bytes.
CPPFLAGS_LIST=(
	-DHAVE_SECRET_CALLBACK -DWOLFSSL_KEYLOG_EXPORT_WARNED -DKEEP_OUR_CERT
	-DWOLFSSL_TLS13_MIDDLEBOX_COMPAT -DHAVE_EX_DATA -DWOLFSSL_ALT_CERT_CHAINS
	-DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_ALT_NAMES -DWOLFSSL_TICKET_EXTRA_PADDING_SZ=2048
	-DCUSTOM_RAND_GENERATE_BLOCK=kmtls_wolfssl_getrandom
	-DCUSTOM_RAND_GENERATE_SEED=kmtls_wolfssl_getrandom
	-include "$HERE/wolfssl-getrandom.h"
	-include "$HERE/wolfssl-sha256.h"
)
CPPFLAGS_EXTRA="${CPPFLAGS_LIST[*]}"

# Our fixes to Debian's source, applied once to the unpacked tree (each
# file says why); their checksums are part of the build's identity.
PATCHES=()
for p in "$HERE"/wolfssl-*.patch; do [ -e "$p" ] && PATCHES+=("$p"); done
want="${CONFIGURE[*]} CPPFLAGS=$CPPFLAGS_EXTRA patches=$(cat "${PATCHES[@]}" /dev/null | sha256sum | cut -c1-16)"
# make runs this whenever the script is newer than the library: one build
# at a time per BUILD, the others then find it done.
mkdir -p "$BUILD"
exec 9> "$BUILD/.wolfssl.lock"
flock 9
if [ -f "$PREFIX/lib/libwolfssl.a" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
	exit 0
fi

die() { echo "wolfssl: $*" >&2; exit 1; }

# apt-get source needs deb-src lines for the suites this machine uses.
ensure_deb_src() {
	local f=/etc/apt/sources.list.d/kmtls-deb-src.sources
	if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo "wolfssl: adding deb-src entries ($f)"
		{
			echo "Types: deb-src"
			echo "URIs: http://deb.debian.org/debian"
			echo "Suites: bookworm bookworm-updates"
			echo "Components: main"
			echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
			echo
			echo "Types: deb-src"
			echo "URIs: http://deb.debian.org/debian-security"
			echo "Suites: bookworm-security"
			echo "Components: main"
			echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
		} > "$f"
		apt-get update -qq || die "apt-get update failed after adding deb-src"
	fi
}

mkdir -p "$SRC"
dir=$(find "$SRC" -maxdepth 1 -type d -name 'wolfssl-*' | sort -V | tail -n1)
if [ -z "$dir" ]; then
	ensure_deb_src
	(cd "$SRC" && apt-get source -qq wolfssl >/dev/null) || die "apt-get source wolfssl failed"
	dir=$(find "$SRC" -maxdepth 1 -type d -name 'wolfssl-*' | sort -V | tail -n1)
fi
[ -n "$dir" ] || die "no wolfssl source tree in $SRC"

cd "$dir"
for p in "${PATCHES[@]+"${PATCHES[@]}"}"; do
	# Applied already when it reverses cleanly (a tree unpacked earlier).
	patch -p1 -R -s -f --dry-run < "$p" > /dev/null 2>&1 && continue
	patch -p1 -N -s < "$p" || die "$(basename "$p") does not apply to $(basename "$dir")"
done
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || die "autoreconf failed in $dir"
# Install beside the old build and swap at the end, so a rebuild never
# leaves other builds without headers in between.
NEW=$PREFIX.new
rm -rf "$NEW"
./configure -q --prefix="$NEW" "${CONFIGURE[@]}" CPPFLAGS="$CPPFLAGS_EXTRA" CFLAGS="-O2 -g" \
	> "$BUILD/wolfssl-configure.log" 2>&1 || die "configure failed, see $BUILD/wolfssl-configure.log"
make -s clean >/dev/null 2>&1 || true
make -s -j"$(nproc)" > "$BUILD/wolfssl-make.log" 2>&1 || die "make failed, see $BUILD/wolfssl-make.log"
make -s install > /dev/null 2>&1 || die "make install failed"
echo "$want" > "$NEW/.configure-line"
basename "$dir" > "$NEW/.source-version"
# pkg-config and libtool files name the prefix: point them at the final one.
sed -i "s|$NEW|$PREFIX|g" "$NEW"/lib/pkgconfig/*.pc "$NEW"/lib/*.la
rm -rf "$PREFIX.old"
[ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$NEW" "$PREFIX"
rm -rf "$PREFIX.old"
echo "wolfssl: built $(basename "$dir") into $PREFIX"
