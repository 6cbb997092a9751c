// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resume_cache.h"
#include "tls_ctx.h"

#include <wolfssl/wolfcrypt/asn_public.h>

int kmtls_tls_global_init(void)
{
	return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static WOLFSSL_METHOD *pick_method(const struct kmtls_tls_conf *c)
{
	if (c->tls_max == 0x0303)
		return c->server ? wolfTLSv1_2_server_method() :
				   wolfTLSv1_2_client_method();
	if (c->tls_min == 0x0304 || c->tls_min == 0)
		return c->server ? wolfTLSv1_3_server_method() :
				   wolfTLSv1_3_client_method();
	return c->server ? wolfSSLv23_server_method() :
			   wolfSSLv23_client_method();
}

static int load_ca(WOLFSSL_CTX *ctx, const char *ca, char *err, size_t len)
{
	struct stat st;
	int ret;

	if (stat(ca, &st)) {
		snprintf(err, len, "CA bundle %s: %s", ca, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		ret = wolfSSL_CTX_load_verify_locations_ex(ctx, NULL, ca,
			WOLFSSL_LOAD_FLAG_PEM_CA_ONLY | WOLFSSL_LOAD_FLAG_IGNORE_ERR);
	else
		ret = wolfSSL_CTX_load_verify_locations(ctx, ca, NULL);
	if (ret != WOLFSSL_SUCCESS) {
		snprintf(err, len, "CA bundle %s: no usable CA certificate in it (PEM expected)", ca);
		return -1;
	}
	return 0;
}

/*
 * The private key file, read with plain read(2) into one buffer that is
 * wiped before it is freed: wolfSSL's *_file() loaders leave the PEM in a
 * stdio buffer and their own read buffer, freed without wiping. wolfSSL
 * keeps only the decoded DER, which it wipes when the context goes.
 */
#define KEY_FILE_MAX (1 << 20)

static int load_key(WOLFSSL_CTX *ctx, const char *path)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap;
	struct stat st;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > KEY_FILE_MAX)
		goto out;
	cap = (size_t)st.st_size;
	buf = malloc(cap);
	if (!buf)
		goto out;
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += n;
	if (len == cap && wolfSSL_CTX_use_PrivateKey_buffer(ctx, buf, (long)len,
							     WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS)
		ret = 0;
	explicit_bzero(buf, cap);
out:
	free(buf);
	close(fd);
	return ret;
}

static int load_identity(WOLFSSL_CTX *ctx, const struct kmtls_tls_conf *c,
			 char *err, size_t len)
{
	/* A client may have no certificate (the server will refuse it). */
	if (!c->server && !c->cert)
		return 0;
	if (wolfSSL_CTX_use_certificate_chain_file(ctx, c->cert) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "certificate %s: cannot read a PEM certificate chain from it", c->cert);
		return -1;
	}
	if (load_key(ctx, c->key)) {
		snprintf(err, len, "private key %s: cannot read a PEM private key from it", c->key);
		return -1;
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "private key %s does not match certificate %s", c->key, c->cert);
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	int id;
} group_names[] = {
	{ "X25519", WOLFSSL_ECC_X25519 },
	{ "P-256", WOLFSSL_ECC_SECP256R1 },
	{ "prime256v1", WOLFSSL_ECC_SECP256R1 },
	{ "secp256r1", WOLFSSL_ECC_SECP256R1 },
	{ "P-384", WOLFSSL_ECC_SECP384R1 },
	{ "secp384r1", WOLFSSL_ECC_SECP384R1 },
	{ "P-521", WOLFSSL_ECC_SECP521R1 },
	{ "secp521r1", WOLFSSL_ECC_SECP521R1 },
};

/* Parse "X25519:P-256" into TLS named-group ids; -1 names the bad entry. */
int kmtls_tls_parse_groups(const char *list, int *ids, int max,
			   char *bad, size_t badlen)
{
	const char *p = list, *end;
	int n = 0;
	size_t i, len;

	while (*p) {
		end = strchr(p, ':');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < sizeof(group_names) / sizeof(group_names[0]); i++)
			if (strlen(group_names[i].name) == len &&
			    !strncasecmp(group_names[i].name, p, len))
				break;
		if (i == sizeof(group_names) / sizeof(group_names[0]) || n == max) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return -1;
		}
		ids[n++] = group_names[i].id;
		p += len + (end != NULL);
	}
	return n;
}

static int set_algorithms(WOLFSSL_CTX *ctx, const struct kmtls_tls_conf *c,
			  char *err, size_t len)
{
	const char *groups = c->groups ? c->groups : KMTLS_DEFAULT_GROUPS;
	const char *ciphers = c->ciphers;
	int ids[8], n, i;
	char bad[64];

	if (!ciphers)
		ciphers = c->tls_max == 0x0303 ? KMTLS_DEFAULT_CIPHERS12 :
			  c->tls_min == 0x0303 ?
			  KMTLS_DEFAULT_CIPHERS ":" KMTLS_DEFAULT_CIPHERS12 :
			  KMTLS_DEFAULT_CIPHERS;
	if (wolfSSL_CTX_set_cipher_list(ctx, ciphers) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "ciphers \"%s\": none of them is known to wolfSSL", ciphers);
		return -1;
	}
	n = kmtls_tls_parse_groups(groups, ids, 8, bad, sizeof(bad));
	if (n <= 0) {
		snprintf(err, len, "groups \"%s\": unknown group \"%s\" (use X25519, P-256, P-384, P-521)",
			 groups, n < 0 ? bad : "");
		return -1;
	}
	/* TLS 1.3 key-share preference, and the TLS 1.2 supported_groups list. */
	if (c->tls_max != 0x0303 && wolfSSL_CTX_set_groups(ctx, ids, n) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "groups \"%s\": rejected by wolfSSL", groups);
		return -1;
	}
	for (i = 0; i < n; i++)
		wolfSSL_CTX_UseSupportedCurve(ctx, (word16)ids[i]);
	return 0;
}

