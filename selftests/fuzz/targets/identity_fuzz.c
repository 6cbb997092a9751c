// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for certificate identity extraction (agent/identity.c)
 * and the allow-list matcher (agent/policy.c). The input is taken as a DER
 * certificate, as it arrives from the network before any verification.
 *
 * For every input: kmtls_identity_from_der() must return 0, -1 or
 * KMTLS_IDENTITY_BAD_NAMES (then with no CN and no SANs, its other fields
 * sound, refused by any policy with entries) and leave an
 * identity kmtls_identity_free() takes. For a decoded one:
 *
 *  - every string field is NUL-terminated inside its array; CN and SAN
 *    entries hold no byte the escaper would have to hide behind a NUL;
 *  - the fingerprint is 64 lower-case hex digits of SHA-256(input);
 *  - kmtls_identity_sans() is NUL-terminated in any buffer size, and a
 *    short buffer gives a prefix of the full list cut between entries;
 *    kmtls_identity_escape() output is printable ASCII with no '"', each
 *    '\' starting a \xNN escape;
 *  - the fixed policy below (the test PKI's names) decides as a reference
 *    matcher written here decides; a policy made of the identity's own
 *    names (URI escaped as a glob, DNS upper-cased) lets it in, one made of
 *    near misses (an extra character) does not, an empty policy lets
 *    everything in, and a non-empty one never lets a NULL identity in.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../agent/identity.h"
#include "../../../agent/policy.h"

static char *fixed_uri[] = { "spiffe://example.org/client", "spiffe://example.org/svc/*" };
static char *fixed_dns[] = { "client.example.org" };
static char *fixed_cn[] = { "client", "" };

static const struct kmtls_policy fixed = {
	.uri = fixed_uri, .n_uri = 2,
	.dns = fixed_dns, .n_dns = 1,
	.cn = fixed_cn, .n_cn = 2,
};

static void check_field(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();
}

static void check_strlist(const struct kmtls_strlist *l)
{
	int i;

	if (l->n < 0 || (l->n && !l->v))
		abort();
	for (i = 0; i < l->n; i++)
		if (!l->v[i] || !l->v[i][0])
			abort();	/* empty names are skipped */
}

static void check_fingerprint(const struct kmtls_identity *id,
			      const uint8_t *data, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char sum[32];
	char fp[65], small[9];
	size_t i;

	if (wc_Sha256Hash(data, (word32)size, sum))
		abort();
	memset(fp, 0x55, sizeof(fp));
	kmtls_identity_fingerprint_hex(id, fp, sizeof(fp));
	if (strlen(fp) != 64)
		abort();
	for (i = 0; i < 32; i++)
		if (fp[2 * i] != hex[sum[i] >> 4] || fp[2 * i + 1] != hex[sum[i] & 15])
			abort();
	/* A short buffer: whole bytes only, still terminated. */
	kmtls_identity_fingerprint_hex(id, small, sizeof(small));
	if (strlen(small) != 8 || strncmp(small, fp, 8))
		abort();
}

static void check_escaped(const char *in)
{
	char out[600];
	size_t i;

	kmtls_identity_escape(in, out, sizeof(out));
	for (i = 0; out[i]; i++) {
		if (out[i] < 0x20 || out[i] > 0x7e || out[i] == '"')
			abort();
		if (out[i] == '\\') {
			if (out[i + 1] != 'x' || !isxdigit((unsigned char)out[i + 2]) ||
			    !isxdigit((unsigned char)out[i + 3]))
				abort();
			i += 3;
		}
	}
}

static void check_sans(const struct kmtls_identity *id)
{
	static const size_t sizes[] = { 1, 2, 5, 16, 40, 100, 300 };
	static char full[1 << 16];
	char part[300];
	size_t i, k;

	kmtls_identity_sans(id, full, sizeof(full));
	check_field(full, sizeof(full));
	if (!id->uris.n && !id->dns.n && strcmp(full, "none"))
		abort();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(part, 0x55, sizeof(part));
		kmtls_identity_sans(id, part, sizes[i]);
		if (!memchr(part, '\0', sizes[i]))
			abort();
		k = strlen(part);
		if (!strncmp(full, "none", 5)) {
			if (strncmp(part, "none", k))
				abort();
		} else if (strncmp(part, full, k) || (k && full[k] && full[k] != ',')) {
			abort();	/* not a prefix cut between entries */
		}
	}
	kmtls_identity_sans(id, part, 0);	/* must not touch the buffer */
}

