/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SHA-256 blocks with SHA-NI for wolfSSL's sha256.c (see sha256_shani.c
 * and scripts/wolfssl-sha256.h).
 */
#ifndef KMTLS_SHA256_SHANI_H
#define KMTLS_SHA256_SHANI_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

/* wolfSSL's block functions on CPUs with AVX2 and BMI2, renamed to these. */
int kmtls_sha256_block(wc_Sha256 *sha, const byte *data);
int kmtls_sha256_blocks(wc_Sha256 *sha, const byte *data, word32 len);

/*
 * 1 when the blocks go through SHA-NI: the CPU has it and KMTLS_NO_SHANI
 * is not set in the environment (read once).
 */
int kmtls_sha256_shani_available(void);

/* Forget the answer and ask the CPU and the environment again. */
int kmtls_sha256_shani_recheck(void);

/* How many times wolfSSL called the two block functions above, on this thread. */
unsigned long kmtls_sha256_calls(void);

/* Each path on its own, for the tests: one 64-byte block. */
int kmtls_sha256_block_avx2(wc_Sha256 *sha, const byte *data);
void kmtls_sha256_block_shani(wc_Sha256 *sha, const byte *data);

#endif
