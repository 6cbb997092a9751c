/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_STREAM_H
#define KMTLS_SELFTEST_STREAM_H

#include <stddef.h>
#include <stdint.h>

/*
 * The deterministic test stream: xorshift64* words in host byte order, the
 * same bytes as fill() in tls_pair.c. Each direction has its own seed, so
 * data echoed back by mistake does not pass for the other direction's.
 */
#define STREAM_SEED_C2S	0x1234567ULL	/* client -> server / backend */
#define STREAM_SEED_S2C	0x89abcdefULL	/* server / backend -> client */

struct stream_gen {
	uint64_t state;
	unsigned char tail[8];	/* rest of the last word handed out in part */
	unsigned int tail_len;
};

void stream_init(struct stream_gen *g, uint64_t seed);

/*
 * The next @len bytes of the stream. Unlike fill(), a chunk that ends inside
 * a word keeps the rest for the next call, so the bytes do not depend on
 * how the caller cuts the stream.
 */
void stream_fill(struct stream_gen *g, unsigned char *buf, size_t len);

/* Lower-case hex of @n bytes into @out (2 * n + 1 bytes), for reports. */
void hex_encode(const unsigned char *p, size_t n, char *out);

#endif
