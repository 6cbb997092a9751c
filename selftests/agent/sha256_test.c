// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wolfSSL's SHA-256 with kmtls's SHA-NI blocks (agent/sha256_shani.c):
 * FIPS 180-2's vectors through wolfSSL's API (so through the renamed block
 * functions), the SHA-NI rounds against wolfSSL's AVX2 assembly on random
 * states and blocks, messages fed in random pieces against one-shot
 * hashing, HMAC-SHA256 against RFC 4231, and that the rename is in effect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../../agent/sha256_shani.h"
#include "kselftest_harness.h"

static void unhex(unsigned char *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

static void sha256(const unsigned char *m, size_t len, unsigned char out[32])
{
	wc_Sha256 s;

	wc_InitSha256(&s);
	wc_Sha256Update(&s, m, (word32)len);
	wc_Sha256Final(&s, out);
	wc_Sha256Free(&s);
}

/* FIPS 180-2 appendix B and the usual empty and long-message vectors. */
TEST(fips180_vectors)
{
	static const struct {
		const char *msg;
		size_t repeat;
		const char *digest;
	} v[] = {
		{ "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "a", 1000000,
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
	};
	unsigned char want[32], got[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].msg), total = n * v[i].repeat;
		unsigned char *m = malloc(total + 1);

		ASSERT_NE(NULL, m);
		for (size_t r = 0; r < v[i].repeat; r++)
			memcpy(m + r * n, v[i].msg, n);
		unhex(want, v[i].digest, 32);
		sha256(m, total, got);
		free(m);
		EXPECT_EQ(0, memcmp(got, want, 32)) TH_LOG("vector %zu", i);
	}
}

/* Both block paths from the same random state and block: the same state. */
TEST(shani_matches_avx2)
{
	unsigned char block[64];
	wc_Sha256 a, b;
	WC_RNG rng;

	if (!kmtls_sha256_shani_available())
		SKIP(return, "this CPU has no SHA-NI (or KMTLS_NO_SHANI is set)");
	ASSERT_EQ(0, wc_InitRng(&rng));
	for (int i = 0; i < 20000; i++) {
		wc_InitSha256(&a);
		ASSERT_EQ(0, wc_RNG_GenerateBlock(&rng, (byte *)a.digest, sizeof(a.digest)));
		ASSERT_EQ(0, wc_RNG_GenerateBlock(&rng, block, sizeof(block)));
		/* wolfSSL's single-block assembly reads the block from ->buffer. */
		memcpy(a.buffer, block, sizeof(block));
		b = a;
		ASSERT_EQ(0, kmtls_sha256_block_avx2(&a, (const byte *)a.buffer));
		kmtls_sha256_block_shani(&b, (const byte *)b.buffer);
		ASSERT_EQ(0, memcmp(a.digest, b.digest, sizeof(a.digest))) TH_LOG("round %d", i);
	}
	wc_FreeRng(&rng);
}

/* wolfSSL's buffering around the block functions: any split, any length. */
TEST(pieces_match_one_shot)
{
	static unsigned char m[4096];
	unsigned char one[32], pieces[32];
	WC_RNG rng;
	wc_Sha256 s;

	ASSERT_EQ(0, wc_InitRng(&rng));
	ASSERT_EQ(0, wc_RNG_GenerateBlock(&rng, m, sizeof(m)));
	for (int i = 0; i < 2000; i++) {
		word32 len, off = 0, cut;

		ASSERT_EQ(0, wc_RNG_GenerateBlock(&rng, (byte *)&len, sizeof(len)));
		len %= sizeof(m) + 1;
		sha256(m + 1, len > sizeof(m) - 1 ? sizeof(m) - 1 : len, one);
		if (len > sizeof(m) - 1)
			len = sizeof(m) - 1;
		wc_InitSha256(&s);
		while (off < len) {
			ASSERT_EQ(0, wc_RNG_GenerateBlock(&rng, (byte *)&cut, sizeof(cut)));
			cut = cut % 200 + 1;
			if (cut > len - off)
				cut = len - off;
			wc_Sha256Update(&s, m + 1 + off, cut);	/* unaligned on purpose */
			off += cut;
		}
		wc_Sha256Final(&s, pieces);
		wc_Sha256Free(&s);
		ASSERT_EQ(0, memcmp(one, pieces, 32)) TH_LOG("length %u", len);
	}
	wc_FreeRng(&rng);
}

/* RFC 4231 test case 2: what TLS 1.3's key schedule is made of. */
TEST(hmac_rfc4231)
{
	static const char data[] = "what do ya want for nothing?";
	unsigned char want[32], got[32];
	Hmac h;

	unhex(want, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);
	ASSERT_EQ(0, wc_HmacInit(&h, NULL, INVALID_DEVID));
	ASSERT_EQ(0, wc_HmacSetKey(&h, WC_SHA256, (const byte *)"Jefe", 4));
	ASSERT_EQ(0, wc_HmacUpdate(&h, (const byte *)data, sizeof(data) - 1));
	ASSERT_EQ(0, wc_HmacFinal(&h, got));
	wc_HmacFree(&h);
	EXPECT_EQ(0, memcmp(got, want, 32));
}

/* wolfSSL's hashing goes through kmtls's block functions (the rename). */
TEST(wolfssl_calls_kmtls_blocks)
{
	unsigned char m[200] = { 0 }, d[32];
	unsigned long before = kmtls_sha256_calls();

	/* Three whole blocks in one call, then the last with the padding. */
	sha256(m, sizeof(m), d);
	EXPECT_EQ(before + 2, kmtls_sha256_calls());
}

/* With SHA-NI turned off (a child), wolfSSL's assembly gives the same. */
TEST(fallback_path_agrees)
{
	unsigned char m[1000], a[32], b[32];
	int fd[2], status;
	pid_t pid;

	memset(m, 0x5a, sizeof(m));
	sha256(m, sizeof(m), a);
	ASSERT_EQ(0, pipe(fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned char c[33];

		setenv("KMTLS_NO_SHANI", "1", 1);
		c[32] = (unsigned char)kmtls_sha256_shani_recheck();
		sha256(m, sizeof(m), c);
		_exit(write(fd[1], c, sizeof(c)) == sizeof(c) ? 0 : 1);
	}
	close(fd[1]);
	{
		unsigned char c[33];

		ASSERT_EQ((ssize_t)sizeof(c), read(fd[0], c, sizeof(c)));
		memcpy(b, c, 32);
		EXPECT_EQ(0, c[32]) TH_LOG("the child still used SHA-NI");
	}
	close(fd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, memcmp(a, b, 32));
}

TEST_HARNESS_MAIN
