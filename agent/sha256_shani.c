// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * SHA-256 blocks with the x86 SHA extensions (SHA-NI) for wolfSSL.
 *
 * wolfSSL 5.5.4's fastest SHA-256 on x86-64 is AVX2 with RORX; it has no
 * SHA-NI path. A resumed TLS 1.3 handshake hashes enough (transcript, a
 * dozen HKDF steps, each two HMAC passes) that SHA-256 was a tenth of
 * kmtlsd's CPU; the SHA-NI instructions do a block in a fraction of that.
 *
 * scripts/wolfssl-sha256.h, -include'd into wolfSSL's C files, renames the
 * AVX2+RORX block functions that sha256.c selects on CPUs with AVX2 and
 * BMI2 to the two functions here. They run the SHA-NI rounds when the CPU
 * has them and wolfSSL's own assembly (still under its own name: the .S
 * files do not see the rename) when it does not. Same contract as that
 * assembly: @data is the message in its byte order, any alignment, whole
 * 64-byte blocks; sha->digest holds H0..H7 as host-order words.
 * selftests/agent/sha256_test checks both paths against each other and
 * against FIPS 180-2's vectors.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "sha256_shani.h"

/* wolfSSL's assembly (wolfcrypt/src/sha256_asm.S). */
int Transform_Sha256_AVX2_RORX(wc_Sha256 *sha, const byte *data);
int Transform_Sha256_AVX2_RORX_Len(wc_Sha256 *sha, const byte *data, word32 len);

static const unsigned int k256[64] __attribute__((aligned(16))) = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/*
 * The rounds keep the state as two vectors, (A, B, E, F) and (C, D, G, H),
 * highest lane first: SHA256RNDS2 does two rounds from one and updates the
 * other, taking W[t] + K[t] for its two rounds from the low 64 bits of its
 * third operand. SHA256MSG1 and SHA256MSG2 compute the message schedule
 * four words at a time, W[t-7..t-4] added in between.
 */
__attribute__((target("sha,sse4.1,ssse3")))
static void shani_blocks(word32 digest[8], const byte *data, word32 nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i abef, cdgh, abef0, cdgh0, t, wk, w[4];
	int i;

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&digest[0]), 0xB1); /* C D A B */
	cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&digest[4]), 0x1B); /* E F G H */
	abef = _mm_alignr_epi8(t, cdgh, 8);		/* A B E F */
	cdgh = _mm_blend_epi16(cdgh, t, 0xF0);	/* C D G H */

	for (; nblocks; nblocks--, data += 64) {
		abef0 = abef;
		cdgh0 = cdgh;
		for (i = 0; i < 16; i++) {
			if (i < 4)
				w[i] = _mm_shuffle_epi8(
					_mm_loadu_si128((const __m128i *)(data + 16 * i)), bswap);
			else
				w[i & 3] = _mm_sha256msg2_epu32(
					_mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]),
						      _mm_alignr_epi8(w[(i + 3) & 3],
								      w[(i + 2) & 3], 4)),
					w[(i + 3) & 3]);
			wk = _mm_add_epi32(w[i & 3],
					   _mm_load_si128((const __m128i *)&k256[4 * i]));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}

	t = _mm_shuffle_epi32(abef, 0x1B);		/* F E B A */
	cdgh = _mm_shuffle_epi32(cdgh, 0xB1);		/* D C H G */
	_mm_storeu_si128((__m128i *)&digest[0], _mm_blend_epi16(t, cdgh, 0xF0));
	_mm_storeu_si128((__m128i *)&digest[4], _mm_alignr_epi8(cdgh, t, 8));
}

/* -1 not known yet, else whether the CPU has SHA-NI (and SSE4.1, SSSE3). */
static int have_shani = -1;

int kmtls_sha256_shani_available(void)
{
	unsigned int a, b, c, d;
	int yes = __atomic_load_n(&have_shani, __ATOMIC_RELAXED);

	if (yes >= 0)
		return yes;
	yes = 0;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3) &&
	    __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA))
		yes = 1;
	if (getenv("KMTLS_NO_SHANI"))	/* A/B measurements, tests of the fallback */
		yes = 0;
	__atomic_store_n(&have_shani, yes, __ATOMIC_RELAXED);
	return yes;
}

int kmtls_sha256_shani_recheck(void)
{
	__atomic_store_n(&have_shani, -1, __ATOMIC_RELAXED);
	return kmtls_sha256_shani_available();
}

/*
 * Calls from wolfSSL: the tests' proof that the rename took effect. Per
 * thread: one counter shared by every worker would bounce its cache line
 * between CPUs on every hashed block.
 */
static __thread unsigned long calls;

unsigned long kmtls_sha256_calls(void)
{
	return calls;
}

int kmtls_sha256_block(wc_Sha256 *sha, const byte *data)
{
	calls++;
	if (!kmtls_sha256_shani_available())
		return Transform_Sha256_AVX2_RORX(sha, data);
	shani_blocks(sha->digest, data, 1);
	return 0;
}

int kmtls_sha256_blocks(wc_Sha256 *sha, const byte *data, word32 len)
{
	calls++;
	if (!kmtls_sha256_shani_available())
		return Transform_Sha256_AVX2_RORX_Len(sha, data, len);
	shani_blocks(sha->digest, data, len / 64);
	return 0;
}

int kmtls_sha256_block_avx2(wc_Sha256 *sha, const byte *data)
{
	return Transform_Sha256_AVX2_RORX(sha, data);
}

void kmtls_sha256_block_shani(wc_Sha256 *sha, const byte *data)
{
	shani_blocks(sha->digest, data, 1);
}
