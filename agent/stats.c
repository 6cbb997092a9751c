// SPDX-License-Identifier: GPL-2.0-or-later
#include <string.h>

#include "stats.h"
#include "worker.h"

void kmtls_stats_observe_hs(struct kmtls_stats *s, uint64_t us)
{
	static const uint64_t bounds_ms[] = KMTLS_HS_BUCKETS_MS;
	int i;

	for (i = 0; i < KMTLS_HS_NBUCKETS - 1; i++)
		if (us <= bounds_ms[i] * 1000)
			break;
	STAT_ADD(s, hs_hist[i], 1);
	STAT_ADD(s, hs_sum_us, us);
}

#define SUM(f) (out->f += STAT_GET(&ws[i].stats, f))

void kmtls_stats_sum(const struct kmtls_worker *ws, int n, struct kmtls_stats *out)
{
	int i, b;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		SUM(accepted);
		SUM(handshakes_ok);
		SUM(handshakes_failed);
		SUM(handshakes_resumed);
		SUM(ktls_on);
		SUM(ktls_fallback);
		SUM(ktls_refused);
		SUM(backend_failed);
		SUM(key_updates);
		SUM(conns_capped);
		SUM(closes_unacked);
		SUM(bytes_up);
		SUM(bytes_down);
		SUM(active);
		SUM(hs_sum_us);
		for (b = 0; b < KMTLS_HS_NBUCKETS; b++)
			SUM(hs_hist[b]);
	}
}
