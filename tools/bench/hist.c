// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Latency histogram in the HdrHistogram manner: values below HIST_LINEAR ns
 * are kept exactly; above, every power of two is cut into HIST_SUB equal
 * buckets, so a bucket is never wider than 1/128 of its lower edge and its
 * midpoint is within 0.4% of any value in it. 5376 buckets cover 1 ns to
 * 78 hours, more than any latency a run can see (an open loop's counts from
 * the due time: up to --warmup + --duration, 48 hours); longer values would
 * land in the last one. The exact maximum is kept apart.
 */
#include "bench.h"

static unsigned int hist_index(uint64_t v)
{
	unsigned int shift;

	if (v < HIST_LINEAR)
		return v;
	if (v > HIST_MAX_NS)
		v = HIST_MAX_NS;
	/* Keep the top 8 bits: (v >> shift) is in [HIST_SUB, 2 * HIST_SUB). */
	shift = 63 - __builtin_clzll(v) - 7;
	return HIST_LINEAR + (shift - 1) * HIST_SUB + (v >> shift) - HIST_SUB;
}

/* The middle of bucket i, the value reported for anything that fell in it. */
static uint64_t hist_value(unsigned int i)
{
	unsigned int k, shift;
	uint64_t low;

	if (i < HIST_LINEAR)
		return i;
	k = i - HIST_LINEAR;
	shift = k / HIST_SUB + 1;
	low = (uint64_t)(k % HIST_SUB + HIST_SUB) << shift;
	return low + (1ULL << (shift - 1));
}

void hist_record(struct bench_hist *h, uint64_t ns)
{
	h->bucket[hist_index(ns)]++;
	if (!h->count || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->count++;
}

void hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	unsigned int i;

	if (!src->count)
		return;
	for (i = 0; i < HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	if (!dst->count || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
}

/* The value at quantile q (0..1]: that of the rank ceil(q * count). */
uint64_t hist_percentile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	unsigned int i;

	if (!h->count)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank >= h->count)
		return h->max;		/* the top rank is known exactly */
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	v = hist_value(i < HIST_BUCKETS ? i : HIST_BUCKETS - 1);
	/* A bucket's middle may lie outside what was really seen. */
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}
