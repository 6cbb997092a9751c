// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small per-thread table of resume re-check passes (see resume_cache.h).
 * Direct-mapped on the certificate's SHA-256: workers never share it, so
 * no locks; a collision replaces the older entry.
 */
#include <string.h>

#include "resume_cache.h"
#include "worker.h"	/* kmtls_now_ms() */

struct entry {
	int used;
	unsigned long gen;
	const void *ctx, *policy;
	unsigned long long at_ms;
	struct kmtls_identity id;	/* id.sha256 is the key */
};

static unsigned long generation = 1;
static __thread struct entry table[KMTLS_RESUME_CACHE_SLOTS];
static __thread unsigned long hits;

void kmtls_resume_cache_bump(void)
{
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
}

static struct entry *slot(const unsigned char sha[32])
{
	return &table[sha[0] % KMTLS_RESUME_CACHE_SLOTS];
}

static void drop(struct entry *e)
{
	if (e->used)
		kmtls_identity_free(&e->id);
	e->used = 0;
}

int kmtls_resume_cache_get(const unsigned char sha[32], const void *ctx,
			   const void *policy, struct kmtls_identity *id)
{
	struct entry *e = slot(sha);

	if (!e->used || memcmp(e->id.sha256, sha, 32) || e->ctx != ctx || e->policy != policy)
		return -1;
	if (e->gen != __atomic_load_n(&generation, __ATOMIC_ACQUIRE) ||
	    kmtls_now_ms() - e->at_ms > KMTLS_RESUME_CACHE_MS) {
		drop(e);
		return -1;
	}
	if (kmtls_identity_copy(id, &e->id))
		return -1;
	hits++;
	return 0;
}

void kmtls_resume_cache_put(const void *ctx, const void *policy,
			    const struct kmtls_identity *id)
{
	struct entry *e = slot(id->sha256);

	drop(e);
	if (kmtls_identity_copy(&e->id, id))
		return;
	e->used = 1;
	e->gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
	e->ctx = ctx;
	e->policy = policy;
	e->at_ms = kmtls_now_ms();
}

void kmtls_resume_cache_clear(void)
{
	for (int i = 0; i < KMTLS_RESUME_CACHE_SLOTS; i++)
		drop(&table[i]);
}

unsigned long kmtls_resume_cache_hits(void)
{
	return hits;
}
