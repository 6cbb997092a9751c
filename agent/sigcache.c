// SPDX-License-Identifier: GPL-2.0-or-later
#include <string.h>

#include "sigcache.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

static int real_verify(const unsigned char *sig, unsigned int sig_len,
		       const unsigned char *hash, unsigned int hash_len,
		       const unsigned char *der, unsigned int der_len, int *result)
{
	ecc_key key;
	word32 idx = 0;
	int ret;

	*result = 0;
	if (wc_ecc_init(&key))
		return MEMORY_E;
	ret = wc_EccPublicKeyDecode(der, &idx, &key, der_len);
	if (!ret)
		ret = wc_ecc_verify_hash(sig, sig_len, hash, hash_len, result, &key);
	wc_ecc_free(&key);
	return ret;
}

/* Lengths go in too, so no two different triples hash the same input. */
static void make_tag(const unsigned char *sig, unsigned int sig_len,
		     const unsigned char *hash, unsigned int hash_len,
		     const unsigned char *key, unsigned int key_len,
		     unsigned char tag[32])
{
	unsigned int lens[3] = { key_len, hash_len, sig_len };
	wc_Sha256 h;

	wc_InitSha256(&h);
	wc_Sha256Update(&h, (const byte *)lens, sizeof(lens));
	wc_Sha256Update(&h, key, key_len);
	wc_Sha256Update(&h, hash, hash_len);
	wc_Sha256Update(&h, sig, sig_len);
	wc_Sha256Final(&h, tag);
	wc_Sha256Free(&h);
}

static unsigned int set_of(const unsigned char tag[32])
{
	return (tag[0] | tag[1] << 8) % SIGCACHE_SETS;
}

static int lookup(const struct kmtls_sigcache *sc, const unsigned char tag[32])
{
	unsigned int s = set_of(tag), w;

	for (w = 0; w < SIGCACHE_WAYS; w++)
		if (sc->used[s][w] && !memcmp(sc->tag[s][w], tag, 32))
			return 1;
	return 0;
}

/* Second sighting of a verified triple: keep it. First: remember we saw it. */
static void admit(struct kmtls_sigcache *sc, const unsigned char tag[32])
{
	uint64_t prefix;
	unsigned int s, w, slot;

	memcpy(&prefix, tag + 8, sizeof(prefix));
	slot = prefix % SIGCACHE_SEEN;
	if (sc->seen[slot] != prefix) {
		sc->seen[slot] = prefix;
		return;
	}
	s = set_of(tag);
	w = sc->next[s]++ % SIGCACHE_WAYS;
	memcpy(sc->tag[s][w], tag, 32);
	sc->used[s][w] = 1;
}

int kmtls_sigcache_ecc_verify(WOLFSSL *ssl, const unsigned char *sig,
			      unsigned int sig_len, const unsigned char *hash,
			      unsigned int hash_len, const unsigned char *key,
			      unsigned int key_len, int *result, void *ctx)
{
	struct kmtls_sigcache *sc = ctx;
	unsigned char tag[32];
	int ret;

	(void)ssl;
	if (!sc)
		return real_verify(sig, sig_len, hash, hash_len, key, key_len, result);
	make_tag(sig, sig_len, hash, hash_len, key, key_len, tag);
	if (lookup(sc, tag)) {
		sc->hits++;
		*result = 1;
		return 0;
	}
	sc->misses++;
	ret = real_verify(sig, sig_len, hash, hash_len, key, key_len, result);
	if (!ret && *result == 1)
		admit(sc, tag);
	return ret;
}

void kmtls_sigcache_install(WOLFSSL_CTX *ctx)
{
	wolfSSL_CTX_SetEccVerifyCb(ctx, kmtls_sigcache_ecc_verify);
}

void kmtls_sigcache_bind(WOLFSSL *ssl, struct kmtls_sigcache *sc)
{
	wolfSSL_SetEccVerifyCtx(ssl, sc);
}
