// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Certificate -> identity strings, through wolfSSL's own parser: the bytes
 * come from the network before (or without) any verification, so the only
 * ASN.1 code that touches them is the code wolfSSL already hardens and fuzzes.
 * What we add on top is bounded copying and the refusal of names whose C
 * string would differ from the certificate's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "identity.h"

/* Bounded copy of a NUL-terminated field of @max bytes; truncates. */
static void copy_field(char *dst, size_t dlen, const char *src, size_t max)
{
	size_t n = strnlen(src, max);

	if (n >= dlen)
		n = dlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Copy @len bytes (checked by name_ok()) into a C string. */
static char *dup_name(const char *src, int len)
{
	char *s;

	s = malloc((size_t)len + 1);
	if (s) {
		memcpy(s, src, len);
		s[len] = '\0';
	}
	return s;
}

static int list_add(struct kmtls_strlist *l, char *s)
{
	char **v = realloc(l->v, sizeof(*v) * (l->n + 1));

	if (!v) {
		free(s);
		return -1;
	}
	v[l->n++] = s;
	l->v = v;
	return 0;
}

/*
 * Whether @len bytes at @src can stand for the name: a NUL inside would
 * let "evil.example\0.example.org" print and match as its prefix.
 */
static int name_ok(const char *src, int len)
{
	return src && len >= 0 && !memchr(src, '\0', len);
}

static int take_cn(struct kmtls_identity *id, const DecodedCert *dc)
{
	if (!dc->subjectCN || dc->subjectCNLen <= 0)
		return 0;
	/* A truncated CN could equal an allowed one. */
	if ((size_t)dc->subjectCNLen >= sizeof(id->cn) ||
	    !name_ok(dc->subjectCN, dc->subjectCNLen))
		return KMTLS_IDENTITY_BAD_NAMES;
	memcpy(id->cn, dc->subjectCN, dc->subjectCNLen);
	id->cn[dc->subjectCNLen] = '\0';
	return 0;
}

static int take_sans(struct kmtls_identity *id, const DecodedCert *dc)
{
	const DNS_entry *e;
	char *s;

	for (e = dc->altNames; e; e = e->next) {
		/* An empty name can only ever match an empty allow entry. */
		if ((e->type != ASN_URI_TYPE && e->type != ASN_DNS_TYPE) ||
		    e->len == 0)
			continue;
		if (!name_ok(e->name, e->len))
			return KMTLS_IDENTITY_BAD_NAMES;
		s = dup_name(e->name, e->len);
		if (!s)
			return -1;
		if (list_add(e->type == ASN_URI_TYPE ? &id->uris : &id->dns, s))
			return -1;
	}
	return 0;
}

/* Big-endian two's complement bytes; drop sign-padding zeros like openssl. */
static void take_serial(struct kmtls_identity *id, const DecodedCert *dc)
{
	static const char hex[] = "0123456789ABCDEF";
	int i = 0, n = dc->serialSz, o = 0;

	if (n <= 0 || n > EXTERNAL_SERIAL_SIZE) {
		strcpy(id->serial, "?");
		return;
	}
	while (i < n - 1 && dc->serial[i] == 0)
		i++;
	for (; i < n && o + 2 < (int)sizeof(id->serial); i++) {
		id->serial[o++] = hex[dc->serial[i] >> 4];
		id->serial[o++] = hex[dc->serial[i] & 15];
	}
	id->serial[o] = '\0';
}

static int digits(const unsigned char *p, int n)
{
	int v = 0;

	while (n--) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	return v;
}

/*
 * @d is the whole DER Time (tag, length, content) as wolfSSL keeps it:
 * UTCTime "YYMMDDHHMMSSZ" or GeneralizedTime "YYYYMMDDHHMMSSZ", the only
 * forms RFC 5280 allows. Anything else prints as "?".
 */
static void format_time(char *out, size_t len, const unsigned char *d, int dlen)
{
	int ylen, year, f[5], i;

	snprintf(out, len, "?");
	if (!d || dlen < 2 || d[1] + 2 != dlen)
		return;
	ylen = d[0] == ASN_UTC_TIME ? 2 : d[0] == ASN_GENERALIZED_TIME ? 4 : 0;
	if (!ylen || d[1] != ylen + 11 || d[dlen - 1] != 'Z')
		return;
	year = digits(d + 2, ylen);
	if (ylen == 2 && year >= 0)
		year += year < 50 ? 2000 : 1900;	/* RFC 5280 4.1.2.5.1 */
	for (i = 0; i < 5; i++)
		f[i] = digits(d + 2 + ylen + 2 * i, 2);
	if (year < 0 || f[0] < 0 || f[1] < 0 || f[2] < 0 || f[3] < 0 || f[4] < 0)
		return;
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		 year % 10000, f[0] % 100, f[1] % 100, f[2] % 100, f[3] % 100,
		 f[4] % 100);
}

