/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_X25519_H
#define KMTLS_X25519_H

/*
 * The X25519 public key of a clamped private key (little endian, RFC 7748)
 * by the fixed-base comb; -1 for a key that is not clamped. Binaries that
 * link wolfSSL with $(WOLFSSL_WRAP) get it for every TLS 1.3 key share.
 */
int kmtls_x25519_public(unsigned char pub[32], const unsigned char priv[32]);

#endif
