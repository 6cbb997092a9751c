/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_STATS_H
#define KMTLS_STATS_H

#include <stdint.h>

/*
 * Counters of one worker. Only that worker writes them (relaxed atomics so a
 * reader on another thread sees whole values); readers sum over workers.
 */
/* Upper bounds (ms) of the handshake duration histogram; the last is +Inf. */
#define KMTLS_HS_BUCKETS_MS { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }
#define KMTLS_HS_NBUCKETS 14

struct kmtls_stats {
	uint64_t accepted;
	uint64_t handshakes_ok;
	uint64_t handshakes_failed;
	uint64_t handshakes_resumed;
	uint64_t ktls_on;
	uint64_t ktls_fallback;
	uint64_t ktls_refused;		/* ktls = require and none to be had */
	uint64_t backend_failed;
	uint64_t key_updates;		/* peer KeyUpdate: connection ended */
	uint64_t conns_capped;
	uint64_t closes_unacked;	/* a kTLS linger given up: the peer stopped reading */
	uint64_t bytes_up;		/* client -> backend */
	uint64_t bytes_down;
	uint64_t active;
	uint64_t hs_hist[KMTLS_HS_NBUCKETS];	/* successful handshakes by duration */
	uint64_t hs_sum_us;
};

/* Count one successful handshake of @us microseconds. */
void kmtls_stats_observe_hs(struct kmtls_stats *s, uint64_t us);

/* Sum every worker's counters into @out. */
struct kmtls_worker;
void kmtls_stats_sum(const struct kmtls_worker *ws, int n, struct kmtls_stats *out);

#define STAT_ADD(s, field, n) \
	__atomic_fetch_add(&(s)->field, (n), __ATOMIC_RELAXED)
#define STAT_SUB(s, field, n) \
	__atomic_fetch_sub(&(s)->field, (n), __ATOMIC_RELAXED)
#define STAT_GET(s, field) \
	__atomic_load_n(&(s)->field, __ATOMIC_RELAXED)

#endif
