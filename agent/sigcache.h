/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SIGCACHE_H
#define KMTLS_SIGCACHE_H

#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/*
 * A per-worker cache of ECDSA signatures that verified. wolfSSL 5.5.4
 * re-verifies the client's intermediate (signed by the root) and the
 * client's leaf (signed by the intermediate) on every full handshake,
 * although the bytes, the key and so the answer are the same each time a
 * client reconnects: two of the three verifies of a full mTLS handshake.
 *
 * The cache holds SHA-256(key || digest || signature) of verifications that
 * succeeded, so a hit stands for a previous full verification of exactly
 * those bytes; failures are never cached. The client's CertificateVerify is
 * different every time and so is always verified for real: the proof of
 * possession of the key is never skipped. Entries are admitted only when
 * the same triple is seen a second time, so one-off CertificateVerify
 * signatures never evict certificate signatures. Expiry, revocation, key
 * usage and policy are checked on every handshake as before.
 */
#define SIGCACHE_SETS 1024
#define SIGCACHE_WAYS 4
#define SIGCACHE_SEEN 4096

struct kmtls_sigcache {
	unsigned char tag[SIGCACHE_SETS][SIGCACHE_WAYS][32];
	uint8_t used[SIGCACHE_SETS][SIGCACHE_WAYS];
	uint8_t next[SIGCACHE_SETS];	/* round-robin victim per set */
	uint64_t seen[SIGCACHE_SEEN];	/* first sightings, by tag prefix */
	uint64_t hits, misses;
};

/* Verify every ECDSA signature of @ctx's handshakes through the cache. */
void kmtls_sigcache_install(WOLFSSL_CTX *ctx);

/* Per connection: the worker's cache (NULL: verify without caching). */
void kmtls_sigcache_bind(WOLFSSL *ssl, struct kmtls_sigcache *sc);

/* The callback itself, exposed for tests. */
int kmtls_sigcache_ecc_verify(WOLFSSL *ssl, const unsigned char *sig,
			      unsigned int sig_len, const unsigned char *hash,
			      unsigned int hash_len, const unsigned char *key,
			      unsigned int key_len, int *result, void *ctx);

#endif
