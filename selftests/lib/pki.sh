# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The test PKI of selftests/lib/mkpki.sh for shell selftests, sourced after
# env.sh ($PKI_SRC: the shared one) and procs.sh ($TMP). setup_pki and
# pki_ensure set PKI; pki_handshake uses it.

# pki_complete DIR: mkpki.sh finished there, with every file the tests use.
pki_complete() {
	[ -s "$1/.complete" ] && [ -s "$1/ca.pem" ] && [ -s "$1/client.pem" ] &&
		[ -s "$1/client.key" ] && [ -s "$1/server.key" ] && [ -s "$1/crl.pem" ] &&
		[ -s "$1/bad/otherca.pem" ] && [ -s "$1/bad/policy.pem" ]
}

# The chains must still verify in a copy: a PKI rebuilt while it was
# copied would mix two roots.
pki_consistent() {
	openssl verify -CAfile "$1/ca.pem" -untrusted "$1/intermediate.pem" \
		"$1/server.pem" "$1/client.pem" > /dev/null 2>&1
}

# setup_pki: PKI=$TMP/pki, a private copy of $PKI_SRC: other test runs may
# rebuild the shared one (mkpki.sh replaces it when its version changes)
# while this one runs. None usable: a private one is made (the shared path
# may be read-only).
setup_pki() {
	local i
	PKI=$TMP/pki
	for ((i = 0; i < 5; i++)); do
		if pki_complete "$PKI_SRC"; then
			rm -rf "$PKI"
			cp -a "$PKI_SRC/." "$PKI" 2>/dev/null &&
				pki_complete "$PKI" && pki_consistent "$PKI" && return 0
		fi
		sleep 1
	done
	rm -rf "$PKI"
	"$TOP/selftests/lib/mkpki.sh" "$PKI" > "$TMP/mkpki.log" 2>&1 && pki_consistent "$PKI"
}

# pki_ensure: PKI=$PKI_SRC when it has a client chain, else a private one
# made in $TMP/pki (mkpki.sh's output in $TMP/mkpki.log).
pki_ensure() {
	PKI=$PKI_SRC
	[ -s "$PKI/client.pem" ] && [ -s "$PKI/intermediate.pem" ] && return 0
	PKI=$TMP/pki
	"$TOP/selftests/lib/mkpki.sh" "$PKI" > "$TMP/mkpki.log" 2>&1
}

# pki_handshake NS HOST:PORT OUT: one mTLS handshake as the test client (its
# chain sent along) by openssl s_client in network namespace NS, its output
# in OUT. 0 when the connection was established.
pki_handshake() {
	timeout 20 ip netns exec "$1" openssl s_client -connect "$2" \
		-cert "$PKI/client.pem" -key "$PKI/client.key" \
		-cert_chain "$PKI/intermediate.pem" -CAfile "$PKI/ca.pem" \
		-verify_return_error -brief -no_ign_eof < /dev/null > "$3" 2>&1 &&
		grep -q 'CONNECTION ESTABLISHED' "$3"
}