/* PEM or DER, told apart by the armour line. */
static int is_pem(const char *path)
{
	char head[11] = "";
	FILE *f = fopen(path, "r");

	if (f) {
		if (!fread(head, 1, sizeof(head) - 1, f))
			head[0] = 0;
		fclose(f);
	}
	return !strncmp(head, "-----BEGIN", 10);
}

/*
 * wolfSSL's DER entry point (X509_STORE_add_crl) switches on checking every
 * CA in the chain; re-armour the CRL as PEM and load it through the same
 * lookup as PEM files instead, via an anonymous file.
 */
static int load_der_crl(WOLFSSL_X509_LOOKUP *lookup, const char *path)
{
	unsigned char *der = NULL, *pem = NULL;
	char fdpath[64];
	long len = 0;
	FILE *f = fopen(path, "rb");
	int pem_len, fd = -1, ret = -1;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) <= 0 || len > (16 << 20) ||
	    fseek(f, 0, SEEK_SET) || !(der = malloc(len)) || fread(der, 1, len, f) != (size_t)len)
		goto out;
	pem_len = (int)len * 2 + 128;
	pem = malloc(pem_len);
	if (!pem)
		goto out;
	pem_len = wc_DerToPem(der, (word32)len, pem, (word32)pem_len, CRL_TYPE);
	fd = memfd_create("kmtls-crl", MFD_CLOEXEC);
	if (pem_len <= 0 || fd < 0 || write(fd, pem, pem_len) != pem_len)
		goto out;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	if (wolfSSL_X509_LOOKUP_load_file(lookup, fdpath, WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS)
		ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(pem);
	free(der);
	if (f)
		fclose(f);
	return ret;
}

/*
 * CRLs go in through the X509_STORE so that one signed by an intermediate
 * loads although only the root is a trust anchor: wolfSSL checks such a
 * CRL's signature when it is first used, against the intermediate the
 * client presented and wolfSSL verified. A CRL whose issuer never shows up
 * never matches; an invalid signature fails the client (fail closed).
 */
static int load_crls(WOLFSSL_CTX *ctx, const struct kmtls_tls_conf *c,
		     char *err, size_t len)
{
	WOLFSSL_X509_STORE *store;
	WOLFSSL_X509_LOOKUP *lookup;
	int i, ok;

	if (!c->n_crl)
		return 0;
	/* Leaf only: a CA without a configured CRL must not fail every client. */
	store = wolfSSL_CTX_get_cert_store(ctx);
	lookup = store ? wolfSSL_X509_STORE_add_lookup(store, wolfSSL_X509_LOOKUP_file()) : NULL;
	if (!lookup || wolfSSL_CTX_EnableCRL(ctx, 0) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "cannot enable CRL checking in this wolfSSL build");
		return -1;
	}
	for (i = 0; i < c->n_crl; i++) {
		if (is_pem(c->crl[i]))
			ok = wolfSSL_X509_LOOKUP_load_file(lookup, c->crl[i],
							   WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS;
		else
			ok = load_der_crl(lookup, c->crl[i]) == 0;
		if (!ok) {
			snprintf(err, len, "CRL %s: cannot load it (a PEM or DER X.509 CRL expected)",
				 c->crl[i]);
			return -1;
		}
	}
	return 0;
}

WOLFSSL_CTX *kmtls_tls_ctx_new(const struct kmtls_tls_conf *c, char *err,
			       size_t len)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(pick_method(c));

	kmtls_resume_cache_bump();	/* its CRLs are the ones that count now */
	if (!ctx) {
		snprintf(err, len, "wolfSSL_CTX_new failed (out of memory?)");
		return NULL;
	}
	if (c->tls_min == 0x0303 && c->tls_max != 0x0303 &&
	    wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		snprintf(err, len, "cannot allow TLS 1.2 in this wolfSSL build");
		goto fail;
	}
	if (load_identity(ctx, c, err, len) || load_ca(ctx, c->ca, err, len) ||
	    load_crls(ctx, c, err, len) || set_algorithms(ctx, c, err, len))
		goto fail;
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER |
			       (c->server ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			       NULL);
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

const char *kmtls_tls_version_name(WOLFSSL *ssl)
{
	switch (wolfSSL_version(ssl)) {
	case TLS1_3_VERSION:
		return "TLSv1.3";
	case TLS1_2_VERSION:
		return "TLSv1.2";
	default:
		return "unknown";
	}
}