/* The fixed policy, decided the long way round. */
static int reference_allows(const struct kmtls_identity *id)
{
	char lower[1024];
	int i, j;
	size_t k;

	for (i = 0; i < id->uris.n; i++)
		for (j = 0; j < fixed.n_uri; j++)
			if (!fnmatch(fixed.uri[j], id->uris.v[i], 0))
				return 1;
	for (i = 0; i < id->dns.n; i++) {
		for (k = 0; id->dns.v[i][k] && k + 1 < sizeof(lower); k++)
			lower[k] = (char)tolower((unsigned char)id->dns.v[i][k]);
		lower[k] = '\0';
		if (!id->dns.v[i][k] && !strcmp(lower, "client.example.org"))
			return 1;
	}
	return id->cn[0] && !strcmp(id->cn, "client");
}

/* @s as an fnmatch pattern matching exactly @s. */
static char *glob_escape(const char *s)
{
	char *g = malloc(2 * strlen(s) + 1), *o = g;

	if (!g)
		abort();
	for (; *s; s++) {
		*o++ = '\\';
		*o++ = *s;
	}
	*o = '\0';
	return g;
}

static char *upper_dup(const char *s)
{
	char *u = strdup(s), *p;

	if (!u)
		abort();
	for (p = u; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return u;
}

static char *plus_x(const char *s)
{
	size_t n = strlen(s);
	char *t = malloc(n + 2);

	if (!t)
		abort();
	memcpy(t, s, n);
	t[n] = 'x';
	t[n + 1] = '\0';
	return t;
}

static void check_own_names(const struct kmtls_identity *id)
{
	struct kmtls_policy p = { 0 }, miss = { 0 };
	char *cn = (char *)id->cn, *cnx = plus_x(id->cn);
	char *uri = NULL, *urix = NULL, *dns = NULL, *dnsx = NULL;

	if (id->uris.n) {
		uri = glob_escape(id->uris.v[id->uris.n - 1]);
		urix = plus_x(uri);
	}
	if (id->dns.n) {
		dns = upper_dup(id->dns.v[0]);
		dnsx = plus_x(dns);
	}
	p.uri = &uri, p.n_uri = !!uri;
	p.dns = &dns, p.n_dns = !!dns;
	p.cn = &cn, p.n_cn = 1;
	if (kmtls_policy_allows(&p, id) != (uri || dns || id->cn[0]))
		abort();
	miss.uri = &urix, miss.n_uri = !!urix;
	miss.dns = &dnsx, miss.n_dns = !!dnsx;
	miss.cn = &cnx, miss.n_cn = 1;
	/* Only another SAN of the same certificate may match a near miss. */
	if (id->uris.n <= 1 && id->dns.n <= 1 && kmtls_policy_allows(&miss, id))
		abort();
	free(uri);
	free(urix);
	free(dns);
	free(dnsx);
	free(cnx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct kmtls_policy empty = { 0 };
	struct kmtls_identity id;
	int i, ret;

	if (size > 1 << 16)
		return 0;	/* a TLS certificate message carries less */
	ret = kmtls_identity_from_der(data, (int)size, &id);
	if (ret) {
		if ((ret != -1 && ret != KMTLS_IDENTITY_BAD_NAMES) || id.cn[0] ||
		    id.uris.n || id.dns.n || id.uris.v || id.dns.v)
			abort();
		if (id.names_bad != (ret == KMTLS_IDENTITY_BAD_NAMES))
			abort();
		if (ret == KMTLS_IDENTITY_BAD_NAMES) {
			check_field(id.subject, sizeof(id.subject));
			check_field(id.issuer, sizeof(id.issuer));
			check_field(id.serial, sizeof(id.serial));
			check_field(id.not_before, sizeof(id.not_before));
			check_field(id.not_after, sizeof(id.not_after));
			/* No name to match: only a policy without entries lets it in. */
			if (kmtls_policy_allows(&fixed, &id) || !kmtls_policy_allows(&empty, &id))
				abort();
		}
		kmtls_identity_free(&id);
		return 0;
	}
	check_field(id.subject, sizeof(id.subject));
	check_field(id.issuer, sizeof(id.issuer));
	check_field(id.cn, sizeof(id.cn));
	check_field(id.serial, sizeof(id.serial));
	check_field(id.not_before, sizeof(id.not_before));
	check_field(id.not_after, sizeof(id.not_after));
	check_strlist(&id.uris);
	check_strlist(&id.dns);
	check_fingerprint(&id, data, size);
	check_sans(&id);
	check_escaped(id.subject);
	check_escaped(id.cn);
	for (i = 0; i < id.uris.n; i++)
		check_escaped(id.uris.v[i]);
	if (kmtls_policy_allows(&fixed, &id) != reference_allows(&id))
		abort();
	if (!kmtls_policy_allows(&empty, &id) || !kmtls_policy_allows(NULL, &id) ||
	    kmtls_policy_allows(&fixed, NULL))
		abort();
	check_own_names(&id);
	kmtls_identity_free(&id);
	kmtls_identity_free(&id);	/* the struct may be reused */
	return 0;
}
