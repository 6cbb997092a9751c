// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The verified-signature cache: a hit only for exactly the bytes that
 * verified before, never for a failure, and one-off signatures (a client's
 * CertificateVerify) never displace certificate signatures.
 */
#include <stdlib.h>
#include <string.h>

#include "../../agent/sigcache.h"
#include "kselftest_harness.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

struct signer {
	ecc_key key;
	unsigned char der[256];
	int der_len;
};

FIXTURE(sc) {
	WC_RNG rng;
	struct signer a, b;
	struct kmtls_sigcache *cache;
	unsigned char hash[32], sig[80];
	word32 sig_len;
};

static int make_signer(WC_RNG *rng, struct signer *s)
{
	if (wc_ecc_init(&s->key) || wc_ecc_make_key_ex(rng, 32, &s->key, ECC_SECP256R1))
		return -1;
	s->der_len = wc_EccPublicKeyToDer(&s->key, s->der, sizeof(s->der), 1);
	return s->der_len > 0 ? 0 : -1;
}

static int sign(WC_RNG *rng, struct signer *s, const unsigned char *hash,
		unsigned char *sig, word32 *len)
{
	*len = 80;
	return wc_ecc_sign_hash(hash, 32, sig, len, rng, &s->key);
}

static int check(FIXTURE_DATA(sc) *self, struct kmtls_sigcache *cache,
		 const unsigned char *sig, word32 sig_len, const struct signer *s)
{
	int result = -1, ret;

	ret = kmtls_sigcache_ecc_verify(NULL, sig, sig_len, self->hash, 32, s->der,
					s->der_len, &result, cache);
	return ret ? -1 : result;
}

FIXTURE_SETUP(sc)
{
	ASSERT_EQ(0, wc_InitRng(&self->rng));
	ASSERT_EQ(0, make_signer(&self->rng, &self->a));
	ASSERT_EQ(0, make_signer(&self->rng, &self->b));
	self->cache = calloc(1, sizeof(*self->cache));
	ASSERT_NE(NULL, self->cache);
	memset(self->hash, 0x5a, sizeof(self->hash));
	ASSERT_EQ(0, sign(&self->rng, &self->a, self->hash, self->sig, &self->sig_len));
}

FIXTURE_TEARDOWN(sc)
{
	free(self->cache);
	wc_ecc_free(&self->a.key);
	wc_ecc_free(&self->b.key);
	wc_FreeRng(&self->rng);
}

TEST_F(sc, hit_only_after_two_real_verifications)
{
	EXPECT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	EXPECT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	EXPECT_EQ(0, (int)self->cache->hits);
	EXPECT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	EXPECT_EQ(1, (int)self->cache->hits);
	EXPECT_EQ(2, (int)self->cache->misses);
}

TEST_F(sc, failures_never_cached)
{
	unsigned char bad[80];
	int i;

	memcpy(bad, self->sig, self->sig_len);
	bad[self->sig_len - 3] ^= 0x01;
	for (i = 0; i < 5; i++)
		EXPECT_NE(1, check(self, self->cache, bad, self->sig_len, &self->a));
	EXPECT_EQ(0, (int)self->cache->hits);
}

TEST_F(sc, cached_signature_under_another_key_fails)
{
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	EXPECT_NE(1, check(self, self->cache, self->sig, self->sig_len, &self->b));
}

TEST_F(sc, other_hash_with_cached_signature_fails)
{
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	self->hash[0] ^= 0xff;
	EXPECT_NE(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
}

TEST_F_TIMEOUT(sc, one_off_signatures_do_not_evict, 120)
{
	unsigned char hash0[32], sig[80];
	word32 len;
	int i;

	memcpy(hash0, self->hash, sizeof(hash0));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	/* Like CertificateVerify: a fresh transcript hash every time. */
	for (i = 0; i < 5000; i++) {
		memcpy(self->hash, &i, sizeof(i));
		ASSERT_EQ(0, sign(&self->rng, &self->b, self->hash, sig, &len));
		ASSERT_EQ(1, check(self, self->cache, sig, len, &self->b));
	}
	memcpy(self->hash, hash0, sizeof(hash0));
	self->cache->hits = 0;
	EXPECT_EQ(1, check(self, self->cache, self->sig, self->sig_len, &self->a));
	EXPECT_EQ(1, (int)self->cache->hits);
}

TEST_F(sc, no_cache_still_verifies)
{
	unsigned char bad[80];

	EXPECT_EQ(1, check(self, NULL, self->sig, self->sig_len, &self->a));
	memcpy(bad, self->sig, self->sig_len);
	bad[10] ^= 0x40;
	EXPECT_NE(1, check(self, NULL, bad, self->sig_len, &self->a));
}

TEST_HARNESS_MAIN
