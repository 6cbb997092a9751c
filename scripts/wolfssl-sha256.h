/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -include'd into every wolfSSL object by scripts/wolfssl.sh: sha256.c
 * picks its AVX2+RORX block functions on CPUs with AVX2 and BMI2; in C
 * those names become kmtls's (agent/sha256_shani.c), which use SHA-NI when
 * the CPU has it and call the assembly otherwise. The assembly itself
 * (.S, preprocessed with __ASSEMBLER__) keeps its names.
 */
#ifndef KMTLS_WOLFSSL_SHA256_H
#define KMTLS_WOLFSSL_SHA256_H
#ifndef __ASSEMBLER__

#define Transform_Sha256_AVX2_RORX	kmtls_sha256_block
#define Transform_Sha256_AVX2_RORX_Len	kmtls_sha256_blocks

#endif
#endif
