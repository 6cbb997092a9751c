/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_IDENTITY_H
#define KMTLS_IDENTITY_H

#include <stddef.h>

#include "config.h"	/* struct kmtls_strlist */

/*
 * Who a certificate names, decoded once by wolfSSL's parser and kept as
 * plain strings for the policy, log lines and the PROXY header.
 *
 * Names are wolfSSL's one-line form, "/O=kmtls test/CN=client". Strings are
 * the certificate's bytes: print them through kmtls_identity_escape().
 */
struct kmtls_identity {
	char subject[256];	/* truncated if longer */
	char issuer[256];
	char cn[128];		/* "" when the subject has no CN */
	struct kmtls_strlist uris;	/* SAN URI entries, in certificate order */
	struct kmtls_strlist dns;	/* SAN DNS entries */
	char serial[80];	/* upper-case hex, no colons, e.g. "1003" */
	char not_before[32];	/* "2026-01-01T00:00:00Z", "?" if unreadable */
	char not_after[32];
	unsigned char sha256[32];	/* of the DER */
	int names_bad;		/* decoded as KMTLS_IDENTITY_BAD_NAMES */
};

/*
 * Decode @der (@len bytes) without verifying it. Returns 0; -1 for
 * anything that is not a certificate (or out of memory);
 * KMTLS_IDENTITY_BAD_NAMES for names that would match differently than
 * they print (a NUL inside a CN or SAN, a CN that does not fit): then the
 * subject, issuer, serial and dates are filled, the CN and SANs empty.
 * @id is always safe to kmtls_identity_free() afterwards.
 */
#define KMTLS_IDENTITY_BAD_NAMES (-2)

/*
 * Just the notAfter of the certificate @der ("YYYY-MM-DDTHH:MM:SSZ", the
 * form of struct kmtls_identity's dates) into @out; "?" when it does not
 * decode. For the CA certificates of a chain, whose names do not matter.
 */
void kmtls_cert_not_after(const unsigned char *der, int len, char *out, size_t outlen);

int kmtls_identity_from_der(const unsigned char *der, int len,
			    struct kmtls_identity *id);

/* Free the SAN lists; the struct may be reused. */
void kmtls_identity_free(struct kmtls_identity *id);

/* A deep copy of @src into @dst: 0, or -1 (out of memory; @dst empty). */
int kmtls_identity_copy(struct kmtls_identity *dst, const struct kmtls_identity *src);

/* "URI:spiffe://example.org/client, DNS:client.example.org", or "none". */
void kmtls_identity_sans(const struct kmtls_identity *id, char *buf,
			 size_t len);

/* 64 lower-case hex characters (needs 65 bytes). */
void kmtls_identity_fingerprint_hex(const struct kmtls_identity *id,
				    char *buf, size_t len);

/*
 * Copy @in for a log line: printable ASCII stays, '"', '\\' and everything
 * else become \xNN, so a certificate cannot forge or split log lines.
 */
void kmtls_identity_escape(const char *in, char *buf, size_t len);

#endif
