#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The cases run through run_case:
# shellcheck disable=SC2317
#
# scripts/deps.sh and scripts/extract-ksrc.sh on machines they have not seen:
# no kernel headers known to dpkg, headers without their /boot image, apt
# sources that cannot be reached, no linux-source tarball. deps.sh runs from
# a copy next to stub extract-ksrc.sh, wolfssl.sh and versions.sh, with
# stubs for id, dpkg-query, apt-get and apt-cache first in PATH; nothing is
# installed. extract-ksrc.sh runs from a copy that looks in a temporary
# directory instead of /usr/src. Prints KTAP.
set -uo pipefail

# shellcheck source=../lib/shlib.sh
. "$(dirname "$0")/../lib/shlib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmtls-deps-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
STATE=$TMP/state
STUBS=$TMP/bin

# The apt sources the stubs pretend to have: the newest pair of each series.
NEW612=6.12.38+deb12
NEW61=6.1.0-37

make_stubs() {
	mkdir -p "$STUBS" "$TMP/scripts"
	cp "$TOP/scripts/deps.sh" "$TMP/scripts/"
	for s in extract-ksrc.sh wolfssl.sh versions.sh; do
		printf '#!/bin/sh\necho %s >> "%s/ran"\n' "$s" "$STATE" > "$TMP/scripts/$s"
	done
	# shellcheck disable=SC2016 # the stub's own $1 and $@
	printf '#!/bin/sh\n[ "$1" = -u ] && { echo 0; exit 0; }\nexec /usr/bin/id "$@"\n' > "$STUBS/id"

	# dpkg-query -W -f=FORMAT PATTERN: what $STATE/installed lists; every
	# package whose name does not start with linux- counts as installed.
	cat > "$STUBS/dpkg-query" <<-EOF
	#!/bin/bash
	fmt=\${2#-f=} pat=\$3 found=
	if [[ \$pat == *'*'* ]]; then
		names=\$(cat "$STATE/installed")
	elif [[ \$pat != linux-* ]] || grep -qx "\$pat" "$STATE/installed"; then
		names=\$pat
	fi
	for p in \${names:-}; do
		# shellcheck disable=SC2053 # a glob, as dpkg-query takes it
		[[ \$p == \$pat ]] || continue
		found=1
		if [[ \$fmt == *Package* ]]; then echo "\$p install ok installed"; else echo "install ok installed"; fi
	done
	[ -n "\$found" ] || { echo "dpkg-query: no packages found matching \$pat" >&2; exit 1; }
	EOF

	cat > "$STUBS/apt-get" <<-EOF
	#!/bin/bash
	echo "apt-get \$*" >> "$STATE/apt.log"
	case " \$* " in
	*" update "*)
		if [ -e "$STATE/unreachable" ]; then
			echo "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not connect to deb.debian.org:80 (151.101.2.132), connection timed out" >&2
			echo "W: Some index files failed to download. They have been ignored, or old ones used instead." >&2
		fi
		exit 0 ;;
	*" install "*)
		for p in "\$@"; do
			case \$p in -*|install) ;; *) echo "\$p" >> "$STATE/installed" ;; esac
		done ;;
	esac
	EOF

	cat > "$STUBS/apt-cache" <<-EOF
	#!/bin/bash
	case \$1 in
	pkgnames)
		printf '%s\n' linux-headers-$NEW612-amd64 linux-headers-$NEW612-common \
			linux-headers-6.12.30+deb12-amd64 linux-headers-$NEW61-amd64 \
			linux-headers-$NEW61-common linux-headers-6.1.0-30-amd64 | grep "^\$2" ;;
	show) exit 0 ;;
	esac
	EOF
	chmod +x "$STUBS"/* "$TMP/scripts"/*
}

# run_deps INSTALLED...: deps.sh with those linux-* packages installed.
run_deps() {
	rm -rf "$STATE" "$TMP/build"
	mkdir -p "$STATE"
	printf '%s\n' "$@" > "$STATE/installed"
	[ -n "${UNREACHABLE:-}" ] && : > "$STATE/unreachable"
	PATH=$STUBS:$PATH BUILD=$TMP/build timeout 20 "$TMP/scripts/deps.sh" > "$TMP/out" 2>&1
	DEPS_RC=$?
}

deps_said() {
	echo "deps.sh exit status $DEPS_RC, said:"
	sed 's/^/  /' "$TMP/out"
	echo "apt-get calls:"
	sed 's/^/  /' "$STATE/apt.log" 2>/dev/null
}

# expect_kernels V612 V61: deps.sh ended well and recorded those releases.
expect_kernels() {
	local bad=
	[ "$DEPS_RC" = 0 ] || bad=1
	expect_eq "build/kernel-6.12" "$(cat "$TMP/build/kernel-6.12" 2>/dev/null)" "$1-amd64" || bad=1
	expect_eq "build/kernel-6.1" "$(cat "$TMP/build/kernel-6.1" 2>/dev/null)" "$2-amd64" || bad=1
	grep -qx versions.sh "$STATE/ran" 2>/dev/null || { echo "deps.sh stopped before versions.sh"; bad=1; }
	[ -z "$bad" ] || { deps_said; return 1; }
}

case_fresh() {
	run_deps
	expect_kernels "$NEW612" "$NEW61" || return 1
	grep -q "install .*linux-image-$NEW612-amd64-unsigned linux-headers-$NEW612-amd64" "$STATE/apt.log" ||
		{ echo "the 6.12 pair was not installed"; deps_said; return 1; }
}

# Headers whose image is not in /boot do not count as an installed kernel.
case_headers_without_image() {
	run_deps linux-headers-6.12.999+deb12-amd64 linux-headers-6.1.0-999-amd64
	expect_kernels "$NEW612" "$NEW61"
}

# An installed pair is kept, even when newer headers without an image are
# listed after it. Needs the pair deps.sh installed on this machine.
case_keeps_installed() {
	local img v
	img=$(printf '%s\n' /boot/vmlinuz-6.12*-amd64 | sort -V | tail -n1)
	if [ ! -f "$img" ]; then
		# shellcheck disable=SC2034 # read by run_case (ktap.sh)
		SKIP="no /boot/vmlinuz-6.12*-amd64 on this machine (make deps)"
		return 0
	fi
	v=${img#/boot/vmlinuz-}
	v=${v%-amd64}
	run_deps "linux-headers-$v-amd64" linux-headers-6.12.999+deb12-amd64
	expect_kernels "$v" "$NEW61" || return 1
	if grep -q "install .*linux-image-6.12" "$STATE/apt.log"; then
		echo "a 6.12 kernel was installed although $v is"
		deps_said
		return 1
	fi
}

# An unreachable source is said at once; deps carries on (a source it does
# not need must not stop it), so with the stub's installs succeeding it ends well.
case_unreachable() {
	UNREACHABLE=1 run_deps
	if [ "$DEPS_RC" != 0 ] || ! grep -q "apt sources unreachable (.*deb.debian.org" "$TMP/out"; then
		echo "want a warning that says the apt sources are unreachable, and deps to carry on"
		deps_said
		return 1
	fi
}

# extract-ksrc.sh with /usr/src replaced by $TMP/src.
run_extract() {
	sed "s|/usr/src/|$TMP/src/|g" "$TOP/scripts/extract-ksrc.sh" > "$TMP/extract-ksrc.sh"
	bash "$TMP/extract-ksrc.sh" "$TMP/xbuild" > "$TMP/xout" 2>&1
	XRC=$?
}

case_no_tarball() {
	rm -rf "$TMP/src" "$TMP/xbuild"
	mkdir -p "$TMP/src"
	run_extract
	if [ "$XRC" != 1 ] || ! grep -q "apt-get install linux-source-6.12" "$TMP/xout"; then
		echo "exit status $XRC, want 1 and the package to install; said:"
		cat "$TMP/xout"
		return 1
	fi
}

case_tarball() {
	local d=$TMP/tree/linux-source-6.12 f
	rm -rf "$TMP/src" "$TMP/xbuild" "$TMP/tree"
	mkdir -p "$TMP/src" "$d/tools/testing/selftests" "$d/scripts"
	for f in tools/testing/selftests/kselftest_harness.h tools/testing/selftests/kselftest.h \
		 scripts/checkpatch.pl scripts/spelling.txt scripts/const_structs.checkpatch; do
		echo "$f" > "$d/$f"
	done
	tar -C "$TMP/tree" -cJf "$TMP/src/linux-source-6.12.tar.xz" linux-source-6.12
	run_extract
	if [ "$XRC" != 0 ] || [ "$(cat "$TMP/xbuild/ksrc/scripts/checkpatch.pl" 2>/dev/null)" != scripts/checkpatch.pl ]; then
		echo "exit status $XRC, checkpatch.pl not extracted; said:"
		cat "$TMP/xout"
		return 1
	fi
}

# in_diag FUNC: FUNC's output is the case's diagnostics.
in_diag() { "$@" >> "$DIAG" 2>&1; }

DIAG=$TMP/diag
make_stubs
ktap_plan 6
run_case "deps: a fresh machine gets the newest 6.12 and 6.1 pairs" in_diag case_fresh
run_case "deps: headers without their /boot image are not an installed kernel" in_diag case_headers_without_image
run_case "deps: an installed pair is kept" in_diag case_keeps_installed
run_case "deps: unreachable apt sources are said, and deps carries on" in_diag case_unreachable
run_case "extract-ksrc: no linux-source tarball: says which package to install" in_diag case_no_tarball
run_case "extract-ksrc: takes the files from the tarball" in_diag case_tarball
ktap_exit
