/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_POLICY_H
#define KMTLS_POLICY_H

#include "identity.h"

/*
 * Which verified clients a listener lets through. Pointers into the
 * listener's configuration, not owned; one policy is shared read-only by
 * every worker.
 */
struct kmtls_policy {
	char **uri;	/* fnmatch globs on SAN URI; '*' also matches '/' */
	int n_uri;
	char **dns;	/* exact SAN DNS names, case-insensitive */
	int n_dns;
	char **cn;	/* exact subject CN */
	int n_cn;
};

/* 1 when @p has no entry at all: every verified client is allowed. */
int kmtls_policy_empty(const struct kmtls_policy *p);

/*
 * 1 if @id may connect: the policy is empty (or NULL), or any entry of any
 * list matches. 0 otherwise, and for a NULL @id under a non-empty policy.
 */
int kmtls_policy_allows(const struct kmtls_policy *p,
			const struct kmtls_identity *id);

#endif
