// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Allow-lists on the verified client's names. Lists are ORed: operators add
 * entries to let more clients in, never to narrow another list. Matching is
 * deliberately plain: fnmatch without FNM_PATHNAME for URIs (so a '*' after
 * "spiffe://example.org/" covers every path below), strcasecmp for DNS
 * names, strcmp for the CN.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

static void strs_free(char **v, int n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

static int strs_copy(char ***dst, int *n, const struct kmtls_strlist *src)
{
	int i;

	*n = 0;
	*dst = src->n ? calloc(src->n, sizeof(**dst)) : NULL;
	if (src->n && !*dst)
		return -1;
	for (i = 0; i < src->n; i++) {
		(*dst)[i] = strdup(src->v[i]);
		if (!(*dst)[i])
			return -1;
		(*n)++;
	}
	return 0;
}

static void policy_free(struct kmtls_policy *p)
{
	strs_free(p->uri, p->n_uri);
	strs_free(p->dns, p->n_dns);
	strs_free(p->cn, p->n_cn);
	free(p->uid);
	free(p);
}

struct kmtls_policy *kmtls_policy_new(const struct kmtls_listener_conf *l,
				      const struct kmtls_uidlist *uids)
{
	struct kmtls_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	p->ca_digest_ok = !kmtls_ca_digest(l->ca, p->ca_digest);
	if (strs_copy(&p->uri, &p->n_uri, &l->allow_uri) ||
	    strs_copy(&p->dns, &p->n_dns, &l->allow_dns) ||
	    strs_copy(&p->cn, &p->n_cn, &l->allow_cn))
		goto fail;
	if (uids && uids->n) {
		p->uid = malloc(uids->n * sizeof(*p->uid));
		if (!p->uid)
			goto fail;
		memcpy(p->uid, uids->v, uids->n * sizeof(*p->uid));
		p->n_uid = uids->n;
	}
	return p;
fail:
	policy_free(p);
	return NULL;
}

struct kmtls_policy *kmtls_policy_get(struct kmtls_policy *p)
{
	if (p)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void kmtls_policy_put(struct kmtls_policy *p)
{
	/* acq_rel: every reader's use happens before the free. */
	if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		policy_free(p);
}

int kmtls_policy_uid_allowed(const struct kmtls_policy *p, unsigned int uid)
{
	int i;

	if (!p || !p->n_uid)
		return 1;
	for (i = 0; i < p->n_uid; i++)
		if (p->uid[i] == uid)
			return 1;
	return 0;
}

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
