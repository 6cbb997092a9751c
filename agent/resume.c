// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The client's leaf certificate inside session tickets, and the checks a
 * returning ticket passes before its session may resume (see resume.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "policy.h"
#include "resume.h"
#include "resume_cache.h"

static const unsigned char magic[4] = { 'k', 'm', 'I', '3' };
static const unsigned char no_ca[KMTLS_CA_DIGEST_LEN];

/* The CA digest of @v's policy; zeros without one (tests). */
static const unsigned char *ca_of(const struct kmtls_verify *v)
{
	return v && v->policy ? v->policy->ca_digest : no_ca;
}

int kmtls_resume_seal_leaf(const struct kmtls_verify *v, unsigned char *buf,
			   int len, int cap)
{
	int n = v ? v->leaf_der_len : 0;
	unsigned char *p = buf + len + n;
	size_t chain = v ? strlen(v->chain_not_after) : 0;

	if (!n || n > 0xffff || n + KMTLS_RESUME_TRAILER > cap - len ||
	    (chain && chain != KMTLS_RESUME_DATE_LEN))	/* "?": undecodable */
		return len;
	memcpy(buf + len, v->leaf_der, n);
	memcpy(p, ca_of(v), KMTLS_CA_DIGEST_LEN);
	p += KMTLS_CA_DIGEST_LEN;
	memset(p, 0, KMTLS_RESUME_DATE_LEN);
	memcpy(p, v->chain_not_after, chain);
	p += KMTLS_RESUME_DATE_LEN;
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, magic, sizeof(magic));
	return len + n + KMTLS_RESUME_TRAILER;
}

int kmtls_resume_find_leaf(const unsigned char *buf, int len,
			   struct kmtls_resume_sealed *s)
{
	const unsigned char *t = buf + len - KMTLS_RESUME_TRAILER;
	const unsigned char *date = t + KMTLS_CA_DIGEST_LEN;
	const unsigned char *nl = date + KMTLS_RESUME_DATE_LEN;
	int n;

	if (len <= KMTLS_RESUME_TRAILER ||
	    memcmp(buf + len - sizeof(magic), magic, sizeof(magic)))
		return -1;
	n = nl[0] << 8 | nl[1];
	if (!n || n > len - KMTLS_RESUME_TRAILER)
		return -1;
	s->der = t - n;
	s->der_len = n;
	s->ca = t;
	memcpy(s->chain_not_after, date, KMTLS_RESUME_DATE_LEN);
	s->chain_not_after[KMTLS_RESUME_DATE_LEN] = '\0';
	return len - KMTLS_RESUME_TRAILER - n;
}

/* The CRLs of the context the connection began with (SIGHUP swaps them). */
static int crl_check(WOLFSSL *ssl, unsigned char *der, int len, char *why,
		     size_t whylen, const struct kmtls_identity *id)
{
	WOLFSSL_CERT_MANAGER *cm = wolfSSL_CTX_GetCertManager(wolfSSL_get_SSL_CTX(ssl));
	int ret;

	if (!cm) {
		snprintf(why, whylen, "no certificate store");
		return -1;
	}
	ret = wolfSSL_CertManagerCheckCRL(cm, der, len);
	if (ret == WOLFSSL_SUCCESS)
		return 0;
	if (ret == CRL_CERT_REVOKED)
		snprintf(why, whylen, "revoked: serial %s", id->serial);
	else	/* e.g. the issuer not seen since a reload: a full handshake decides */
		snprintf(why, whylen, "cannot check the CRL now: %s (%d)",
			 wolfSSL_ERR_reason_error_string((unsigned long)ret), ret);
	return -1;
}

/*
 * The certificate's dates, as now: a resumption issues the next ticket, so
 * a client that keeps reconnecting would otherwise resume past notAfter.
 */
