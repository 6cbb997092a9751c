/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per worker thread: client certificates that passed the resume re-check
 * (resume.c) lately, so that a client resuming again and again is parsed
 * and CRL-checked once every few seconds instead of on every handshake.
 *
 * An entry answers only for the TLS context (its CRLs) and the policy it
 * was made under, and only within the same generation: every new TLS
 * context or policy (a start, a reload, a watched file changing) bumps it,
 * so a revocation or a narrower allow-list applies from the first
 * handshake after the reload. Only passes are kept: a refusal is checked,
 * and logged, every time. An entry lives KMTLS_RESUME_CACHE_MS at most
 * (a CRL that passes its nextUpdate is noticed that late).
 */
#ifndef KMTLS_RESUME_CACHE_H
#define KMTLS_RESUME_CACHE_H

#include "identity.h"

#define KMTLS_RESUME_CACHE_MS		5000
#define KMTLS_RESUME_CACHE_SLOTS	64

/* A new TLS context or policy exists: forget every thread's entries. */
void kmtls_resume_cache_bump(void);

/*
 * The identity of the certificate whose DER has SHA-256 @sha, if it passed
 * under @ctx and @policy lately: 0 and a copy in @id (free it), or -1.
 */
int kmtls_resume_cache_get(const unsigned char sha[32], const void *ctx,
			   const void *policy, struct kmtls_identity *id);

/* @id passed under @ctx and @policy (copied; nothing on out of memory). */
void kmtls_resume_cache_put(const void *ctx, const void *policy,
			    const struct kmtls_identity *id);

/* Free this thread's entries (at worker exit). */
void kmtls_resume_cache_clear(void);

/* Lookups that found an entry, this thread (for the tests). */
unsigned long kmtls_resume_cache_hits(void);

#endif
