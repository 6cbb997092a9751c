/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_RESUME_H
#define KMTLS_RESUME_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "verify.h"

/*
 * Session resumption that re-checks who the client is.
 *
 * wolfSSL's session ticket holds the session's keys, not the peer's
 * certificate, and a resumed handshake verifies no certificate: a client
 * revoked since its full handshake, or one the listener's policy does not
 * admit (a ticket sealed by another node or listener sharing the ticket
 * keys), would resume. So the server seals the client's leaf certificate
 * into the ticket, after wolfSSL's own ticket bytes and under the same
 * AES-GCM seal, and when a ticket comes back checks that leaf against the
 * current CRLs and policy before accepting it. A ticket that fails, or
 * carries no certificate, is declined: the client gets a full handshake,
 * which verifies its certificate and, if it is refused, logs and counts it
 * like any other refusal. Nothing reaches the backend before that.
 *
 * The leaf is not its chain, so a resumption cannot check the issuer
 * again: the ticket also carries the digest of the CA bundle it was issued
 * under (the listener's policy has it, ca_digest.h), and resumes only
 * where that digest is the same: not at a listener or node trusting other
 * CAs, nor after a reload changed the bundle.
 *
 * Nor are the chain's CA certificates there, whose expiry a full handshake
 * refuses: the ticket carries the earliest notAfter among them, checked
 * like the leaf's dates, and handed on to the ticket a resumption issues.
 *
 * Sealed layout: wolfSSL's ticket | leaf DER | CA digest (8 bytes) | chain
 * notAfter (20 bytes, "YYYY-MM-DDTHH:MM:SSZ", zeros without CAs) | DER
 * length (u16, big endian) | "kmI3". Tickets of the "kmI2" layout (no
 * chain date) are declined: one full handshake after an upgrade.
 */

/* wolfSSL's room for our bytes after its own (scripts/wolfssl.sh sets it). */
#ifndef WOLFSSL_TICKET_EXTRA_PADDING_SZ
#define WOLFSSL_TICKET_EXTRA_PADDING_SZ 32	/* wolfSSL's default */
#endif
#if WOLFSSL_TICKET_EXTRA_PADDING_SZ < 1024
#error "wolfSSL has no room for a client certificate in session tickets: rebuild it with scripts/wolfssl.sh (WOLFSSL_TICKET_EXTRA_PADDING_SZ)"
#endif

#define KMTLS_RESUME_DATE_LEN 20
/* CA digest + chain date + length + magic */
#define KMTLS_RESUME_TRAILER (KMTLS_CA_DIGEST_LEN + KMTLS_RESUME_DATE_LEN + 2 + 4)

/* What an opened ticket carries besides wolfSSL's bytes. */
struct kmtls_resume_sealed {
	const unsigned char *der;	/* the client's leaf */
	int der_len;
	const unsigned char *ca;	/* KMTLS_CA_DIGEST_LEN bytes */
	char chain_not_after[KMTLS_RESUME_DATE_LEN + 1];	/* "" without CAs */
};

/*
 * Append @v's peer leaf and chain date after the @len bytes of wolfSSL's
 * ticket in @buf (@cap bytes of room in all). Returns the new length; @len
 * unchanged when there is no leaf, the chain's dates did not decode or it
 * does not fit (such a ticket resumes nothing).
 */
int kmtls_resume_seal_leaf(const struct kmtls_verify *v, unsigned char *buf,
			   int len, int cap);

/*
 * In an opened ticket of @len bytes, find what we sealed into @s: returns
 * the length of wolfSSL's part, or -1 when there is none.
 */
int kmtls_resume_find_leaf(const unsigned char *buf, int len,
			   struct kmtls_resume_sealed *s);

/*
 * Server side, a ticket came back with @s: may the session resume under
 * @v's policy (its CA bundle and allow-lists) and the current CRLs (of
 * @ssl's context), today, with the leaf and the chain in their dates? 0:
 * yes, and @v holds the leaf and chain date as if the client had sent them
 * (resumed_checked set). -1: no, with the reason in @why.
 */
int kmtls_resume_check(WOLFSSL *ssl, struct kmtls_verify *v,
		       const struct kmtls_resume_sealed *s, char *why, size_t whylen);

#endif
