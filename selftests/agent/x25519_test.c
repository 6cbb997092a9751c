// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fixed-base X25519 keygen (agent/x25519.c) against wolfSSL's ladder:
 * RFC 7748's vectors, thousands of random keys, agreement between a key
 * made by the wrapper and one made by the ladder, and unclamped keys left
 * to the ladder.
 */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/random.h>

#include "../../agent/x25519.h"
#include "kselftest_harness.h"

static void unhex(unsigned char *out, const char *hex)
{
	for (int i = 0; i < 32; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

FIXTURE(x) {
	WC_RNG rng;
};

FIXTURE_SETUP(x)
{
	ASSERT_EQ(0, wc_InitRng(&self->rng));
}

FIXTURE_TEARDOWN(x)
{
	wc_FreeRng(&self->rng);
}

/* RFC 7748 section 6.1: Alice's and Bob's key pairs. */
TEST_F(x, rfc7748_vectors)
{
	static const char *const v[][2] = {
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" },
		{ "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		  "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" },
	};
	unsigned char priv[32], want[32], pub[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unhex(priv, v[i][0]);
		unhex(want, v[i][1]);
		/* The vectors give raw scalars; X25519 clamps before use. */
		priv[0] &= 248;
		priv[31] = (priv[31] & 127) | 64;
		ASSERT_EQ(0, kmtls_x25519_public(pub, priv));
		EXPECT_EQ(0, memcmp(pub, want, 32));
	}
}

TEST_F(x, random_keys_match_the_ladder)
{
	unsigned char priv[32], fast[32], ladder[32];

	for (int i = 0; i < 5000; i++) {
		ASSERT_EQ(0, wc_curve25519_make_priv(&self->rng, 32, priv));
		ASSERT_EQ(0, kmtls_x25519_public(fast, priv));
		ASSERT_EQ(0, wc_curve25519_make_pub(32, ladder, 32, priv));
		ASSERT_EQ(0, memcmp(fast, ladder, 32)) {
			TH_LOG("key %d differs", i);
		}
	}
}

/* The wrapped make_key (what TLS 1.3 key shares call) agrees with the ladder. */
TEST_F(x, wrapped_keygen_agrees)
{
	curve25519_key a, b;
	unsigned char s1[32], s2[32], check[32];
	word32 l1 = sizeof(s1), l2 = sizeof(s2);

	for (int i = 0; i < 200; i++) {
		ASSERT_EQ(0, wc_curve25519_init(&a));
		ASSERT_EQ(0, wc_curve25519_init(&b));
		ASSERT_EQ(0, wc_curve25519_make_key(&self->rng, 32, &a));
		ASSERT_EQ(1, (int)a.pubSet);
		ASSERT_EQ(1, (int)a.privSet);
		ASSERT_EQ(0, wc_curve25519_make_pub(32, check, 32, a.k));
		ASSERT_EQ(0, memcmp(check, a.p.point, 32));
		ASSERT_EQ(0, wc_curve25519_make_key(&self->rng, 32, &b));
		l1 = l2 = 32;
		ASSERT_EQ(0, wc_curve25519_shared_secret(&a, &b, s1, &l1));
		ASSERT_EQ(0, wc_curve25519_shared_secret(&b, &a, s2, &l2));
		ASSERT_EQ(l1, l2);
		ASSERT_EQ(0, memcmp(s1, s2, l1));
		wc_curve25519_free(&a);
		wc_curve25519_free(&b);
	}
}

TEST_F(x, unclamped_keys_are_refused)
{
	unsigned char priv[32], pub[32];

	ASSERT_EQ(0, wc_curve25519_make_priv(&self->rng, 32, priv));
	priv[0] |= 1;
	EXPECT_EQ(-1, kmtls_x25519_public(pub, priv));
	priv[0] &= 248;
	priv[31] |= 0x80;
	EXPECT_EQ(-1, kmtls_x25519_public(pub, priv));
	priv[31] &= 0x3f;
	EXPECT_EQ(-1, kmtls_x25519_public(pub, priv));
}

TEST_HARNESS_MAIN
