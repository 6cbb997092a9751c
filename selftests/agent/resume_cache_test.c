// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-thread cache of resume re-check passes (agent/resume_cache.c):
 * a hit gives a deep copy, only for the same context and policy and
 * generation, entries age out, and a clear forgets everything.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/resume_cache.h"
#include "kselftest_harness.h"

static void add(struct kmtls_strlist *l, const char *s)
{
	l->v = realloc(l->v, sizeof(*l->v) * (l->n + 1));
	l->v[l->n++] = strdup(s);
}

static void make_id(struct kmtls_identity *id, unsigned char first)
{
	memset(id, 0, sizeof(*id));
	strcpy(id->subject, "CN=svc-a,O=kmtls");
	strcpy(id->cn, "svc-a");
	strcpy(id->serial, "1003");
	add(&id->uris, "spiffe://kmtls.test/svc-a");
	add(&id->dns, "svc-a.internal");
	for (int i = 0; i < 32; i++)
		id->sha256[i] = (unsigned char)(first + i);
}

static char ctx_a, ctx_b, pol_a, pol_b;	/* stand-ins: only their addresses count */

FIXTURE(rc) {
	struct kmtls_identity id;
};

FIXTURE_SETUP(rc)
{
	kmtls_resume_cache_clear();
	make_id(&self->id, 7);
}

FIXTURE_TEARDOWN(rc)
{
	kmtls_identity_free(&self->id);
	kmtls_resume_cache_clear();
}

TEST_F(rc, hit_is_a_deep_copy)
{
	struct kmtls_identity got;
	unsigned long hits = kmtls_resume_cache_hits();

	ASSERT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	ASSERT_EQ(0, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	EXPECT_EQ(hits + 1, kmtls_resume_cache_hits());
	EXPECT_STREQ(self->id.subject, got.subject);
	EXPECT_STREQ(self->id.serial, got.serial);
	ASSERT_EQ(1, got.uris.n);
	ASSERT_EQ(1, got.dns.n);
	EXPECT_STREQ("spiffe://kmtls.test/svc-a", got.uris.v[0]);
	EXPECT_NE(self->id.uris.v[0], got.uris.v[0]);
	EXPECT_EQ(0, memcmp(self->id.sha256, got.sha256, 32));
	kmtls_identity_free(&got);
	/* The caller's identity can go: the entry has its own. */
	kmtls_identity_free(&self->id);
	ASSERT_EQ(0, kmtls_resume_cache_get(got.sha256, &ctx_a, &pol_a, &got));
	EXPECT_STREQ("svc-a.internal", got.dns.v[0]);
	kmtls_identity_free(&got);
}

TEST_F(rc, other_context_or_policy_misses)
{
	struct kmtls_identity got;
	unsigned char other[32];

	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_b, &pol_a, &got));
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_b, &got));
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, NULL, &got));
	memcpy(other, self->id.sha256, 32);
	other[31] ^= 1;		/* same slot, another certificate */
	EXPECT_EQ(-1, kmtls_resume_cache_get(other, &ctx_a, &pol_a, &got));
	EXPECT_EQ(0, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	kmtls_identity_free(&got);
}

/* A reload makes a new context or policy: nothing from before holds. */
TEST_F(rc, new_generation_misses)
{
	struct kmtls_identity got;

	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	kmtls_resume_cache_bump();
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	EXPECT_EQ(0, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	kmtls_identity_free(&got);
}

TEST_F(rc, collision_replaces_the_older)
{
	struct kmtls_identity other, got;

	make_id(&other, 7);
	other.sha256[31] ^= 1;	/* slot from the first byte: the same one */
	strcpy(other.subject, "CN=svc-b");
	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	kmtls_resume_cache_put(&ctx_a, &pol_a, &other);
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	ASSERT_EQ(0, kmtls_resume_cache_get(other.sha256, &ctx_a, &pol_a, &got));
	EXPECT_STREQ("CN=svc-b", got.subject);
	kmtls_identity_free(&got);
	kmtls_identity_free(&other);
}

TEST_F(rc, clear_forgets)
{
	struct kmtls_identity got;

	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	kmtls_resume_cache_clear();
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
}

TEST_F_TIMEOUT(rc, entries_age_out, 30)
{
	struct kmtls_identity got;

	kmtls_resume_cache_put(&ctx_a, &pol_a, &self->id);
	usleep((KMTLS_RESUME_CACHE_MS - 1000) * 1000);
	ASSERT_EQ(0, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
	kmtls_identity_free(&got);
	usleep(1200 * 1000);
	EXPECT_EQ(-1, kmtls_resume_cache_get(self->id.sha256, &ctx_a, &pol_a, &got));
}

TEST_HARNESS_MAIN