static int date_check(const struct kmtls_identity *id, const char *chain,
		      char *why, size_t whylen)
{
	time_t t = time(NULL);
	char now[32];
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		snprintf(why, whylen, "cannot read the clock");
		return -1;
	}
	/* UTC times written at one width ("?" if unreadable) compare as strings. */
	if (chain[0] && strcmp(now, chain) > 0) {
		snprintf(why, whylen, "a CA certificate of its chain expired (not after %s; check NTP)",
			 chain);
		return -1;
	}
	if (id->not_before[0] == '?' || id->not_after[0] == '?') {
		snprintf(why, whylen, "its validity dates do not decode");
		return -1;
	}
	if (strcmp(now, id->not_before) < 0) {
		snprintf(why, whylen, "certificate not yet valid (not before %s; check NTP)",
			 id->not_before);
		return -1;
	}
	if (strcmp(now, id->not_after) > 0) {
		snprintf(why, whylen, "certificate expired (not after %s; check NTP)",
			 id->not_after);
		return -1;
	}
	return 0;
}

/* "subject \"...\": " before the reason, escaped for the log. */
static void say(char *why, size_t whylen, const struct kmtls_identity *id,
		const char *reason)
{
	char esc[300];

	kmtls_identity_escape(id->subject, esc, sizeof(esc));
	snprintf(why, whylen, "subject \"%s\": %s", esc, reason);
}

/*
 * @id passed: it is the connection's peer now, as after a full handshake
 * (a leaf whose names cannot be matched has none to show or pass on).
 */
static void take(struct kmtls_verify *v, struct kmtls_identity *id)
{
	if (v->have_leaf)
		kmtls_identity_free(&v->leaf);
	v->leaf = *id;
	v->have_leaf = !id->names_bad;
	v->resumed_checked = 1;
}

int kmtls_resume_check(WOLFSSL *ssl, struct kmtls_verify *v,
		       const struct kmtls_resume_sealed *s, char *why, size_t whylen)
{
	const unsigned char *der = s->der;
	int der_len = s->der_len;
	const void *ctx = wolfSSL_get_SSL_CTX(ssl);
	struct kmtls_identity id;
	unsigned char sha[32];
	char reason[200];
	int cached, ret;

	if ((v->policy && !v->policy->ca_digest_ok) ||
	    memcmp(s->ca, ca_of(v), KMTLS_CA_DIGEST_LEN)) {
		snprintf(why, whylen, "issued under another CA bundle (another listener or node, or before a reload changed it)");
		return -1;
	}

	/* A pass remembered from the last few seconds: policy and CRLs done. */
	cached = der_len > 0 && wc_Sha256Hash(der, (word32)der_len, sha) == 0 &&
		 !kmtls_resume_cache_get(sha, ctx, v->policy, &id);
	ret = cached ? 0 : kmtls_identity_from_der(der, der_len, &id);
	if (ret == KMTLS_IDENTITY_BAD_NAMES && !kmtls_policy_empty(v->policy)) {
		say(why, whylen, &id, "not allowed by policy: a name that cannot be matched");
		goto no;
	}
	if (ret && ret != KMTLS_IDENTITY_BAD_NAMES) {
		kmtls_identity_free(&id);
		snprintf(why, whylen, "the certificate in it does not decode");
		return -1;
	}
	if (date_check(&id, s->chain_not_after, reason, sizeof(reason))) {
		say(why, whylen, &id, reason);
		goto no;
	}
	if (!cached && !kmtls_policy_allows(v->policy, &id)) {
		say(why, whylen, &id, "not allowed by policy");
		goto no;
	}
	/* Kept either way: PROXY v2 and the next ticket carry it. */
	if (kmtls_verify_keep_der(v, der, der_len)) {
		say(why, whylen, &id, "out of memory");
		goto no;
	}
	if (!cached) {
		/* wolfSSL wants a writable buffer: check the copy we keep. */
		if (crl_check(ssl, v->leaf_der, v->leaf_der_len, reason, sizeof(reason), &id)) {
			say(why, whylen, &id, reason);
			goto no;
		}
		kmtls_resume_cache_put(ctx, v->policy, &id);
	}
	take(v, &id);
	memcpy(v->chain_not_after, s->chain_not_after, sizeof(s->chain_not_after));
	return 0;
no:
	kmtls_identity_free(&id);
	return -1;
}
