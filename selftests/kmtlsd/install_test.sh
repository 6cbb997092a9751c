#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make install / make uninstall into a staging directory (DESTDIR): the
# tree has every file with its mode, the unit names the installed paths
# and passes `systemd-analyze verify` (finding the binaries and the man
# pages it documents), every man page renders without a groff warning, the
# sysctl.d knobs are the module's, PREFIX=/usr moves everything, an
# application builds against the installed libkmtls with pkg-config, and
# uninstall leaves no file behind. Installs what is built (never builds).
# Prints KTAP.
#
#   KMTLS_OUT  build output with bin/kmtlsd and bin/kmtlsctl (default:
#              <repo>/build/out)
set -uo pipefail

export LC_ALL=C.UTF-8
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$(realpath -m "${KMTLS_OUT:-$TOP/build/out}")

# shellcheck source=../lib/ktap.sh
. "$(dirname "$0")/../lib/ktap.sh"

TMP=$(mktemp -d /tmp/kmtls-install.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
D=$TMP/root
MANS="man8/kmtlsd.8 man8/kmtlsctl.8 man5/kmtlsd.conf.5"

ktap_plan 10

# make install/uninstall with what is built: -o keeps make from rebuilding.
mk() {
	make -C "$TOP" --no-print-directory O="$OUT" \
		-o "$OUT/bin/kmtlsd" -o "$OUT/bin/kmtlsctl" -o "$OUT/lib/libkmtls.a" "$@"
}

# 1: install into DESTDIR with the default PREFIX.
if log=$(mk install DESTDIR="$D" 2>&1); then ok "make_install_destdir"
else not_ok "make_install_destdir" "$log"; fi

# 2: every file, with its mode.
missing=
while read -r mode path; do
	if [ ! -f "$D$path" ]; then
		missing+="missing $path"$'\n'
	elif [ "$(stat -c %a "$D$path")" != "$mode" ]; then
		missing+="$path is $(stat -c %a "$D$path"), want $mode"$'\n'
	fi
done <<EOF
755 /usr/local/sbin/kmtlsd
755 /usr/local/bin/kmtlsctl
644 /usr/local/share/man/man8/kmtlsd.8
644 /usr/local/share/man/man8/kmtlsctl.8
644 /usr/local/share/man/man5/kmtlsd.conf.5
644 /etc/kmtls/kmtlsd.conf.example
644 /usr/local/lib/systemd/system/kmtlsd.service
644 /usr/local/lib/modules-load.d/kmtls.conf
644 /usr/local/lib/sysctl.d/90-kmtls.conf
644 /usr/local/lib/libkmtls.a
644 /usr/local/include/kmtls.h
644 /usr/local/include/linux/kmtls.h
644 /usr/local/lib/pkgconfig/kmtls.pc
EOF
[ -x "$OUT/bin/kmtls-bench" ] && [ ! -x "$D/usr/local/bin/kmtls-bench" ] &&
	missing+="kmtls-bench is built but not installed"$'\n'
if [ -z "$missing" ] && "$D/usr/local/sbin/kmtlsd" --version > /dev/null &&
   "$D/usr/local/bin/kmtlsctl" --help > /dev/null; then
	ok "tree_and_modes"
else
	not_ok "tree_and_modes" "$missing"
fi

# 3: the unit names the installed kmtlsd and config, Type=notify, watchdog.
UNIT=$D/usr/local/lib/systemd/system/kmtlsd.service
bad=
grep -q '@' "$UNIT" && bad+="placeholder left: $(grep '@' "$UNIT")"$'\n'
for want in '^Type=notify$' '^ExecStart=/usr/local/sbin/kmtlsd -c /etc/kmtls/kmtlsd.conf$' \
	    '^ExecReload=/bin/kill -HUP \$MAINPID$' '^WatchdogSec=' '^LimitNOFILE=' \
	    '^NoNewPrivileges=yes$'; do
	grep -q "$want" "$UNIT" || bad+="no line $want"$'\n'
done
if [ -z "$bad" ]; then ok "unit_paths_and_notify"; else not_ok "unit_paths_and_notify" "$bad"; fi

# 4: systemd-analyze verify on a copy whose binaries point into DESTDIR,
# with MANPATH on the staged pages (Documentation= is checked too).
if ! command -v systemd-analyze > /dev/null; then
	skip "systemd_analyze_verify" "no systemd-analyze"
else
	sed "s|=/usr/local/sbin/|=$D/usr/local/sbin/|g" "$UNIT" > "$TMP/kmtlsd.service"
	if log=$(MANPATH=$D/usr/local/share/man systemd-analyze verify "$TMP/kmtlsd.service" 2>&1) &&
	   [ -z "$log" ]; then
		ok "systemd_analyze_verify"
	else
		not_ok "systemd_analyze_verify" "$log"
	fi
fi

# 5: man pages: no groff warning at all, and man renders each one.
bad=
for m in $MANS; do
	w=$(groff -ww -z -man "$D/usr/local/share/man/$m" 2>&1)
	[ -n "$w" ] && bad+="$m: $w"$'\n'
	if command -v man > /dev/null; then
		r=$(MANWIDTH=80 man -l "$D/usr/local/share/man/$m" 2>&1 > "$TMP/page.txt")
		[ -n "$r" ] && bad+="$m (man): $r"$'\n'
		grep -q '^NAME' "$TMP/page.txt" || bad+="$m: no NAME section"$'\n'
	fi
done
if [ -z "$bad" ]; then ok "man_pages_render_clean"; else not_ok "man_pages_render_clean" "$bad"; fi

# 6: the sysctl.d knobs of kmtls.ko are the module's, with its defaults.
bad=
while read -r key val; do
	name=${key#net.kmtls.}
	grep -q "\.procname[[:space:]]*= \"$name\"" "$TOP/kmod/sysctl.c" ||
		bad+="$key is not a sysctl of kmod/sysctl.c"$'\n'
	def=$(grep -E "^#define KMTLS_${name^^}_DEFAULT" "$TOP/kmod/kmtls.h" | awk '{print $3}')
	[ "$def" = "$val" ] || bad+="$key = $val, the module's default is $def"$'\n'
done < <(sed -n 's/^#\(net\.kmtls\.[a-z_]*\) = \([0-9]*\)$/\1 \2/p' \
	 "$D/usr/local/lib/sysctl.d/90-kmtls.conf")
n=$(grep -c '^#net\.kmtls\.' "$D/usr/local/lib/sysctl.d/90-kmtls.conf")
[ "$n" -ge 3 ] || bad+="only $n net.kmtls knobs"$'\n'
grep -qE '^[^#[:space:]]' "$D/usr/local/lib/sysctl.d/90-kmtls.conf" &&
	bad+="a setting is active by default"$'\n'
if [ -z "$bad" ]; then ok "sysctl_snippet_matches_module"; else not_ok "sysctl_snippet_matches_module" "$bad"; fi

# 7: the example config loads with kmtlsd's parser.
if log=$("$D/usr/local/bin/kmtlsctl" --json tune -c "$D/etc/kmtls/kmtlsd.conf.example" 2>&1 >/dev/null;
	 [ $? -le 1 ]); then
	ok "example_config_parses"
else
	not_ok "example_config_parses" "$log"
fi

# 8: PREFIX=/usr puts the unit in /usr/lib/systemd/system, naming /usr/sbin.
if log=$(mk install DESTDIR="$TMP/usr-root" PREFIX=/usr 2>&1) &&
   grep -q '^ExecStart=/usr/sbin/kmtlsd ' "$TMP/usr-root/usr/lib/systemd/system/kmtlsd.service" &&
   [ -x "$TMP/usr-root/usr/sbin/kmtlsd" ] && [ -f "$TMP/usr-root/usr/share/man/man8/kmtlsd.8" ]; then
	ok "prefix_usr"
else
	not_ok "prefix_usr" "$log"
fi

# 9: an application builds with nothing but the installed header, ABI
# header and library, found by pkg-config, and the library answers.
cat > "$TMP/app.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <kmtls.h>

int main(void)
{
	struct kmtls_opts o = { .profile = "default" };

	printf("%s %s %d %s\n", kmtls_version_name(0x0304),
	       kmtls_cipher_name(0x1301), KMTLS_PEER_SAN_MAX > 0 && o.timeout_ms == 0,
	       strstr(kmtls_strerror(-ENOENT), "modprobe kmtls") ? "hint" : "none");
	return 0;
}
EOF
pc() {
	PKG_CONFIG_LIBDIR=$D/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D \
		pkg-config "$@" kmtls
}
want_version=$(sed -n 's/^#define KMTLS_VERSION "\(.*\)"/\1/p' "$TOP/agent/version.h")
out=
if ! command -v pkg-config > /dev/null; then
	skip "app_builds_with_pkg_config" "no pkg-config"
elif log=$(gcc -std=c99 -Wall -Wextra -Werror $(pc --cflags) -o "$TMP/app" "$TMP/app.c" \
	       $(pc --libs) 2>&1) &&
     out=$("$TMP/app") && [ "$out" = "TLSv1.3 TLS_AES_128_GCM_SHA256 1 hint" ] &&
     [ "$(pc --modversion)" = "$want_version" ]; then
	ok "app_builds_with_pkg_config"
else
	not_ok "app_builds_with_pkg_config" "$log $out (version $(pc --modversion), want $want_version)"
fi

# 10: uninstall leaves no file, link or kmtls directory behind.
log=$(mk uninstall DESTDIR="$D" 2>&1)
left=$(find "$D" ! -type d; find "$D" -type d -name 'kmtls*')
if [ -z "$left" ]; then ok "uninstall_leaves_nothing"
else not_ok "uninstall_leaves_nothing" "$left"$'\n'"$log"; fi

ktap_exit
