/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_VERIFY_H
#define KMTLS_VERIFY_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "identity.h"
#include "policy.h"

/* Our own code for "verified, but the policy said no"; no wolfSSL clash. */
#define KMTLS_VERIFY_POLICY (-20001)

/*
 * Per-connection verification record, filled by the verify callback during
 * the handshake and read afterwards for the log line and the peer identity.
 * Zero it (or kmtls_verify_reset()) before binding it.
 */
struct kmtls_verify {
	const struct kmtls_policy *policy;	/* set by the caller, may be NULL */
	int err;		/* first failure: wolfSSL/wolfCrypt code or
				 * KMTLS_VERIFY_POLICY; 0 if none seen */
	int depth;		/* of the certificate that failed (0 = leaf) */
	int chain_len;		/* certificates the peer sent */
	struct kmtls_identity leaf;	/* peer's leaf, ok or not */
	int have_leaf;		/* else with leaf.names_bad: its subject and
				 * dates, no names (KMTLS_IDENTITY_BAD_NAMES) */
	unsigned char *leaf_der;	/* its DER (malloc'd), sealed into tickets */
	int leaf_der_len;
	int resumed_checked;	/* leaf came from a ticket and passed the
				 * CRL and policy recheck (resume.c) */
	/*
	 * The earliest notAfter of the CA certificates the peer sent (the
	 * leaf's issuers), "" without any, "?" if one did not decode: a
	 * resumption has no chain to check, so its ticket carries this.
	 */
	char chain_not_after[24];
	/* the certificate that failed */
	char bad_subject[256], bad_issuer[256], bad_serial[80];
	char bad_not_before[32], bad_not_after[32];
};

/*
 * Install the callback on @ctx: peer certificates required and verified,
 * and on a server (@server != 0) a client without one is refused.
 */
void kmtls_verify_setup(WOLFSSL_CTX *ctx, int server);

/*
 * Per connection, before the handshake: where the callback records. A
 * connection left unbound keeps wolfSSL's verdict but gets no policy.
 */
void kmtls_verify_bind(WOLFSSL *ssl, struct kmtls_verify *v);

/* Free the leaf identity and clear the record; the policy is kept. */
void kmtls_verify_reset(struct kmtls_verify *v);

/* The record kmtls_verify_bind() gave @ssl, or NULL. */
struct kmtls_verify *kmtls_verify_of(WOLFSSL *ssl);

/* Keep a copy of the peer leaf's DER in @v (replacing one). 0 or -1. */
int kmtls_verify_keep_der(struct kmtls_verify *v, const unsigned char *der,
			  int len);

/*
 * One sentence for the operator on why a handshake failed, from
 * wolfSSL_get_error() after accept/connect (@wolf_err) and what the callback
 * recorded in @v (may be NULL). Written to @buf, which is returned.
 * Examples: "client sent no certificate", "unknown CA: issuer \"...\" is not
 * in the CA bundle", "certificate expired: valid A to B, local clock C
 * (check NTP)", "revoked: serial 1003 by issuer \"...\"", "not allowed by
 * policy: subject \"...\", SANs URI:..., "peer sent alert: ...".
 */
const char *kmtls_verify_reason(WOLFSSL *ssl, int wolf_err,
				const struct kmtls_verify *v, char *buf,
				size_t len);

/*
 * The errno (positive) a kernel-service request fails with, from the same
 * inputs as kmtls_verify_reason(): EACCES (policy), EKEYEXPIRED (expired or
 * not yet valid), EKEYREVOKED, EKEYREJECTED (any other certificate
 * failure, no certificate, name mismatch), ECONNRESET (peer closed or
 * reset), ENOMEM, and EPROTO for the rest (alerts, no shared parameters,
 * garbage).
 */
int kmtls_verify_errno(int wolf_err, const struct kmtls_verify *v);

#endif
