/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_TLS_CTX_H
#define KMTLS_TLS_CTX_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* What one side of an mTLS connection needs; paths are PEM unless noted. */
struct kmtls_tls_conf {
	int server;		/* 1: accept, verify clients; 0: connect */
	const char *cert;	/* leaf followed by intermediates */
	const char *key;
	const char *ca;		/* CA bundle file or directory of PEM files */
	int tls_min;		/* 0x0303 (1.2) or 0x0304 (1.3, default) */
	int tls_max;		/* 0 = newest */
	const char *ciphers;	/* wolfSSL or IANA names, ':'-separated */
	const char *groups;	/* "X25519:P-256:P-384" */
	char *const *crl;	/* CRL files, PEM or DER */
	int n_crl;
};

#define KMTLS_DEFAULT_CIPHERS \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256"
#define KMTLS_DEFAULT_CIPHERS12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
#define KMTLS_DEFAULT_GROUPS "X25519:P-256:P-384"

/* Call once per process before any other wolfSSL use. */
int kmtls_tls_global_init(void);

/*
 * Build a context from @conf. Client certificates are always required on a
 * server context. On failure returns NULL with a sentence in @err naming the
 * file and what to do.
 */
WOLFSSL_CTX *kmtls_tls_ctx_new(const struct kmtls_tls_conf *conf, char *err,
			       size_t errlen);

/* Parse "X25519:P-256" into TLS named-group ids; -1 copies the bad name. */
int kmtls_tls_parse_groups(const char *list, int *ids, int max,
			   char *bad, size_t badlen);

/* "1.3" from "TLSv1.3" style names, for log lines. */
const char *kmtls_tls_version_name(WOLFSSL *ssl);

#endif