static int take_all(struct kmtls_identity *id, const DecodedCert *dc)
{
	copy_field(id->subject, sizeof(id->subject), dc->subject, sizeof(dc->subject));
	copy_field(id->issuer, sizeof(id->issuer), dc->issuer, sizeof(dc->issuer));
	take_serial(id, dc);
	format_time(id->not_before, sizeof(id->not_before), dc->beforeDate,
		    dc->beforeDateLen);
	format_time(id->not_after, sizeof(id->not_after), dc->afterDate,
		    dc->afterDateLen);
	return take_cn(id, dc) ?: take_sans(id, dc);
}

void kmtls_cert_not_after(const unsigned char *der, int len, char *out, size_t outlen)
{
	DecodedCert dc;

	snprintf(out, outlen, "?");
	if (!der || len <= 0)
		return;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0)
		format_time(out, outlen, dc.afterDate, dc.afterDateLen);
	wc_FreeDecodedCert(&dc);
}

int kmtls_identity_from_der(const unsigned char *der, int len,
			    struct kmtls_identity *id)
{
	DecodedCert dc;
	int ret = -1;

	memset(id, 0, sizeof(*id));
	if (!der || len <= 0)
		return -1;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 &&
	    wc_Sha256Hash(der, (word32)len, id->sha256) == 0)
		ret = take_all(id, &dc);
	wc_FreeDecodedCert(&dc);
	if (ret) {
		kmtls_identity_free(id);
		id->cn[0] = '\0';
	}
	id->names_bad = ret == KMTLS_IDENTITY_BAD_NAMES;
	return ret;
}

static void list_free(struct kmtls_strlist *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kmtls_identity_free(struct kmtls_identity *id)
{
	list_free(&id->uris);
	list_free(&id->dns);
}

static int list_copy(struct kmtls_strlist *dst, const struct kmtls_strlist *src)
{
	int i;

	for (i = 0; i < src->n; i++) {
		char *s = strdup(src->v[i]);

		if (!s || list_add(dst, s))
			return -1;
	}
	return 0;
}

int kmtls_identity_copy(struct kmtls_identity *dst, const struct kmtls_identity *src)
{
	*dst = *src;
	dst->uris = (struct kmtls_strlist){ 0 };
	dst->dns = (struct kmtls_strlist){ 0 };
	if (list_copy(&dst->uris, &src->uris) || list_copy(&dst->dns, &src->dns)) {
		kmtls_identity_free(dst);
		return -1;
	}
	return 0;
}

void kmtls_identity_escape(const char *in, char *buf, size_t len)
{
	size_t o = 0;
	unsigned char c;

	if (!len)
		return;
	for (; (c = (unsigned char)*in); in++) {
		int w = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? 1 : 4;

		if (o + w >= len)
			break;
		if (w == 1)
			buf[o] = c;
		else
			snprintf(buf + o, 5, "\\x%02x", c);
		o += w;
	}
	buf[o] = '\0';
}

/* Append "sep""tag""escaped s" if it fits whole; 0 when it did. */
static int append(char *buf, size_t len, size_t *o, const char *sep,
		  const char *tag, const char *s)
{
	char esc[512];
	int n;

	kmtls_identity_escape(s, esc, sizeof(esc));
	n = snprintf(buf + *o, len - *o, "%s%s%s", sep, tag, esc);
	if (n < 0 || (size_t)n >= len - *o) {
		buf[*o] = '\0';
		return -1;
	}
	*o += n;
	return 0;
}

void kmtls_identity_sans(const struct kmtls_identity *id, char *buf,
			 size_t len)
{
	size_t o = 0;
	int i;

	if (!len)
		return;
	buf[0] = '\0';
	for (i = 0; i < id->uris.n; i++)
		if (append(buf, len, &o, o ? ", " : "", "URI:", id->uris.v[i]))
			return;
	for (i = 0; i < id->dns.n; i++)
		if (append(buf, len, &o, o ? ", " : "", "DNS:", id->dns.v[i]))
			return;
	if (!o)
		snprintf(buf, len, "none");
}

void kmtls_identity_fingerprint_hex(const struct kmtls_identity *id,
				    char *buf, size_t len)
{
	size_t i;

	if (!len)
		return;
	buf[0] = '\0';
	for (i = 0; i < sizeof(id->sha256) && 2 * i + 2 < len; i++)
		snprintf(buf + 2 * i, 3, "%02x", id->sha256[i]);
}
