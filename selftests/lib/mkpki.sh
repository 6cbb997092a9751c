#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Test PKI for the selftests and the demo: ECDSA P-256 root -> intermediate ->
# leaves, plus the broken certificates the negative tests need. Idempotent:
# an existing directory with a complete set is kept.
#
#   mkpki.sh DIR
#
# DIR/ca.pem            root CA (trust anchor for both sides)
# DIR/server.{pem,key}  leaf + intermediate chain, serverAuth, DNS localhost
# DIR/client.{pem,key}  leaf + intermediate chain, clientAuth,
#                       URI spiffe://example.org/client, CN client
# DIR/crl.pem, crl.der  the intermediate's CRL revoking bad/revoked
# DIR/crl-empty.pem     the intermediate's earlier CRL, revoking nothing
# DIR/bad/*             expired, notyet, revoked (+ crl.pem), serveronly,
#                       selfsigned, otherca, nointer, policy, badsig (the
#                       client's certificate with a corrupted signature),
#                       nulsan (a URI SAN with a NUL byte inside: an allowed
#                       prefix, then more)
set -euo pipefail

DIR=${1:?usage: mkpki.sh DIR}
# Bump when the set of files changes, so old directories are rebuilt.
PKI_VERSION=5
[ "$(cat "$DIR/.complete" 2>/dev/null)" = "$PKI_VERSION" ] && exit 0
rm -rf "$DIR"
mkdir -p "$DIR/work" "$DIR/bad"
cd "$DIR"

CURVE=${KMTLS_PKI_CURVE:-prime256v1}

key() {
	case "$2" in
	rsa*) openssl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa}" -out "$1" ;;
	ed25519) openssl genpkey -quiet -algorithm ED25519 -out "$1" ;;
	*) openssl genpkey -quiet -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$1" ;;
	esac
	chmod 600 "$1"
}

# A minimal `openssl ca` setup per issuer, so validity windows and CRLs work.
ca_init() {
	local name=$1
	mkdir -p "work/$name/new"
	: > "work/$name/index.txt"
	printf '1000\n' > "work/$name/serial"
	printf '1000\n' > "work/$name/crlnumber"
	cat > "work/$name/ca.cnf" <<CNF
[ ca ]
default_ca = this
[ this ]
dir = $PWD/work/$name
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $PWD/work/$name.pem
private_key = $PWD/work/$name.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
organizationName = optional
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://example.org/client, DNS:client.example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ policy ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://other.org/intruder, DNS:intruder.other.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ nulsan ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
# subjectAltName, raw: URI "spiffe://example.org/client" NUL ".evil"
2.5.29.17 = DER:302386217370696666653a2f2f6578616d706c652e6f72672f636c69656e74002e6576696c
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
}

# sign NAME ISSUER EXT CN [START END]: key NAME.key, certificate NAME.pem
sign() {
	local name=$1 issuer=$2 ext=$3 cn=$4 start=${5:-} end=${6:-}
	local dates=()
	[ -n "$start" ] && dates=(-startdate "$start" -enddate "$end")
	key "$name.key" "$CURVE"
	openssl req -new -key "$name.key" -subj "/O=kmtls test/CN=$cn" -out "work/$(basename "$name").csr"
	openssl ca -batch -notext -config "work/$issuer/ca.cnf" -extensions "$ext" \
		"${dates[@]}" -in "work/$(basename "$name").csr" -out "$name.pem" 2>/dev/null
}

selfsigned_ca() {
	local name=$1 cn=$2
	key "work/$name.key" "$CURVE"
	openssl req -new -x509 -key "work/$name.key" -subj "/O=kmtls test/CN=$cn" -days 3650 \
		-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "work/$name.pem"
	ca_init "$name"
}

selfsigned_ca root "kmtls test root"
selfsigned_ca other "kmtls unknown root"

# Intermediate, signed by root.
ca_init inter
key work/inter.key "$CURVE"
openssl req -new -key work/inter.key -subj "/O=kmtls test/CN=kmtls test intermediate" -out work/inter.csr
openssl ca -batch -notext -config work/root/ca.cnf -extensions v3_ca -in work/inter.csr -out work/inter.pem 2>/dev/null

cp work/root.pem ca.pem
cp work/inter.pem intermediate.pem

leaf() {  # leaf NAME EXT CN [START END]: NAME.pem is leaf + intermediate
	sign "$1" inter "$2" "$3" "${4:-}" "${5:-}"
	cat work/inter.pem >> "$1.pem"
}

leaf server server localhost
leaf client client client
leaf bad/expired client expired-client 20200101000000Z 20210101000000Z
leaf bad/notyet client notyet-client 20990101000000Z 21000101000000Z
leaf bad/revoked client revoked-client
leaf bad/serveronly server serveronly-client
leaf bad/policy policy intruder
leaf bad/nulsan nulsan nulsan-client
# Without the intermediate the chain cannot be built from the root.
sign bad/nointer inter client nointer-client
sign bad/otherca other client otherca-client
key bad/selfsigned.key "$CURVE"
openssl req -new -x509 -key bad/selfsigned.key -subj "/O=kmtls test/CN=selfsigned-client" -days 3650 \
	-addext "extendedKeyUsage=clientAuth" -out bad/selfsigned.pem

# Before the revocation: the same issuer's CRL, listing nothing.
openssl ca -gencrl -config work/inter/ca.cnf -out crl-empty.pem 2>/dev/null
openssl ca -config work/inter/ca.cnf -revoke bad/revoked.pem 2>/dev/null
openssl ca -gencrl -config work/inter/ca.cnf -out crl.pem 2>/dev/null
# A CRL from the root too, so a CA bundle check finds a CRL for each issuer.
openssl ca -gencrl -config work/root/ca.cnf -out crl-root.pem 2>/dev/null

openssl crl -in crl.pem -outform DER -out crl.der

# The good client's certificate with one bit of its signature flipped: same
# subject, key and issuer, so only the signature check can refuse it.
openssl x509 -in client.pem -outform DER -out work/client.der
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-1] ^= 1; open(sys.argv[2], "wb").write(d)' \
	work/client.der work/badsig.der
openssl x509 -inform DER -in work/badsig.der -out bad/badsig.pem
cat work/inter.pem >> bad/badsig.pem
cp client.key bad/badsig.key

echo "$PKI_VERSION" > .complete
