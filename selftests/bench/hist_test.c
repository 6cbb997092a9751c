// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls-bench's latency histogram (tools/bench/hist.c): percentiles within
 * its 0.4% bucket error over the whole range a run can produce (an open
 * loop's latency counts from the due time, so it can be as long as the run:
 * up to 48 hours of warmup and duration), and the exact maximum.
 */
#include "../../tools/bench/bench.h"
#include "kselftest_harness.h"

static struct bench_hist h;

static int close_to(uint64_t got, uint64_t want)
{
	double d = (double)got - (double)want;

	return (d < 0 ? -d : d) <= 0.004 * want;
}

TEST(exact_below_linear)
{
	memset(&h, 0, sizeof(h));
	hist_record(&h, 5);
	hist_record(&h, 200);
	EXPECT_EQ(5ULL, hist_percentile(&h, 0.5));
	EXPECT_EQ(200ULL, hist_percentile(&h, 1.0));
}

TEST(microseconds_to_seconds)
{
	static const uint64_t v[] = {
		1234, 56789, 3 * NSEC_PER_MSEC + 7, 999 * NSEC_PER_MSEC, 12 * NSEC_PER_SEC,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		memset(&h, 0, sizeof(h));
		hist_record(&h, v[i]);
		hist_record(&h, v[i] * 4);	/* a larger max: no clamping to it */
		EXPECT_TRUE(close_to(hist_percentile(&h, 0.5), v[i]))
			TH_LOG("%llu ns reported as %llu", (unsigned long long)v[i],
			       (unsigned long long)hist_percentile(&h, 0.5));
	}
}

/* Past a minute: the range once stopped at 60 s and said 59.995 s for all. */
TEST(minutes_and_hours)
{
	static const uint64_t v[] = {
		75 * NSEC_PER_SEC, 600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC,
		48 * 3600 * NSEC_PER_SEC,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		memset(&h, 0, sizeof(h));
		hist_record(&h, NSEC_PER_SEC);	/* the median is neither min nor max */
		hist_record(&h, v[i]);
		hist_record(&h, v[i] + v[i] / 2);
		EXPECT_TRUE(close_to(hist_percentile(&h, 0.5), v[i]))
			TH_LOG("%llu ns reported as %llu", (unsigned long long)v[i],
			       (unsigned long long)hist_percentile(&h, 0.5));
		EXPECT_EQ(v[i] + v[i] / 2, h.max);
		EXPECT_EQ(h.max, hist_percentile(&h, 1.0));
	}
}

/* Beyond the range (never from a run): the last bucket, the max still exact. */
TEST(beyond_the_range)
{
	memset(&h, 0, sizeof(h));
	hist_record(&h, UINT64_MAX / 2);
	EXPECT_EQ(UINT64_MAX / 2, h.max);
	EXPECT_EQ(UINT64_MAX / 2, hist_percentile(&h, 1.0));
	EXPECT_TRUE(HIST_MAX_NS > 2 * 86400 * NSEC_PER_SEC);
}

TEST(merge_keeps_ranks)
{
	static struct bench_hist a, b;
	unsigned int i;

	memset(&h, 0, sizeof(h));
	for (i = 1; i <= 100; i++)
		hist_record(i % 2 ? &a : &b, i * 100 * NSEC_PER_SEC);
	hist_merge(&h, &a);
	hist_merge(&h, &b);
	EXPECT_EQ(100ULL, h.count);
	EXPECT_EQ(100 * NSEC_PER_SEC, h.min);
	EXPECT_EQ(10000 * NSEC_PER_SEC, h.max);
	EXPECT_TRUE(close_to(hist_percentile(&h, 0.5), 5000 * NSEC_PER_SEC));
	EXPECT_TRUE(close_to(hist_percentile(&h, 0.99), 9900 * NSEC_PER_SEC));
}

TEST_HARNESS_MAIN
