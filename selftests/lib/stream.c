// SPDX-License-Identifier: GPL-2.0-or-later
#include <string.h>

#include "stream.h"

void stream_init(struct stream_gen *g, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->state = seed;
}

static uint64_t next_word(struct stream_gen *g)
{
	uint64_t x = g->state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void stream_fill(struct stream_gen *g, unsigned char *buf, size_t len)
{
	size_t n = g->tail_len < len ? g->tail_len : len;
	uint64_t w;

	memcpy(buf, g->tail + 8 - g->tail_len, n);
	g->tail_len -= n;
	buf += n;
	len -= n;
	for (; len >= 8; buf += 8, len -= 8) {
		w = next_word(g);
		memcpy(buf, &w, 8);
	}
	if (!len)
		return;
	w = next_word(g);
	memcpy(g->tail, &w, 8);
	memcpy(buf, g->tail, len);
	g->tail_len = 8 - len;
}

void hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}
