// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Allow-lists on the verified client's names. Lists are ORed: operators add
 * entries to let more clients in, never to narrow another list. Matching is
 * deliberately plain: fnmatch without FNM_PATHNAME for URIs (so a '*' after
 * "spiffe://example.org/" covers every path below), strcasecmp for DNS
 * names, strcmp for the CN.
 */
#include <fnmatch.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

int kmtls_policy_empty(const struct kmtls_policy *p)
{
	return !p || (p->n_uri <= 0 && p->n_dns <= 0 && p->n_cn <= 0);
}

static int any_uri(const struct kmtls_policy *p, const struct kmtls_strlist *l)
{
	int i, j;

	for (i = 0; i < p->n_uri; i++)
		for (j = 0; j < l->n; j++)
			if (!fnmatch(p->uri[i], l->v[j], 0))
				return 1;
	return 0;
}

static int any_dns(const struct kmtls_policy *p, const struct kmtls_strlist *l)
{
	int i, j;

	for (i = 0; i < p->n_dns; i++)
		for (j = 0; j < l->n; j++)
			if (!strcasecmp(p->dns[i], l->v[j]))
				return 1;
	return 0;
}

static int any_cn(const struct kmtls_policy *p, const char *cn)
{
	int i;

	/* A certificate without a CN must not match an empty entry. */
	if (!cn[0])
		return 0;
	for (i = 0; i < p->n_cn; i++)
		if (!strcmp(p->cn[i], cn))
			return 1;
	return 0;
}

int kmtls_policy_allows(const struct kmtls_policy *p,
			const struct kmtls_identity *id)
{
	if (kmtls_policy_empty(p))
		return 1;
	if (!id)
		return 0;
	return any_uri(p, &id->uris) || any_dns(p, &id->dns) ||
	       any_cn(p, id->cn);
}
