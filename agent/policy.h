/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_POLICY_H
#define KMTLS_POLICY_H

#include <stdatomic.h>

#include "ca_digest.h"
#include "config.h"
#include "identity.h"

/*
 * Which verified clients a listener lets through, shared read-only by
 * every worker. A listener's policy is made by kmtls_policy_new(), owns its
 * strings and is counted: SIGHUP swaps in a new one, and each connection
 * holds a reference to the one it began with until it ends. Tests and
 * fuzzers may build one in place (refs 0, never put).
 */
struct kmtls_policy {
	char **uri;	/* fnmatch globs on SAN URI; '*' also matches '/' */
	int n_uri;
	char **dns;	/* exact SAN DNS names, case-insensitive */
	int n_dns;
	char **cn;	/* exact subject CN */
	int n_cn;
	unsigned int *uid;	/* kernel profiles: allow-uid; none: any uid */
	int n_uid;
	/* Of the listener's CA bundle (ca_digest.h); tickets carry it. */
	unsigned char ca_digest[KMTLS_CA_DIGEST_LEN];
	int ca_digest_ok;	/* 0: unreadable, no ticket resumes */
	atomic_uint refs;
};

/*
 * A policy of its own from @l's allow-uri, allow-dns and allow-cn and, for
 * a kernel profile, @uids (may be NULL): copies, one reference. NULL when
 * out of memory.
 */
struct kmtls_policy *kmtls_policy_new(const struct kmtls_listener_conf *l,
				      const struct kmtls_uidlist *uids);

/* One more reference to @p, which kmtls_policy_new() made (NULL is fine). */
struct kmtls_policy *kmtls_policy_get(struct kmtls_policy *p);

/* Drop a reference; the last one frees @p (NULL is fine). */
void kmtls_policy_put(struct kmtls_policy *p);

/* 1 if a process of @uid may use the kernel profile: allow-uid lists it or is empty. */
int kmtls_policy_uid_allowed(const struct kmtls_policy *p, unsigned int uid);

/* 1 when @p has no entry at all: every verified client is allowed. */
int kmtls_policy_empty(const struct kmtls_policy *p);

/*
 * 1 if @id may connect: the policy is empty (or NULL), or any entry of any
 * list matches. 0 otherwise, and for a NULL @id under a non-empty policy.
 */
int kmtls_policy_allows(const struct kmtls_policy *p,
			const struct kmtls_identity *id);

#endif
